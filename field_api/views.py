"""The field API (v1): thin views — an input serializer validates, a service acts, an output
serializer (or its plain-data twin on the hot path) answers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.http import FileResponse, Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.field_selectors import photo_get_for_user
from command.lockout import locked_for
from command.models import Category, ReportPhoto
from command.report_input import report_values_from_wire
from command.services.accounts import api_token_issue, api_token_revoke
from command.services.photos import photo_max_bytes, photo_max_count
from command.services.reports import ReportConflict, report_submit
from field_api.auth import DeviceTokenAuthentication, FastTokenAuthentication
from field_api.errors import PayloadTooLarge
from field_api.parsers import StrictJSONParser
from field_api.serializers import (
    ConflictSerializer,
    ErrorSerializer,
    NoInputSerializer,
    ReportInputSerializer,
    ReportOutputSerializer,
    StrictInputSerializer,
    report_output,
)
from field_api.throttles import AuthThrottle, ReadThrottle, ReportThrottle

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input: one list of reasons per field, or detail."),
    401: OpenApiResponse(ErrorSerializer, description="Not logged in (send Authorization: Token <key>)."),
    403: OpenApiResponse(ErrorSerializer, description="Logged in, but not allowed."),
    413: OpenApiResponse(ErrorSerializer, description="Body or photo too large."),
    415: OpenApiResponse(ErrorSerializer, description="Unsupported content type."),
    429: OpenApiResponse(ErrorSerializer, description="Rate limit reached; see Retry-After."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented refusals of an operation: those named, and those any request may get."""
    return {code: ERRORS[code] for code in sorted({*codes, 401, 403, 429})}


def json_body_limit() -> int:
    return int(getattr(settings, "FIELD_API_MAX_JSON_BYTES", 64 * 1024))


def body_limit() -> int:
    return int(getattr(settings, "FIELD_API_MAX_BODY_BYTES", photo_max_count() * photo_max_bytes() + 1024 * 1024))


def check_body_size(request: Request) -> None:
    """Refuse an oversized body before anything parses it (413, with the limit)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    multipart = (request.content_type or "").startswith("multipart/")
    limit = body_limit() if multipart else json_body_limit()
    if length > limit:
        raise PayloadTooLarge(
            _("The request body has %(size)s bytes; at most %(limit)s are accepted.") % {"size": length, "limit": limit}
        )


class ReportView(APIView):
    """Submit a report (idempotent by client_id)."""

    parser_classes = [StrictJSONParser, MultiPartParser, FormParser]
    throttle_classes = [ReportThrottle]
    authentication_classes = [FastTokenAuthentication, SessionAuthentication, DeviceTokenAuthentication]

    @extend_schema(
        operation_id="report_submit",
        request={
            "application/json": ReportInputSerializer,
            "multipart/form-data": ReportInputSerializer,
        },
        responses={
            201: OpenApiResponse(ReportOutputSerializer, description="Stored: the receipt."),
            200: OpenApiResponse(ReportOutputSerializer, description="A retry of a stored report: the same receipt."),
            409: OpenApiResponse(ConflictSerializer, description="This client_id was used for different content."),
            **errors(400, 401, 403, 413, 415, 429),
        },
        description=(
            "Send a report. `client_id` is generated once on the phone and reused on every retry: the same "
            "content again answers 200 with the first receipt, other content 409. JSON, or multipart with the "
            "same fields as form fields (`location` as a GeoJSON string, or `longitude` + `latitude`) and up "
            "to 6 `photos`."
        ),
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)
        data = request.data
        if not hasattr(data, "getlist") and not isinstance(data, dict):
            raise ValidationError({"detail": _("Send a JSON object with the report's fields.")})
        if hasattr(data, "getlist"):  # multipart: photos are the files, the rest plain fields
            data = {key: data.get(key) for key in data if key != "photos"}
            files = request.FILES.getlist("photos")
            if files:
                data["photos"] = files
            unexpected = sorted(set(request.FILES) - {"photos"})
            if unexpected:
                raise ValidationError({"photos": [_("Send photos in the field 'photos', not %s.") % unexpected[0]]})
        serializer = ReportInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        valid: dict[str, Any] = serializer.validated_data
        category: Category = valid["category"]
        try:
            result = report_submit(
                reporter_id=request.user.pk,
                client_id=valid["client_id"],
                category=category,
                location=valid["location"],
                photos=valid.get("photos") or (),
                **report_values_from_wire(valid),
            )
        except ReportConflict as conflict:
            existing = conflict.existing
            return Response(
                {
                    "detail": _("This client_id was already used for a report with different content."),
                    "client_id": str(existing.client_id),
                    "existing": report_output(
                        existing, category_code=existing.category.code, photos=list(existing.photos.all())
                    ),
                },
                status=status.HTTP_409_CONFLICT,
            )
        report = result.report
        photos = result.photos if result.created else list(report.photos.all())
        return Response(
            report_output(report, category_code=category.code, photos=photos),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class CategoryOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    icon = serializers.CharField()
    priority = serializers.IntegerField()
    sla_minutes = serializers.IntegerField()
    team = serializers.CharField()


class CategoryListView(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(operation_id="category_list", responses={200: CategoryOutputSerializer(many=True), **errors(401)})
    def get(self, request: Request) -> Response:
        rows = Category.objects.select_related("default_team").order_by("priority", "code")
        return Response(
            [
                {
                    "code": c.code,
                    "name_zh": c.name_zh,
                    "name_en": c.name_en,
                    "icon": c.icon,
                    "priority": c.priority,
                    "sla_minutes": c.sla_minutes,
                    "team": c.default_team.code,
                }
                for c in rows
            ]
        )


class TokenInputSerializer(StrictInputSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, style={"input_type": "password"}, trim_whitespace=False)


TokenOutput = inline_serializer(
    "TokenOutput",
    {"token": serializers.CharField(), "username": serializers.CharField(), "worker_id": serializers.IntegerField()},
)


class TokenView(APIView):
    """A phone logs in once and keeps its token; DELETE revokes it (log out everywhere)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [AuthThrottle]
    authentication_classes: list[type] = []  # POST works without a CSRF token; DELETE authenticates itself

    @extend_schema(
        operation_id="token_obtain",
        request=TokenInputSerializer,
        responses={200: TokenOutput, **errors(400, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        retry_after = locked_for(request)
        if retry_after:
            locked = Throttled(
                detail=_("Too many failed logins for this account or address; try again in %(s)s s.")
                % {"s": retry_after}
            )
            locked.wait = retry_after  # type: ignore[attr-defined] # Retry-After, no second sentence
            raise locked
        if user is None or not user.is_active:
            raise ValidationError({"detail": _("Wrong user name or password.")})
        key = api_token_issue(user=user)
        worker = getattr(user, "worker", None)
        return Response({"token": key, "username": user.get_username(), "worker_id": worker.pk if worker else None})

    @extend_schema(operation_id="token_revoke", request=None, responses={204: None, **errors(401, 429)})
    def delete(self, request: Request) -> Response:
        found = FastTokenAuthentication().authenticate(request)
        if found is None:
            return Response({"detail": _("Send the token to revoke as Authorization: Token <key>.")}, status=401)
        api_token_revoke(user=found[0])
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionTokenView(APIView):
    """The field app's token for a browser that is already signed in to the site: the worker logs
    in once, not once more for the app. The session authenticates (with its CSRF check)."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [AuthThrottle]
    authentication_classes = [SessionAuthentication]

    @extend_schema(operation_id="token_from_session", request=None, responses={200: TokenOutput, **errors(400)})
    def post(self, request: Request) -> Response:
        NoInputSerializer(data=request.data).is_valid(raise_exception=True)  # takes no fields
        user = request.user
        assert isinstance(user, User)  # IsAuthenticated
        key = api_token_issue(user=user)
        worker = getattr(user, "worker", None)
        return Response({"token": key, "username": user.get_username(), "worker_id": worker.pk if worker else None})


def photo_file_response(photo: Any, *, thumbnail: bool) -> FileResponse:
    """A stored photo's JPEG or its thumbnail (a report's or a notice's), cached by the browser
    only; 404 when there is none for this user or its file is gone."""
    if photo is None:
        raise Http404
    try:
        handle = (photo.thumbnail if thumbnail else photo.image).open("rb")
    except OSError as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


class PhotoView(APIView):
    """A photo (or its thumbnail), only for users who may see its incident; anyone else gets
    404, as for a photo that does not exist."""

    throttle_classes = [ReadThrottle]
    thumbnail = False

    @extend_schema(
        operation_id="photo_get",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: ErrorSerializer, **errors(401)},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        photo: ReportPhoto | None = photo_get_for_user(user=request.user, photo_id=pk)
        return photo_file_response(photo, thumbnail=self.thumbnail)


class PhotoThumbnailView(PhotoView):
    thumbnail = True

    @extend_schema(
        operation_id="photo_thumbnail_get",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: ErrorSerializer, **errors(401)},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        return super().get(request, pk)
