"""Open311 GeoReport v2 (JSON): existing 311 clients list services, file and read requests.

Mapping: a *service* is a category (``service_code`` = category code); a *service request* is
a report (``service_request_id`` = report id), its status that of the report's incident
(open / closed). ``api_key`` is a user's API token (the same as ``Authorization: Token``).
Plain Open311 has no idempotency key; a client may send our extension field ``client_id``
(a UUID) to make retries safe. Errors use Open311's form: ``[{"code": 400, "description": ...}]``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.access import PurposeRefused, purpose_stated
from command.field_selectors import ContentsPolicy, contents_policy, reports_visible_to
from command.geometry import point_from_lon_lat
from command.logins import token_key_valid
from command.models import Category, Incident, Report
from command.report_input import report_value
from command.services.reports import ReportConflict, report_submit
from field_api.auth import FastTokenAuthentication
from field_api.errors import exception_handler
from field_api.params import PAGE_PARAMETERS, csv_param, page_of
from field_api.parsers import StrictJSONParser
from field_api.serializers import CATEGORY_CODE, CategoryCodeField, StrictInputSerializer
from field_api.throttles import ReadThrottle, ReportThrottle
from field_api.views import check_body_size

MAX_REQUESTS = 1000


class ApiKeyAuthentication(FastTokenAuthentication):
    """Open311's ``api_key`` (query string or form field) is a user's API token."""

    def authenticate(self, request: Request) -> Any:
        key = request.query_params.get("api_key")
        if not key and request.method == "POST":
            data = request.data
            key = data.get("api_key") if hasattr(data, "get") else None
        if not key:
            return super().authenticate(request)  # Authorization: Token <key> works too
        if not token_key_valid(key):
            raise exceptions.AuthenticationFailed(_("Invalid api_key."))
        return self.authenticate_credentials(key)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "field_api.open311.ApiKeyAuthentication"
    name = "open311ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "query", "name": "api_key", "description": "Your API token (Open311)."}


OPEN311_ERROR_LIST = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
ERRORS = {
    code: OpenApiResponse(OPEN311_ERROR_LIST, description=text)
    for code, text in {
        400: "Bad input (Open311 error list).",
        401: "api_key missing or unknown.",
        403: "Not allowed.",
        404: "No such service request.",
        409: "client_id reused for different content.",
        413: "Body too large.",
        415: "Unsupported content type.",
        429: "Rate limit reached.",
    }.items()
}


def open311_errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in sorted({*codes, 401, 403, 429})}


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _flatten(value, "" if key == "detail" else f"{key}: ")]
    if isinstance(detail, list):
        return [m for value in detail for m in _flatten(value, prefix)]
    return [f"{prefix}{detail}"]


class Open311View(APIView):
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [ReadThrottle]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code >= 400 and not (isinstance(response.data, list)):
            response.data = [
                {"code": response.status_code, "description": message} for message in _flatten(response.data)
            ]
        return response

    def get_exception_handler(self) -> Any:
        return exception_handler


class ServiceSerializer(serializers.Serializer):
    service_code = serializers.CharField()
    service_name = serializers.CharField()
    description = serializers.CharField()
    metadata = serializers.BooleanField()
    type = serializers.CharField()
    keywords = serializers.CharField()
    group = serializers.CharField()


class ServiceListView(Open311View):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="open311_service_list", responses={200: ServiceSerializer(many=True)}, auth=[])
    def get(self, request: Request) -> Response:
        zh = (get_language() or "zh-hans").startswith("zh")
        return Response(
            [
                {
                    "service_code": c.code,
                    "service_name": c.name_zh if zh else c.name_en,
                    "description": f"{c.name_zh} / {c.name_en}",
                    "metadata": False,
                    "type": "realtime",
                    "keywords": c.code.replace("_", ","),
                    "group": c.default_team.name_zh if zh else c.default_team.name_en,
                }
                for c in Category.objects.select_related("default_team").order_by("priority", "code")
            ]
        )


class RequestInputSerializer(StrictInputSerializer):
    api_key = serializers.CharField(required=False, help_text="Your API token.")
    service_code = CategoryCodeField()
    lat = serializers.FloatField(min_value=-90, max_value=90)
    long = serializers.FloatField(min_value=-180, max_value=180)
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    client_id = serializers.UUIDField(required=False, help_text="Extension: an idempotency key for retries.")
    requested_datetime = serializers.DateTimeField(required=False, help_text="When the request was made.")


class RequestCreatedSerializer(serializers.Serializer):
    service_request_id = serializers.CharField()
    service_notice = serializers.CharField(allow_blank=True)
    account_id = serializers.CharField(allow_null=True)


class ServiceRequestSerializer(serializers.Serializer):
    service_request_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["open", "closed"])
    status_notes = serializers.CharField(allow_blank=True)
    service_name = serializers.CharField()
    service_code = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    agency_responsible = serializers.CharField(allow_blank=True)
    service_notice = serializers.CharField(allow_blank=True)
    requested_datetime = serializers.DateTimeField()
    updated_datetime = serializers.DateTimeField()
    expected_datetime = serializers.DateTimeField()
    address = serializers.CharField(allow_blank=True)
    lat = serializers.FloatField()
    long = serializers.FloatField()
    media_url = serializers.CharField(allow_blank=True)


def service_request(report: Report, *, policy: ContentsPolicy, decision: str) -> dict[str, Any]:
    """One report as an Open311 service request; its description and the incident's resolution
    note as the contents policy decided (command.field_selectors.ContentsPolicy, the REST
    API's): as written, or masked (``***``), or left out ("") for roles that never see them."""
    incident = report.incident
    zh = (get_language() or "zh-hans").startswith("zh")
    photos = list(report.photos.all())
    photo = min(photos, key=lambda p: p.pk) if photos else None
    note = report_value(report, "note") or ""
    resolution = incident.resolution_note
    if decision == "masked":
        note = policy.hide(note) or ""
        resolution = resolution if policy.assigned(incident) else (policy.hide(resolution) or "")
    return {
        "service_request_id": str(report.pk),
        "status": "open" if incident.status in Incident.OPEN_STATUSES else "closed",
        "status_notes": incident.get_status_display() + (f": {resolution}" if resolution else ""),
        "service_name": report.category.name_zh if zh else report.category.name_en,
        "service_code": report.category.code,
        "description": note,
        "agency_responsible": (incident.team.name_zh if zh else incident.team.name_en) if incident.team else "",
        "service_notice": "",
        "requested_datetime": (report_value(report, "client_time") or report.received_at).isoformat(),
        "updated_datetime": incident.updated_at.isoformat(),
        "expected_datetime": incident.due_at.isoformat(),
        "address": report.building.address if report.building else "",
        "lat": report.location.y,
        "long": report.location.x,
        "media_url": f"/api/v1/photos/{photo.pk}/" if photo else "",
    }


def _visible_reports(user: Any) -> Any:
    """Service requests are reports: those command.field_selectors lets the viewer see (with the
    reports layer, those of incidents one may see; else one's own only)."""
    return (
        reports_visible_to(user)
        .select_related("incident", "incident__team", "category", "building")
        .order_by("-received_at", "-pk")
    )


def service_requests(request: Request, reports: list[Report]) -> list[dict[str, Any]]:
    """Reports as service requests, their contents by the REST API's policy: masked unless the
    viewer states ``?purpose=`` (Open311's unmask step: needs the personal-data permission, each
    unmasked request written to the access log) or is assigned to the incident; one's own in full."""
    user = request.user
    try:
        purpose = purpose_stated(user, request.query_params.get("purpose"))
    except PurposeRefused as refused:
        if refused.status == 403:
            raise exceptions.PermissionDenied(refused.reason) from None
        raise serializers.ValidationError({"purpose": [refused.reason]}) from None
    policy = contents_policy(user, purpose)
    out: list[dict[str, Any]] = []
    decided: dict[str, list[str]] = {}
    for report in reports:
        decision = policy.decide(report.incident, own=report.reporter_id == user.pk)
        decided.setdefault(decision, []).append(f"report:{report.pk}")
        out.append(service_request(report, policy=policy, decision=decision))
    policy.log(user=user, channel="open311", decided=decided)
    return out


PURPOSE_PARAMETER = OpenApiParameter(
    "purpose",
    str,
    description="Extension: why you need the descriptions unmasked (needs the personal-data permission; "
    "written to the access log). Without it, other people's descriptions come masked.",
)


def _date_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise serializers.ValidationError({name: [_("Send a date and time in W3C format (ISO 8601).")]})
    return value


class RequestListView(Open311View):
    parser_classes = [FormParser, MultiPartParser, StrictJSONParser]

    def get_throttles(self) -> list[Any]:
        return [ReportThrottle()] if self.request.method == "POST" else [ReadThrottle()]

    @extend_schema(
        operation_id="open311_request_list",
        parameters=[
            OpenApiParameter("api_key", str, description="Your API token."),
            OpenApiParameter("service_request_id", str, description="Comma-separated ids."),
            OpenApiParameter("service_code", str),
            OpenApiParameter("status", str, enum=["open", "closed"]),
            OpenApiParameter("start_date", str, description="ISO 8601 date-time."),
            OpenApiParameter("end_date", str, description="ISO 8601 date-time."),
            *PAGE_PARAMETERS,
            PURPOSE_PARAMETER,
        ],
        responses={200: ServiceRequestSerializer(many=True), **open311_errors(400)},
    )
    def get(self, request: Request) -> Response:
        rows = _visible_reports(request.user)
        if request.query_params.get("service_request_id") is not None:
            wanted = csv_param(
                request,
                "service_request_id",
                int,
                reason=_("Send service request ids as numbers, separated by commas."),
            )
            rows = rows.filter(pk__in=wanted)
        if "service_code" in request.query_params:
            code = request.query_params["service_code"]
            if not CATEGORY_CODE.fullmatch(code):
                raise serializers.ValidationError({"service_code": [_("Send a service code from services.json.")]})
            rows = rows.filter(category__code=code)
        wanted_status = request.query_params.get("status")
        if wanted_status is not None:
            if wanted_status not in {"open", "closed"}:
                raise serializers.ValidationError({"status": [_("Status is open or closed.")]})
            open_filter = {"incident__status__in": Incident.OPEN_STATUSES}
            rows = rows.filter(**open_filter) if wanted_status == "open" else rows.exclude(**open_filter)
        start, end = _date_param(request, "start_date"), _date_param(request, "end_date")
        if start is not None:
            rows = rows.filter(received_at__gte=start)
        if end is not None:
            rows = rows.filter(received_at__lte=end)
        page = page_of(request, rows.prefetch_related("photos"), default=MAX_REQUESTS, high=MAX_REQUESTS)
        return Response(service_requests(request, page))

    @extend_schema(
        operation_id="open311_request_create",
        request={
            "application/x-www-form-urlencoded": RequestInputSerializer,
            "application/json": RequestInputSerializer,
        },
        responses={
            201: RequestCreatedSerializer(many=True),
            200: RequestCreatedSerializer(many=True),
            **open311_errors(400, 409, 413, 415),
        },
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)
        data = request.data
        if hasattr(data, "getlist"):
            data = {key: data.get(key) for key in data}
        elif not isinstance(data, dict):
            raise serializers.ValidationError({"detail": _("Send the request's fields as a form or a JSON object.")})
        serializer = RequestInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        valid = serializer.validated_data
        try:
            location = point_from_lon_lat(valid["long"], valid["lat"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"lat": exc.messages, "long": exc.messages}) from exc
        try:
            result = report_submit(
                reporter_id=request.user.pk,
                client_id=valid.get("client_id") or uuid.uuid4(),
                category=valid["service_code"],
                location=location,
                note=valid.get("description") or "",
                client_time=valid.get("requested_datetime"),
                source=Report.Source.OPEN311,
            )
        except ReportConflict:
            return Response(
                [{"code": 409, "description": _("This client_id was already used for different content.")}],
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            [{"service_request_id": str(result.report.pk), "service_notice": "", "account_id": None}],
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class RequestDetailView(Open311View):
    @extend_schema(
        operation_id="open311_request_get",
        parameters=[OpenApiParameter("api_key", str, description="Your API token."), PURPOSE_PARAMETER],
        responses={200: ServiceRequestSerializer(many=True), **open311_errors(400, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        report = _visible_reports(request.user).prefetch_related("photos").filter(pk=pk).first()
        if report is None:
            raise exceptions.NotFound(_("No such service request."))
        return Response(service_requests(request, [report]))
