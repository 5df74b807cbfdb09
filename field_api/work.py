"""Working the assignments: my open incidents nearest first, the incident steps, my duty and
my location pings. Operators' dispatch / close / cancel live here too (same incident URLs)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from command.field_selectors import (
    IncidentContents,
    assignments_for_worker,
    incident_contents_for_user,
    incident_get_for_user,
    worker_for_user,
)
from command.geometry import point_from_lon_lat
from command.models import Incident, Worker
from command.services import incidents as incident_services
from command.services.workers import NotOnDuty, Ping, worker_duty_set, worker_pings_record
from field_api.parsers import StrictJSONParser
from field_api.personal import purpose_param
from field_api.serializers import (
    ErrorSerializer,
    FiniteFloatField,
    NoInputSerializer,
    PointField,
    StrictInputSerializer,
    photo_output,
)
from field_api.throttles import IncidentActionThrottle, PingThrottle, ReadThrottle
from field_api.views import check_body_size, errors


def require_worker(request: Request) -> Worker:
    worker = worker_for_user(request.user)
    if worker is None:
        raise PermissionDenied(_("Only grid workers have assignments; this login is not a worker."))
    return worker


class IncidentFeatureSerializer(GeoFeatureModelSerializer):
    category = serializers.CharField(source="category.code")
    category_name = serializers.CharField(source="category.name_zh")
    distance_m = serializers.SerializerMethodField()
    # What residents wrote and photographed: command.field_selectors decides per viewer (masked,
    # ``***``, unless unmasked); the view passes ``contents`` from incident_contents_for_user.
    note = serializers.SerializerMethodField()
    resolution_note = serializers.SerializerMethodField()
    notes_masked = serializers.SerializerMethodField()
    photos = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        geo_field = "location"
        fields = (
            "id",
            "category",
            "category_name",
            "status",
            "priority",
            "grid_cell_id",
            "outside_grid",
            "building_id",
            "team_id",
            "worker_id",
            "report_count",
            "note",
            "resolution_note",
            "notes_masked",
            "opened_at",
            "due_at",
            "dispatched_at",
            "accepted_at",
            "arrived_at",
            "resolved_at",
            "closed_at",
            "cancelled_at",
            "updated_at",
            "distance_m",
            "photos",
        )

    def get_distance_m(self, obj: Incident) -> float | None:
        distance = getattr(obj, "distance", None)
        return round(distance.m, 1) if distance is not None else None

    def _contents(self, obj: Incident) -> IncidentContents:
        contents: IncidentContents = self.context["contents"][obj.pk]
        return contents

    def get_note(self, obj: Incident) -> str | None:
        return self._contents(obj).note

    def get_resolution_note(self, obj: Incident) -> str | None:
        return self._contents(obj).resolution_note

    def get_notes_masked(self, obj: Incident) -> bool:
        return self._contents(obj).masked

    def get_photos(self, obj: Incident) -> list[dict[str, Any]]:
        return [photo_output(p) for p in self._contents(obj).photos]


def incidents_output(
    user: Any, incidents: list[Incident], *, with_photos: bool, channel: str, purpose: str = ""
) -> Any:
    """Incidents as GeoJSON features, their contents as ``user`` may see them (unmasked views logged)."""
    contents = incident_contents_for_user(
        user=user, incidents=incidents, with_photos=with_photos, channel=channel, purpose=purpose
    )
    return IncidentFeatureSerializer(incidents, many=True, context={"contents": contents}).data


class AssignmentListView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="assignment_list",
        parameters=[
            OpenApiParameter("longitude", float, description="My position (else my last ping)."),
            OpenApiParameter("latitude", float, description="My position (else my last ping)."),
        ],
        responses={200: IncidentFeatureSerializer(many=True), **errors(400, 401, 403, 429)},
        description="Open incidents of my team, of my grid cells, or assigned to me; nearest first.",
    )
    def get(self, request: Request) -> Response:
        worker = require_worker(request)
        lon, lat = request.query_params.get("longitude"), request.query_params.get("latitude")
        position = None
        if lon is not None or lat is not None:
            try:
                position = point_from_lon_lat(lon, lat)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"longitude": exc.messages, "latitude": exc.messages}) from exc
        rows = list(assignments_for_worker(worker=worker, position=position)[:200])
        return Response(incidents_output(request.user, rows, with_photos=False, channel="assignments"))


class IncidentDetailView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="incident_get",
        parameters=[
            OpenApiParameter(
                "purpose",
                str,
                description="Why you need the reports' notes unmasked (needs the personal-data permission; "
                "written to the access log). Without it the notes come masked.",
            )
        ],
        responses={200: IncidentFeatureSerializer, 404: ErrorSerializer, **errors(400, 401, 403, 429)},
    )
    def get(self, request: Request, pk: int) -> Response:
        incident = incident_get_for_user(user=request.user, incident_id=pk)
        if incident is None:
            raise NotFound(_("No such incident."))
        purpose = purpose_param(request)
        output = incidents_output(request.user, [incident], with_photos=True, channel="rest", purpose=purpose)
        return Response(output["features"][0])


class ResolveInputSerializer(StrictInputSerializer):
    note = serializers.CharField(max_length=incident_services.NOTE_MAX_CHARS)
    photos = serializers.ListField(child=serializers.FileField(allow_empty_file=False), required=False, max_length=6)


class ReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=incident_services.NOTE_MAX_CHARS)


class DispatchInputSerializer(StrictInputSerializer):
    worker_id = serializers.IntegerField(min_value=1, required=False)
    team_id = serializers.IntegerField(min_value=1, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("worker_id" in attrs) == ("team_id" in attrs):
            message = _("Send either worker_id (a worker) or team_id (a whole team), not both.")
            raise serializers.ValidationError({"worker_id": [message], "team_id": [message]})
        return attrs


class PriorityInputSerializer(StrictInputSerializer):
    priority = serializers.IntegerField(min_value=1, max_value=4)


class CloseInputSerializer(StrictInputSerializer):
    note = serializers.CharField(max_length=incident_services.NOTE_MAX_CHARS, required=False, allow_blank=True)


ACTION_RESPONSES = {
    200: IncidentFeatureSerializer,
    404: OpenApiResponse(ErrorSerializer, description="No such incident, or not one you may act on."),
    409: OpenApiResponse(ErrorSerializer, description="The step does not apply to the incident's status."),
    **errors(400, 401, 403, 413, 415, 429),
}


class IncidentActionView(APIView):
    """POST /api/v1/incidents/<id>/<action>/."""

    throttle_classes = [IncidentActionThrottle]
    parser_classes = [StrictJSONParser, MultiPartParser, FormParser]
    action = ""
    input_serializer: type[serializers.Serializer] = NoInputSerializer  # no fields: any sent is refused

    def post(self, request: Request, pk: int) -> Response:
        check_body_size(request)
        raw = request.data
        if hasattr(raw, "getlist"):
            raw = {key: raw.get(key) for key in raw if key != "photos"}
            if request.FILES.getlist("photos"):
                raw["photos"] = request.FILES.getlist("photos")
        elif not isinstance(raw, dict):
            raise serializers.ValidationError({"detail": _("Send a JSON object.")})
        serializer = self.input_serializer(data=raw)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            incident = self.perform(request, pk, data)
        except incident_services.IncidentNotFound as exc:
            raise NotFound(_("No such incident, or not one you may act on.")) from exc
        except incident_services.IncidentStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(incidents_output(request.user, [incident], with_photos=False, channel="rest")["features"][0])

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        raise NotImplementedError


def _action_schema(operation_id: str, request: Any, description: str) -> Any:
    return extend_schema(
        operation_id=operation_id, request=request, responses=ACTION_RESPONSES, description=description
    )


class IncidentAcceptView(IncidentActionView):
    @_action_schema("incident_accept", None, "Take a new incident, or one dispatched to me.")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_accept(incident_id=pk, worker=require_worker(request))


class IncidentArriveView(IncidentActionView):
    @_action_schema("incident_arrive", None, "I am on scene.")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_arrive(incident_id=pk, worker=require_worker(request))


class IncidentResolveView(IncidentActionView):
    input_serializer = ResolveInputSerializer

    @_action_schema(
        "incident_resolve",
        {"application/json": ResolveInputSerializer, "multipart/form-data": ResolveInputSerializer},
        "Resolved, with a note and up to 6 photos (multipart).",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_resolve(
            incident_id=pk, worker=require_worker(request), note=data["note"], photos=data.get("photos") or ()
        )


class IncidentHandBackView(IncidentActionView):
    input_serializer = ReasonInputSerializer

    @_action_schema("incident_hand_back", ReasonInputSerializer, "Give the incident back to the team, with a reason.")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_hand_back(
            incident_id=pk, worker=require_worker(request), reason=data["reason"]
        )


class IncidentDispatchView(IncidentActionView):
    input_serializer = DispatchInputSerializer

    @_action_schema(
        "incident_dispatch",
        DispatchInputSerializer,
        "Operators: send the incident to a worker (worker_id) or to a whole team (team_id). The "
        "worker's field app is told at once over its websocket (incident.updated).",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        if "team_id" in data:
            return incident_services.incident_dispatch_team(incident_id=pk, team_id=data["team_id"], actor=request.user)
        return incident_services.incident_dispatch(incident_id=pk, worker_id=data["worker_id"], actor=request.user)


class IncidentPriorityView(IncidentActionView):
    input_serializer = PriorityInputSerializer

    @_action_schema("incident_priority", PriorityInputSerializer, "Operators: change an open incident's priority.")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_priority_set(incident_id=pk, priority=data["priority"], actor=request.user)


class IncidentAcknowledgeView(IncidentActionView):
    @_action_schema(
        "incident_alarm_acknowledge",
        None,
        "Control room: acknowledge a top-priority incident's alarm; every wall clears it (alarm.acknowledged).",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.alarm_acknowledge(incident_id=pk, actor=request.user)


class IncidentCloseView(IncidentActionView):
    input_serializer = CloseInputSerializer

    @_action_schema("incident_close", CloseInputSerializer, "Operators: close the incident.")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_close(incident_id=pk, actor=request.user, note=data.get("note") or "")


class IncidentCancelView(IncidentActionView):
    input_serializer = ReasonInputSerializer

    @_action_schema(
        "incident_cancel", ReasonInputSerializer, "Operators: cancel the incident (false alarm, duplicate)."
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def perform(self, request: Request, pk: int, data: dict[str, Any]) -> Incident:
        return incident_services.incident_cancel(incident_id=pk, actor=request.user, reason=data["reason"])


# --- me: duty and pings ---------------------------------------------------------------------


class MeOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    worker_id = serializers.IntegerField(allow_null=True)
    display_name = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True)
    cells = serializers.ListField(child=serializers.CharField())
    on_duty = serializers.BooleanField()
    last_position = PointField(allow_null=True)
    last_position_at = serializers.DateTimeField(allow_null=True)


def me_output(user: Any, worker: Worker | None) -> dict[str, Any]:
    if worker is None:
        return {
            "username": user.get_username(),
            "worker_id": None,
            "display_name": None,
            "team": None,
            "cells": [],
            "on_duty": False,
            "last_position": None,
            "last_position_at": None,
        }
    position = worker.last_position
    return {
        "username": user.get_username(),
        "worker_id": worker.pk,
        "display_name": worker.display_name,
        "team": worker.team.code,
        "cells": list(worker.cells.order_by("code").values_list("code", flat=True)),
        "on_duty": worker.on_duty,
        "last_position": {"type": "Point", "coordinates": [position.x, position.y]} if position else None,
        "last_position_at": worker.last_position_at.isoformat() if worker.last_position_at else None,
    }


class MeView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(operation_id="me_get", responses={200: MeOutputSerializer, **errors(401, 429)})
    def get(self, request: Request) -> Response:
        return Response(me_output(request.user, worker_for_user(request.user)))


class DutyInputSerializer(StrictInputSerializer):
    on_duty = serializers.BooleanField()


class DutyView(APIView):
    throttle_classes = [IncidentActionThrottle]

    @extend_schema(
        operation_id="duty_set",
        request=DutyInputSerializer,
        responses={200: MeOutputSerializer, **errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"detail": _("Send a JSON object.")})
        serializer = DutyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)  # a bad body is a 400 whoever sends it
        worker = require_worker(request)
        worker = worker_duty_set(worker=worker, on_duty=serializer.validated_data["on_duty"])
        return Response(me_output(request.user, worker))


class PingInputSerializer(StrictInputSerializer):
    location = PointField()
    accuracy = FiniteFloatField(required=False, allow_null=True, min_value=0, max_value=100_000)
    recorded_at = serializers.DateTimeField()


class PingBatchInputSerializer(StrictInputSerializer):
    pings = serializers.ListField(child=PingInputSerializer(), allow_empty=False, max_length=100)


class PingBatchOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    last_position = PointField(allow_null=True)
    last_position_at = serializers.DateTimeField(allow_null=True)


class PingView(APIView):
    throttle_classes = [PingThrottle]

    @extend_schema(
        operation_id="ping_batch",
        request=PingBatchInputSerializer,
        responses={
            202: PingBatchOutputSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Not on duty."),
            **errors(400, 401, 403, 413, 415, 429),
        },
        description="Up to 100 positions recorded while on duty, oldest first or in any order.",
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"detail": _("Send a JSON object with a list of pings.")})
        serializer = PingBatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)  # a bad body is a 400 whoever sends it
        worker = require_worker(request)
        pings = [
            Ping(location=p["location"], recorded_at=p["recorded_at"], accuracy_m=p.get("accuracy"))
            for p in serializer.validated_data["pings"]
        ]
        try:
            result = worker_pings_record(worker=worker, pings=pings)
        except NotOnDuty as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        position = result.worker.last_position
        return Response(
            {
                "accepted": result.accepted,
                "last_position": {"type": "Point", "coordinates": [position.x, position.y]} if position else None,
                "last_position_at": result.worker.last_position_at.isoformat()
                if result.worker.last_position_at
                else None,
            },
            status=status.HTTP_202_ACCEPTED,
        )
