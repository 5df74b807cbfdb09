"""Input and output serializers of the field API: they validate and shape, services act."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from command.geometry import point_from_lon_lat
from command.jsonbody import json_loads
from command.models import Category, Incident, Report, ReportPhoto
from command.report_input import REPORT_INPUT, ReportValue
from command.services.photos import photo_max_count
from command.services.reports import Stored

CATEGORY_CODE = re.compile(r"[a-z0-9_-]{1,32}")
GEOJSON_POINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A GeoJSON Point (RFC 7946): WGS 84 longitude, latitude. No crs member.",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Point"]},
        "coordinates": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {"type": "number", "minimum": -180, "maximum": 180},
            "example": [117.0005, 39.0005],
        },
    },
    "example": {"type": "Point", "coordinates": [117.0005, 39.0005]},
}


def _messages(exc: DjangoValidationError) -> list[str]:
    return [str(m) for m in exc.messages]


@extend_schema_field(GEOJSON_POINT_SCHEMA)
class PointField(serializers.Field):
    """A GeoJSON Point object, or the same as a JSON string (multipart forms)."""

    default_error_messages = {
        "invalid_json": gettext_lazy("The location is not valid JSON: send a GeoJSON Point object."),
    }

    def to_internal_value(self, data: Any) -> Point:
        if isinstance(data, str):
            try:
                data = json_loads(data)
            except ValueError:
                self.fail("invalid_json")
        # Checked here, never handed to GDAL's GeoJSON reader (it fails without a reason on
        # some input, and this is the hot path).
        if not isinstance(data, dict) or "type" not in data or "coordinates" not in data:
            raise serializers.ValidationError([_("Expected a GeoJSON geometry object with type and coordinates.")])
        if "crs" in data:
            raise serializers.ValidationError(
                [_("GeoJSON must not carry a crs member: coordinates are WGS 84 (RFC 7946).")]
            )
        if data["type"] != "Point":
            raise serializers.ValidationError(
                [_("Expected a Point geometry, got %(got)s.") % {"got": str(data["type"])[:40]}]
            )
        coords = data["coordinates"]
        if not isinstance(coords, list) or len(coords) not in (2, 3):
            raise serializers.ValidationError(
                [_("A Point's coordinates are [longitude, latitude] in WGS 84 (EPSG:4326).")]
            )
        if any(isinstance(c, bool) or not isinstance(c, (int, float, str)) for c in coords):
            raise serializers.ValidationError([_("Longitude and latitude must be numbers.")])
        try:
            return point_from_lon_lat(coords[0], coords[1])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_messages(exc)) from exc

    def to_representation(self, value: Point) -> dict[str, Any]:
        return {"type": "Point", "coordinates": [value.x, value.y]}


class FiniteFloatField(serializers.FloatField):
    default_error_messages = {"not_finite": gettext_lazy("A finite number is required (not NaN or infinity).")}

    def to_internal_value(self, data: Any) -> float:
        try:
            value = super().to_internal_value(data)
        except OverflowError:  # an int too large for a float
            self.fail("not_finite")
        if math.isnan(value) or math.isinf(value):
            self.fail("not_finite")
        return value


class CategoryCodeField(serializers.SlugRelatedField):
    """A category by its code; an unknown code names the known ones."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="code", queryset=Category.objects.select_related(None), **kwargs)

    def to_internal_value(self, data: Any) -> Category:
        if not isinstance(data, str) or not CATEGORY_CODE.fullmatch(data):
            raise serializers.ValidationError(_("Send the category as its code, e.g. road_damage."))
        found = list(Category.objects.raw("SELECT * FROM command_category WHERE code = %s", [data]))
        if found:
            return found[0]
        else:
            known = ", ".join(Category.objects.order_by("code").values_list("code", flat=True))
            raise serializers.ValidationError(
                _("Unknown category %(code)s. Known categories: %(known)s.") % {"code": data, "known": known}
            ) from None


class StrictInputSerializer(serializers.Serializer):
    """An input that refuses fields it does not declare: a client that sends a read-only or
    privileged field (an id, the reporter, a status, a grid cell, a received time ...) gets a
    400 naming it, instead of the field being silently taken or silently dropped (mass
    assignment). Django's form CSRF token is the one extra a browser form may carry."""

    IGNORED = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields) - self.IGNORED)
            if unknown:
                reason = _("This field cannot be set here: the server sets it, or it does not exist.")
                raise serializers.ValidationError({name[:60]: [reason] for name in unknown[:20]})
        return super().to_internal_value(data)


class NoInputSerializer(StrictInputSerializer):
    """The input of a step that takes no fields: any field sent is refused (400 naming it), not ignored."""


class ReportInputSerializer(StrictInputSerializer):
    """A report as a phone sends it. ``location`` (GeoJSON) or ``longitude`` + ``latitude``."""

    client_id = serializers.UUIDField(help_text="Generated once on the phone; the idempotency key of the report.")
    category = CategoryCodeField(help_text="Category code, see GET /api/v1/categories/.")
    location = PointField(required=False, help_text="GeoJSON Point, WGS 84 (EPSG:4326).")
    longitude = FiniteFloatField(required=False, min_value=-180, max_value=180, help_text="Instead of location.")
    latitude = FiniteFloatField(required=False, min_value=-90, max_value=90, help_text="Instead of location.")
    # Then the report's declared values (command/report_input.py), added below the class.
    photos = serializers.ListField(
        child=serializers.FileField(allow_empty_file=False),
        required=False,
        max_length=photo_max_count(),
        help_text="0-6 JPEG, PNG or WebP photos (multipart only).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        location = attrs.pop("location", None)
        lon, lat = attrs.pop("longitude", None), attrs.pop("latitude", None)
        if location is None:
            if lon is None or lat is None:
                raise serializers.ValidationError(
                    {"location": [_("Send the location as a GeoJSON Point, or longitude and latitude.")]}
                )
            try:
                location = point_from_lon_lat(lon, lat)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"location": _messages(exc)}) from exc
        attrs["location"] = location
        return attrs


def _value_input(value: ReportValue) -> serializers.Field:
    """The input field of a declared report value."""
    limits: dict[str, Any] = {
        key: limit
        for key, limit in (("min_value", value.minimum), ("max_value", value.maximum), ("max_length", value.max_chars))
        if limit is not None
    }
    if value.kind == "float":
        return FiniteFloatField(required=False, allow_null=True, help_text=value.help, **limits)
    if value.kind == "text":
        return serializers.CharField(required=False, allow_blank=True, default="", help_text=value.help, **limits)
    return serializers.DateTimeField(required=False, allow_null=True, help_text=value.help)


def _value_output(value: ReportValue) -> serializers.Field:
    """The receipt's field of a declared report value."""
    if value.kind == "float":
        return serializers.FloatField(allow_null=True)
    if value.kind == "text":
        return serializers.CharField(allow_blank=True)
    return serializers.DateTimeField(allow_null=True)


def _with_values(serializer: type[serializers.Serializer], make: Any, before: str) -> None:
    """Add a field per declared report value to ``serializer``, in the declaration's order, before ``before``."""
    declared = serializer._declared_fields
    fields = list(declared.items())
    at = [name for name, _field in fields].index(before)
    declared.clear()
    declared.update([*fields[:at], *((value.name, make(value)) for value in REPORT_INPUT), *fields[at:]])


_with_values(ReportInputSerializer, _value_input, before="photos")


class PhotoOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


def photo_output(photo: ReportPhoto) -> dict[str, Any]:
    return {
        "id": photo.pk,
        "url": f"/api/v1/photos/{photo.pk}/",
        "thumbnail_url": f"/api/v1/photos/{photo.pk}/thumbnail/",
        "width": photo.width,
        "height": photo.height,
    }


class IncidentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Incident.Status.choices)
    team_id = serializers.IntegerField(allow_null=True)
    worker_id = serializers.IntegerField(allow_null=True)
    report_count = serializers.IntegerField()
    due_at = serializers.DateTimeField()


class ReportOutputSerializer(serializers.Serializer):
    """The server's receipt for a report."""

    id = serializers.IntegerField()
    client_id = serializers.UUIDField()
    category = serializers.CharField()
    location = PointField()
    # Then the report's declared values (command/report_input.py), added below the class.
    received_at = serializers.DateTimeField()
    grid_cell_id = serializers.IntegerField(allow_null=True)
    outside_grid = serializers.BooleanField()
    building_id = serializers.IntegerField(allow_null=True)
    incident = IncidentBriefSerializer()
    photos = PhotoOutputSerializer(many=True)


_with_values(ReportOutputSerializer, _value_output, before="received_at")


def report_output(report: Report, *, category_code: str, photos: list[ReportPhoto]) -> dict[str, Any]:
    """The receipt as plain data (no serializer pass on the hot path; the shape is
    ReportOutputSerializer's, checked by the schema tests)."""
    return stored_output(Stored.of(report), category_code=category_code, photos=photos)


def stored_output(stored: Stored, *, category_code: str, photos: Sequence[ReportPhoto] = ()) -> dict[str, Any]:
    """The receipt of ``stored`` (the lean report path answers with this directly)."""
    return {
        "id": stored.report_id,
        "client_id": str(stored.client_id),
        "category": category_code,
        "location": {"type": "Point", "coordinates": [stored.lon, stored.lat]},
        **{value.name: value.wire(stored.values[value.column]) for value in REPORT_INPUT},
        "received_at": stored.received_at.isoformat(),
        "grid_cell_id": stored.grid_cell_id,
        "outside_grid": stored.outside_grid,
        "building_id": stored.building_id,
        "incident": {
            "id": stored.incident_id,
            "status": stored.incident_status,
            "team_id": stored.team_id,
            "worker_id": stored.worker_id,
            "report_count": stored.report_count,
            "due_at": stored.due_at.isoformat(),
        },
        "photos": [photo_output(p) for p in photos],
    }


class ErrorSerializer(serializers.Serializer):
    """A refusal: ``detail`` for the whole request, or one list of reasons per field."""

    detail = serializers.CharField(required=False)


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    client_id = serializers.UUIDField()
    existing = ReportOutputSerializer()
