"""The registry and door-to-door campaigns over REST (/api/v1/): households and businesses for
operators and the grid workers of their cells, a building's household panel, a visit from the
field app, the door look-up, campaigns and their targets, and marks (idempotent like reports).

Thin views: a serializer validates, a service (command/services/registry.py, campaigns.py)
acts, command/registry_selectors.py decides who sees what and masks or logs personal data.
A list or an object the login may not see answers 404, like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.geometry import geometry_from_geojson
from command.layer_queries import FeatureQuery, layer_features
from command.layers import layers_for_user
from command.models import Building, Campaign, CampaignMark, CampaignTarget, Household, HouseholdVisit, Person
from command.registry_selectors import (
    IMPORT_REGISTRY_PERMISSION,
    MANAGE_CAMPAIGNS_PERMISSION,
    businesses_visible_to,
    campaign_get_for_user,
    campaign_targets_for_user,
    campaigns_visible_to,
    household_get_for_user,
    households_filtered,
    households_visible_to,
    persons_visible_to,
    registry_cells_for,
    registry_values,
    residents_lookup,
    visits_for_household,
)
from command.services import campaigns as campaign_services
from command.services import registry as registry_services
from command.services.registry_import import import_max_bytes, registry_import, registry_rows_read
from field_api.errors import PayloadTooLarge
from field_api.params import PAGE_PARAMETERS, csv_param, int_param, page_of
from field_api.personal import PURPOSE_PARAMETER, purpose_param
from field_api.serializers import ErrorSerializer, NoInputSerializer, StrictInputSerializer
from field_api.throttles import IncidentActionThrottle, ReadThrottle
from field_api.views import check_body_size, errors

PAGE_MAX = 500
HOUSEHOLD_FIELDS = ("id", "building_id", "unit", "resident_type", "members", "grid_cell_id", "last_visit_at")
HOUSEHOLD_PERSONAL = ("head_name", "phone", "vulnerable")
PERSON_FIELDS = ("id", "household_id", "relation", "resident_type", "full_name", "id_number", "phone", "vulnerable")


def _require_layer(request: Request, layer: str) -> None:
    """A list of a layer the login may not see answers like a missing one."""
    if layer not in layers_for_user(request.user):
        raise NotFound(_("Nothing here."))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _household_row(h: Household) -> dict[str, Any]:
    return {
        "id": h.pk,
        "building_id": h.building_id,
        "unit": h.unit,
        "resident_type": h.resident_type,
        "members": h.members,
        "grid_cell_id": h.building.grid_cell_id,
        "last_visit_at": _iso(h.last_visit_at),
        "head_name": h.head_name,
        "phone": h.phone,
        "vulnerable": list(h.vulnerable),
    }


def _person_row(p: Person) -> dict[str, Any]:
    return {
        "id": p.pk,
        "household_id": p.household_id,
        "relation": p.relation,
        "resident_type": p.resident_type,
        "full_name": p.full_name,
        "id_number": p.id_number,
        "phone": p.phone,
        "vulnerable": list(p.vulnerable),
    }


# --- households -----------------------------------------------------------------------------------


class HouseholdListView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="household_list",
        parameters=[
            OpenApiParameter("vulnerable", str, description="Comma-separated groups: any of them."),
            OpenApiParameter("cell", str, description="Comma-separated grid cell or big grid codes."),
            OpenApiParameter("building", int),
            OpenApiParameter("resident_type", str, enum=list(Household.ResidentType.values)),
            *PAGE_PARAMETERS,
            PURPOSE_PARAMETER,
        ],
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(400, 401, 403, 429)},
        description=(
            "Households of my grid cells (operators: all), e.g. `?vulnerable=elderly_alone&cell=A`. Personal "
            "fields masked; unmasked with `?purpose=` when my role may (each such view is logged)."
        ),
    )
    def get(self, request: Request) -> Response:
        _require_layer(request, "households")
        purpose = purpose_param(request)
        vulnerable = csv_param(request, "vulnerable")
        unknown = sorted(set(vulnerable) - set(Household.Vulnerable.values))
        if unknown:
            raise serializers.ValidationError(
                {
                    "vulnerable": [
                        _("Unknown group %(g)s; use %(all)s.")
                        % {"g": unknown[0], "all": ", ".join(Household.Vulnerable.values)}
                    ]
                }
            )
        resident_type = request.query_params.get("resident_type") or None
        if resident_type and resident_type not in Household.ResidentType.values:
            raise serializers.ValidationError({"resident_type": [_("registered or tenant.")]})
        building = request.query_params.get("building")
        qs = households_filtered(
            households_visible_to(request.user),
            vulnerable=vulnerable,
            cell_codes=csv_param(request, "cell"),
            building_id=int_param(request, "building", 0, low=1) if building else None,
            resident_type=resident_type,
        ).select_related("building")
        total = qs.count()
        rows = [
            _household_row(h)
            for h in page_of(request, qs.order_by("building_id", "unit", "pk"), default=100, high=PAGE_MAX)
        ]
        shown = registry_values(
            user=request.user,
            layer="households",
            rows=rows,
            channel="rest",
            purpose=purpose,
            detail=request.get_full_path(),
        )
        return Response({"count": total, "results": shown})


class BuildingHouseholdsView(APIView):
    """A building's household panel: its households and their members."""

    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="building_households",
        parameters=[PURPOSE_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(400, 401, 403, 429)},
        description="The households of one building with their members, masked; unmasked with `?purpose=`.",
    )
    def get(self, request: Request, pk: int) -> Response:
        _require_layer(request, "households")
        purpose = purpose_param(request)
        households = list(
            households_visible_to(request.user).filter(building_id=pk).select_related("building").order_by("unit")
        )
        cells = registry_cells_for(request.user)
        building = Building.objects.filter(pk=pk).first()
        if building is None or (cells is not None and building.grid_cell_id not in cells):
            raise NotFound(_("No such building, or not one of your grid cells."))
        persons = list(
            persons_visible_to(request.user)
            .filter(household__in=[h.pk for h in households])
            .select_related("household")
            .order_by("household_id", "pk")
        )
        shown_households = registry_values(
            user=request.user,
            layer="households",
            rows=[_household_row(h) for h in households],
            channel="rest",
            purpose=purpose,
            detail=f"building {pk} panel",
        )
        shown_persons = registry_values(
            user=request.user,
            layer="persons",
            rows=[_person_row(p) for p in persons],
            channel="rest",
            purpose=purpose,
            detail=f"building {pk} panel",
        )
        members: dict[int, list[dict[str, Any]]] = {}
        for person in shown_persons:
            members.setdefault(person["household_id"], []).append(person)
        for household in shown_households:
            household["persons"] = members.get(household["id"], [])
        return Response(
            {
                "building": {
                    "id": building.pk,
                    "name": building.name,
                    "address": building.address,
                    "floors": building.floors,
                    "grid_cell_id": building.grid_cell_id,
                },
                "households": shown_households,
            }
        )


class ResidentLookupView(APIView):
    """The door look-up: who is this, in this building? Always masked."""

    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="resident_lookup",
        parameters=[
            OpenApiParameter("q", str, required=True, description="Name (its start) or ID number (or its last 4+).")
        ],
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(400, 401, 429)},
        description="Members of the households of one building matching a name or an ID number, masked.",
    )
    def get(self, request: Request, pk: int) -> Response:
        _require_layer(request, "persons")
        query = request.query_params.get("q", "").strip()
        if not query or len(query) > 32:
            raise serializers.ValidationError({"q": [_("Type a name or an ID number (at most 32 characters).")]})
        found = residents_lookup(user=request.user, building_id=pk, query=query)
        rows = [{**_person_row(p), "unit": p.household.unit} for p in found]
        shown = registry_values(user=request.user, layer="persons", rows=rows, channel="lookup")
        for row in shown:
            row.pop("vulnerable", None)
        return Response({"results": shown})


class MemberChangeSerializer(StrictInputSerializer):
    person = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    remove = serializers.BooleanField(required=False, default=False)
    values = serializers.DictField(required=False, default=dict)


class VisitInputSerializer(StrictInputSerializer):
    client_id = serializers.UUIDField()
    visited_at = serializers.DateTimeField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=registry_services.NOTE_MAX_CHARS)
    changes = MemberChangeSerializer(many=True, required=False, default=list)


def _visit_output(visit: HouseholdVisit, *, with_changes: bool) -> dict[str, Any]:
    changes: Any = visit.changes
    if not with_changes:  # without the persons' personal-data grant: which fields, not their values
        changes = [
            {"op": c.get("op"), "person": c.get("person"), "fields": sorted(c.get("fields", {}))} for c in visit.changes
        ]
    return {
        "id": visit.pk,
        "client_id": str(visit.client_id),
        "household_id": visit.household_id,
        "visitor": visit.visitor.get_username() if visit.visitor else None,
        "visited_at": _iso(visit.visited_at),
        "received_at": _iso(visit.received_at),
        "note": visit.note if with_changes else None,
        "changes": changes,
    }


class HouseholdVisitView(APIView):
    def get_throttles(self) -> list[Any]:
        return [ReadThrottle()] if self.request.method == "GET" else [IncidentActionThrottle()]

    @extend_schema(
        operation_id="household_visits",
        parameters=[PURPOSE_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(400, 401, 403, 429)},
        description="The visit log of a household: who, when, which fields changed; their values and the notes "
        "with `?purpose=` (logged).",
    )
    def get(self, request: Request, pk: int) -> Response:
        purpose = purpose_param(request)
        household = household_get_for_user(user=request.user, household_id=pk)
        if household is None:
            raise NotFound(_("No such household, or not one of your grid cells."))
        visits = visits_for_household(user=request.user, household=household)
        grant = layers_for_user(request.user, purpose=purpose).get("persons")
        unmasked = grant is not None and grant.personal_data
        if unmasked and visits:
            registry_values(
                user=request.user,
                layer="persons",
                rows=[{"id": f"household:{pk}"}],
                channel="rest",
                purpose=purpose,
                detail="visit log",
            )
        return Response({"results": [_visit_output(v, with_changes=unmasked) for v in visits]})

    @extend_schema(
        operation_id="household_visit",
        request=VisitInputSerializer,
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored: the visit as logged."),
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A retry of a stored visit."),
            409: OpenApiResponse(ErrorSerializer, description="This client_id was used for another visit."),
            404: ErrorSerializer,
            **errors(400, 401, 413, 415, 429),
        },
        description=(
            "Record a visit: `changes` is a list of `{person, values}` (update), `{values}` (a new member: "
            "full_name, relation, resident_type, and optionally id_number, phone, vulnerable) or "
            "`{person, remove: true}`. `client_id` is made once on the phone: a retry is stored once."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        check_body_size(request)
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"detail": _("Send a JSON object.")})
        serializer = VisitInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changes = [
            registry_services.MemberChange(c.get("person"), dict(c.get("values") or {}), bool(c.get("remove")))
            for c in data["changes"]
        ]
        try:
            result = registry_services.household_visit_record(
                visitor=request.user,
                household_id=pk,
                client_id=data["client_id"],
                changes=changes,
                note=data.get("note") or "",
                visited_at=data.get("visited_at"),
            )
        except registry_services.HouseholdNotFound as exc:
            raise NotFound(_("No such household, or not one of your grid cells.")) from exc
        except registry_services.VisitConflict:
            return Response(
                {"detail": _("This client_id was already used for a different visit.")}, status=status.HTTP_409_CONFLICT
            )
        return Response(
            _visit_output(result.visit, with_changes=True),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


# --- businesses -----------------------------------------------------------------------------------


class BusinessListView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="business_list",
        parameters=[
            OpenApiParameter("industry", str, description="Comma-separated industries."),
            OpenApiParameter("key_only", bool, description="Key industries only."),
            OpenApiParameter("building", int),
            *PAGE_PARAMETERS,
            PURPOSE_PARAMETER,
        ],
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(400, 401, 403, 429)},
        description="Businesses of my grid cells (operators: all); contacts masked, unmasked with `?purpose=`.",
    )
    def get(self, request: Request) -> Response:
        _require_layer(request, "businesses")
        purpose = purpose_param(request)
        qs = businesses_visible_to(request.user).select_related("building")
        industries = csv_param(request, "industry")
        if industries:
            qs = qs.filter(industry__in=industries)
        if request.query_params.get("key_only") in ("1", "true"):
            qs = qs.exclude(key_industry="")
        if request.query_params.get("building"):
            qs = qs.filter(building_id=int_param(request, "building", 0, low=1))
        rows = [
            {
                "id": b.pk,
                "building_id": b.building_id,
                "grid_cell_id": b.building.grid_cell_id,
                "name": b.name,
                "industry": b.industry,
                "key_industry": b.key_industry,
                "licence_no": b.licence_no,
                "last_inspection_at": _iso(b.last_inspection_at),
                "contact_name": b.contact_name,
                "contact_phone": b.contact_phone,
            }
            for b in page_of(request, qs.order_by("pk"), default=100, high=PAGE_MAX)
        ]
        shown = registry_values(user=request.user, layer="businesses", rows=rows, channel="rest", purpose=purpose)
        return Response({"count": qs.count(), "results": shown})


# --- campaigns ------------------------------------------------------------------------------------


class CampaignFilterSerializer(StrictInputSerializer):
    vulnerable = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=10)
    resident_type = serializers.CharField(required=False, allow_blank=True, max_length=16)
    industries = serializers.ListField(child=serializers.CharField(max_length=16), required=False, max_length=10)
    key_only = serializers.BooleanField(required=False, default=False)


class CampaignInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=Campaign.Kind.choices)
    target_kind = serializers.ChoiceField(choices=Campaign.TargetKind.choices)
    area = serializers.JSONField(required=False, help_text="A GeoJSON Polygon or MultiPolygon (WGS 84).")
    cells = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=200)
    filters = CampaignFilterSerializer(required=False)


def campaign_output(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "kind": campaign.kind,
        "target_kind": campaign.target_kind,
        "status": campaign.status,
        "filters": campaign.filters,
        "created_at": _iso(campaign.created_at),
        "closed_at": _iso(campaign.closed_at),
        "total": campaign.total,
        "pending": campaign.pending,
        "visited": campaign.visited,
        "absent": campaign.absent,
        "refused": campaign.refused,
        "covered": campaign.visited + campaign.refused,
        "percent": round(100.0 * (campaign.visited + campaign.refused) / campaign.total, 1) if campaign.total else 0.0,
    }


class CampaignListView(APIView):
    def get_throttles(self) -> list[Any]:
        return [ReadThrottle()] if self.request.method == "GET" else [IncidentActionThrottle()]

    @extend_schema(
        operation_id="campaign_list",
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(401, 429)},
        description="Campaigns with a target in my grid cells (operators: all), active first.",
    )
    def get(self, request: Request) -> Response:
        _require_layer(request, "campaign_targets")
        rows = campaigns_visible_to(request.user).order_by("status", "-created_at")[:PAGE_MAX]
        return Response({"results": [campaign_output(c) for c in rows]})

    @extend_schema(
        operation_id="campaign_create",
        request=CampaignInputSerializer,
        responses={201: OpenApiTypes.OBJECT, **errors(400, 401, 403, 415, 429)},
        description=(
            "Operators: start a campaign over the households or businesses of a drawn `area` or of picked "
            "grid `cells`, with a filter (`vulnerable`, `resident_type`; `industries`, `key_only`)."
        ),
    )
    def post(self, request: Request) -> Response:
        if not request.user.has_perm(MANAGE_CAMPAIGNS_PERMISSION):
            raise PermissionDenied(_("Only operators start campaigns."))
        check_body_size(request)
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"detail": _("Send a JSON object.")})
        serializer = CampaignInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        area = None
        if data.get("area") is not None:
            try:
                area = geometry_from_geojson(data["area"], expected=("Polygon", "MultiPolygon"))
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"area": exc.messages}) from exc
        flt = data.get("filters") or {}
        campaign = campaign_services.campaign_create(
            actor_id=request.user.pk,
            name=data["name"],
            kind=data["kind"],
            target_kind=data["target_kind"],
            area=area,
            cell_codes=data.get("cells") or (),
            filters=campaign_services.CampaignFilter(
                vulnerable=tuple(flt.get("vulnerable") or ()),
                resident_type=flt.get("resident_type") or "",
                industries=tuple(flt.get("industries") or ()),
                key_only=bool(flt.get("key_only")),
            ),
        )
        return Response(campaign_output(campaign), status=status.HTTP_201_CREATED)


def _campaign_or_404(request: Request, pk: int) -> Campaign:
    campaign = campaign_get_for_user(user=request.user, campaign_id=pk)
    if campaign is None:
        raise NotFound(_("No such campaign, or none in your grid cells."))
    return campaign


class CampaignDetailView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="campaign_get",
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(401, 429)},
        description="A campaign's coverage, overall and per grid cell (my cells only for a grid worker).",
    )
    def get(self, request: Request, pk: int) -> Response:
        campaign = _campaign_or_404(request, pk)
        per_cell: dict[str, dict[str, int]] = {}
        rows = (
            campaign_targets_for_user(user=request.user, campaign=campaign)
            .order_by()
            .values("grid_cell__code", "status")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            cell = per_cell.setdefault(row["grid_cell__code"] or "-", dict.fromkeys(CampaignTarget.Status.values, 0))
            cell[row["status"]] = row["n"]
        return Response({**campaign_output(campaign), "cells": per_cell})


class CampaignCloseView(APIView):
    throttle_classes = [IncidentActionThrottle]

    @extend_schema(
        operation_id="campaign_close",
        request=None,
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, 409: ErrorSerializer, **errors(400, 401, 403, 429)},
    )
    def post(self, request: Request, pk: int) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)  # takes no fields
        campaign = _campaign_or_404(request, pk)
        if not request.user.has_perm(MANAGE_CAMPAIGNS_PERMISSION):
            raise PermissionDenied(_("Only operators close campaigns."))
        try:
            closed = campaign_services.campaign_close(actor_id=request.user.pk, campaign=campaign)
        except campaign_services.CampaignClosed:
            return Response({"detail": _("The campaign is closed already.")}, status=status.HTTP_409_CONFLICT)
        return Response(campaign_output(closed))


def target_output(t: CampaignTarget) -> dict[str, Any]:
    return {
        "id": t.pk,
        "campaign_id": t.campaign_id,
        "building_id": t.building_id,
        "building_address": t.building.address,
        "grid_cell": t.grid_cell.code if t.grid_cell else None,
        "household_id": t.household_id,
        "business_id": t.business_id,
        "label": t.label,
        "status": t.status,
        "attempts": t.attempts,
        "last_mark_at": _iso(t.last_mark_at),
    }


class CampaignTargetListView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="campaign_targets",
        parameters=[
            OpenApiParameter("status", str, description="Comma-separated; `open` = pending,absent (not covered)."),
            OpenApiParameter("cell", str, description="Comma-separated grid cell codes."),
            *PAGE_PARAMETERS,
        ],
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(400, 401, 429)},
        description="A campaign's targets in my grid cells, per cell and building (`?status=open`: not covered yet).",
    )
    def get(self, request: Request, pk: int) -> Response:
        campaign = _campaign_or_404(request, pk)
        statuses = csv_param(request, "status")
        if statuses == ["open"]:
            statuses = [CampaignTarget.Status.PENDING, CampaignTarget.Status.ABSENT]
        unknown = sorted(set(statuses) - set(CampaignTarget.Status.values))
        if unknown:
            raise serializers.ValidationError({"status": [_("Unknown status %s.") % unknown[0]]})
        qs = campaign_targets_for_user(
            user=request.user, campaign=campaign, statuses=statuses, cell_codes=csv_param(request, "cell")
        )
        rows = page_of(request, qs, default=PAGE_MAX, high=5000)
        return Response({"count": qs.count(), "results": [target_output(t) for t in rows]})


class CampaignProgressView(APIView):
    """The campaign's buildings with their progress, as GeoJSON built in PostGIS (the progress
    panel's snapshot; the campaign_buildings layer's fields and policy)."""

    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="campaign_progress",
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, **errors(401, 429)},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        campaign = _campaign_or_404(request, pk)
        grant = layers_for_user(request.user).get("campaign_buildings")
        if grant is None:
            raise NotFound(_("Nothing here."))
        page = layer_features(grant, FeatureQuery(limit=None, equals=(("campaign_id", campaign.pk),)))
        return HttpResponse(page.geojson, content_type="application/geo+json")


class MarkInputSerializer(StrictInputSerializer):
    client_id = serializers.UUIDField()
    target = serializers.IntegerField(min_value=1)
    outcome = serializers.ChoiceField(choices=CampaignMark.Outcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=campaign_services.NOTE_MAX_CHARS)
    marked_at = serializers.DateTimeField(required=False, allow_null=True)


def mark_output(result: campaign_services.MarkResult) -> dict[str, Any]:
    mark = result.mark
    return {
        "id": mark.pk,
        "client_id": str(mark.client_id),
        "target": target_output(result.target),
        "outcome": mark.outcome,
        "marked_at": _iso(mark.marked_at),
        "received_at": _iso(mark.received_at),
    }


class CampaignMarkView(APIView):
    throttle_classes = [IncidentActionThrottle]

    @extend_schema(
        operation_id="campaign_mark",
        request=MarkInputSerializer,
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored: the receipt."),
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A retry of a stored mark: the same receipt."),
            409: OpenApiResponse(
                ErrorSerializer, description="Campaign closed, or the client_id used for another mark."
            ),
            404: ErrorSerializer,
            **errors(400, 401, 413, 415, 429),
        },
        description=(
            "Mark a target visited / absent / refused. `client_id` is made once on the phone and sent again on "
            "every retry (offline queue): the same mark is stored and counted once."
        ),
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"detail": _("Send a JSON object.")})
        serializer = MarkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = campaign_services.campaign_mark(
                user=request.user,
                target_id=data["target"],
                client_id=data["client_id"],
                outcome=data["outcome"],
                note=data.get("note") or "",
                marked_at=data.get("marked_at"),
            )
        except campaign_services.CampaignNotFound as exc:
            raise NotFound(_("No such target, or not one of your grid cells.")) from exc
        except campaign_services.CampaignClosed:
            return Response({"detail": _("The campaign is closed.")}, status=status.HTTP_409_CONFLICT)
        except campaign_services.MarkConflict:
            return Response(
                {"detail": _("This client_id was already used for a different mark.")}, status=status.HTTP_409_CONFLICT
            )
        return Response(mark_output(result), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


# --- the registry import --------------------------------------------------------------------------


class ImportInputSerializer(StrictInputSerializer):
    file = serializers.FileField(allow_empty_file=False)
    encoding = serializers.ChoiceField(choices=["utf-8", "gbk"], required=False)
    strict = serializers.BooleanField(required=False, default=False)
    dry_run = serializers.BooleanField(required=False, default=False)


class RegistryImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [IncidentActionThrottle]

    @extend_schema(
        operation_id="registry_import",
        request={"multipart/form-data": ImportInputSerializer},
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 403, 413, 415, 429)},
        description=(
            "Operators: import households and their members from a CSV (UTF-8 or GBK) or XLSX `file`, one row "
            "per person (columns 楼栋地址, 门牌号, 姓名, 身份证号, 联系电话, 与户主关系, 人员类型, 特殊人群). "
            "Good households are imported whole, in one transaction; the answer lists each rejected row with its "
            "reasons. `strict`: nothing when any row is rejected; `dry_run`: only the report."
        ),
    )
    def post(self, request: Request) -> Response:
        if not request.user.has_perm(IMPORT_REGISTRY_PERMISSION):
            raise PermissionDenied(_("Only operators import the registry."))
        upload = request.FILES.get("file")
        if upload is not None and upload.size and upload.size > import_max_bytes():
            raise PayloadTooLarge(_("The file is larger than %s bytes.") % import_max_bytes())
        serializer = ImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rows = registry_rows_read(data["file"].read(), filename=data["file"].name, encoding=data.get("encoding"))
        report = registry_import(rows=rows, actor_id=request.user.pk, strict=data["strict"], dry_run=data["dry_run"])
        return Response(report.as_json())
