"""The request pipeline's pages and API.

Resident page (phone-first, ``/resident/``): sign in by phone + code, file a request, follow it
live (``/ws/resident/``), rate it. Field app (``/field/requests/``): the pool of published
requests, take one, resolve it with a note and photos. REST (``/api/v1/requests/…``): operators
enter phone calls and walk-ins, triage and publish; workers take and resolve.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.models import Category, Resident, ServiceRequest, Team, Worker
from command.services.notices import RESIDENT_PERMISSION, notices_for_resident
from command.services.phone_login import PhoneLoginRefused, phone_code_send, phone_code_verify
from command.services.requests import (
    RequestStateError,
    request_cancel,
    request_publish,
    request_rate,
    request_resolve,
    request_submit,
    request_take,
    request_triage,
)
from field_api.serializers import NoInputSerializer, StrictInputSerializer

FIELD_PERMISSION = "command.use_field_app"
STEPS = ("submitted", "triaged", "published", "taken", "resolved", "closed")


def _errors(exc: ValidationError) -> dict[str, str]:
    return {f: " ".join(str(m) for m in msgs) for f, msgs in exc.message_dict.items()}


def _uid(request: Any) -> int:
    return int(request.user.pk or 0)


def _is_resident(request: HttpRequest) -> bool:
    return request.user.is_authenticated and request.user.has_perm(RESIDENT_PERMISSION)


# --- the resident page -------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def resident_home(request: HttpRequest) -> HttpResponse:
    if not _is_resident(request):
        return render(request, "residents/resident_signin.html", {"step": "phone"})
    mine = ServiceRequest.objects.filter(requester_id=_uid(request)).order_by("-created_at")
    context: dict[str, Any] = {
        "requests": mine[:50],
        "categories": Category.objects.all(),
        "notices": notices_for_resident(request.user)[:20],
        "errors": {},
    }
    if request.method == "POST":
        resident = Resident.objects.filter(user_id=_uid(request)).select_related("household").first()
        category = Category.objects.filter(code=request.POST.get("category", "")).first()
        try:
            created = request_submit(
                channel=ServiceRequest.Channel.RESIDENT_PAGE,
                title=request.POST.get("title", ""),
                description=request.POST.get("description", ""),
                requester=request.user,
                requester_phone=resident.phone if resident else "",
                category=category,
                building_id=resident.household.building_id if resident and resident.household else None,
            )
        except ValidationError as exc:
            context.update(errors=_errors(exc), title=request.POST.get("title", ""))
            return render(request, "residents/resident_home.html", context, status=400)
        return redirect("residents:resident-request", pk=created.pk)
    return render(request, "residents/resident_home.html", context)


@never_cache
@require_POST
def resident_code(request: HttpRequest) -> HttpResponse:
    phone = request.POST.get("phone", "")
    try:
        phone_code_send(phone=phone)
    except PhoneLoginRefused as refused:
        return render(
            request,
            "residents/resident_signin.html",
            {"step": "phone", "error": str(refused), "phone": phone},
            status=refused.status,
        )
    return render(request, "residents/resident_signin.html", {"step": "code", "phone": phone})


@never_cache
@require_POST
def resident_login(request: HttpRequest) -> HttpResponse:
    phone = request.POST.get("phone", "")
    try:
        user = phone_code_verify(phone=phone, code=request.POST.get("code", ""))
    except PhoneLoginRefused as refused:
        return render(
            request,
            "residents/resident_signin.html",
            {"step": "code", "error": str(refused), "phone": phone},
            status=refused.status,
        )
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])  # permissions as for any login
    return redirect("residents:resident-home")


@require_POST
def resident_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("residents:resident-home")


def _own_request(request: HttpRequest, pk: int) -> ServiceRequest:
    if not _is_resident(request):
        raise Http404
    found = ServiceRequest.objects.select_related("category").filter(pk=pk, requester_id=_uid(request)).first()
    if found is None:
        raise Http404  # someone else's request answers like a missing one
    return found


@never_cache
@require_http_methods(["GET", "POST"])
def resident_request(request: HttpRequest, pk: int) -> HttpResponse:
    item = _own_request(request, pk)
    errors: dict[str, str] = {}
    code = 200
    if request.method == "POST":
        try:
            rating = int(request.POST.get("rating", "0"))
        except ValueError:
            rating = 0
        try:
            request_rate(
                request_id=item.pk, requester=request.user, rating=rating, feedback=request.POST.get("feedback", "")
            )
            return redirect("residents:resident-request", pk=item.pk)
        except ValidationError as exc:
            errors, code = _errors(exc), 400
        except RequestStateError as exc:
            errors, code = {"rating": str(exc)}, 409
    return _request_page(request, item, errors, code)


def _request_page(request: HttpRequest, item: ServiceRequest, errors: dict[str, str], code: int) -> HttpResponse:
    """The requester's page of one request: its steps, reached so far, and any refusal."""
    reached = STEPS.index(item.status) if item.status in STEPS else -1
    steps = [(s, ServiceRequest.Status(s).label, i <= reached) for i, s in enumerate(STEPS)]
    return render(
        request,
        "residents/resident_request.html",
        {"item": item, "steps": steps, "errors": errors, "photos": item.photos.all()},
        status=code,
    )


@never_cache
@require_POST
def resident_request_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """The requester withdraws their own open request (the same service as the desk's cancel)."""
    item = _own_request(request, pk)
    try:
        request_cancel(request_id=item.pk, actor=request.user)
    except RequestStateError as exc:
        return _request_page(request, item, {"cancel": str(exc)}, 409)
    return redirect("residents:resident-request", pk=item.pk)


# --- the field app's pool ----------------------------------------------------------------------


def _worker(request: HttpRequest) -> Worker:
    if not request.user.is_authenticated or not request.user.has_perm(FIELD_PERMISSION):
        raise Http404
    worker = Worker.objects.filter(user_id=_uid(request)).select_related("user").first()
    if worker is None:
        raise Http404
    return worker


@login_required
@never_cache
def field_pool(request: HttpRequest) -> HttpResponse:
    worker = _worker(request)
    pool = ServiceRequest.objects.filter(
        Q(status=ServiceRequest.Status.PUBLISHED) | Q(status=ServiceRequest.Status.TRIAGED, team=worker.team)
    ).order_by("due_at")
    mine = ServiceRequest.objects.filter(worker=worker, status=ServiceRequest.Status.TAKEN).order_by("due_at")
    return render(
        request,
        "residents/field_requests.html",
        {"pool": pool[:100], "mine": mine[:100], "message": request.GET.get("m", "")},
    )


@login_required
@require_POST
def field_take(request: HttpRequest, pk: int) -> HttpResponse:
    worker = _worker(request)
    try:
        request_take(request_id=pk, worker=worker)
    except ServiceRequest.DoesNotExist:
        raise Http404 from None
    except (RequestStateError, PermissionDenied) as exc:
        return render(
            request, "residents/field_requests.html", {"pool": [], "mine": [], "message": str(exc)}, status=409
        )
    return redirect("residents:field-requests")


@login_required
@require_POST
def field_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    worker = _worker(request)
    try:
        request_resolve(
            request_id=pk, worker=worker, note=request.POST.get("note", ""), photos=request.FILES.getlist("photos")
        )
    except ServiceRequest.DoesNotExist:
        raise Http404 from None
    except ValidationError as exc:
        message = " ".join(_errors(exc).values())
        return render(
            request, "residents/field_requests.html", {"pool": [], "mine": [], "message": message}, status=400
        )
    except (RequestStateError, PermissionDenied) as exc:
        return render(
            request, "residents/field_requests.html", {"pool": [], "mine": [], "message": str(exc)}, status=409
        )
    return redirect("residents:field-requests")


# --- the operators' desk ------------------------------------------------------------------------


DISPATCH_PERMISSION = "command.dispatch_incident"


@never_cache
@login_required
def desk_requests(request: HttpRequest) -> HttpResponse:
    """The operators' request desk: a phone call entered, triage to a category and team, publish
    to the volunteers, take and resolve (a desk login with a team), all through the REST API."""
    if not request.user.has_perm(DISPATCH_PERMISSION):
        raise Http404
    context = {
        "categories": Category.objects.order_by("code"),
        "teams": Team.objects.filter(is_field_team=True).order_by("code"),
        "worker_id": Worker.objects.filter(user_id=_uid(request)).values_list("pk", flat=True).first(),
        "labels": dict(ServiceRequest.Status.choices),
        "cancel_question": _cancel_question(),
    }
    return render(request, "residents/desk_requests.html", context)


# --- REST: operators and workers ---------------------------------------------------------------


class RequestOut(serializers.ModelSerializer[ServiceRequest]):
    category: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )

    class Meta:
        model = ServiceRequest
        fields = [
            "id", "channel", "status", "title", "description", "category", "team", "building", "grid_cell",
            "worker", "overdue", "rating", "feedback", "resolution_note", "created_at", "due_at", "updated_at",
        ]  # fmt: skip


class RequestIn(StrictInputSerializer):
    channel = serializers.ChoiceField(choices=["phone", "in_person", "field_app"])
    title = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    requester_phone = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")
    category = serializers.SlugRelatedField(slug_field="code", queryset=Category.objects.all(), required=False)
    building_id = serializers.IntegerField(required=False)


def _visible(request: Request, pk: int) -> ServiceRequest:
    """Operators see every request, workers those in the pool, of their team or taken by them."""
    user = request.user
    query = ServiceRequest.objects.filter(pk=pk)
    if not user.has_perm("command.dispatch_incident"):
        worker = Worker.objects.filter(user_id=int(user.pk or 0)).first()
        if worker is None:
            raise Http404
        query = query.filter(Q(status="published") | Q(team=worker.team) | Q(worker=worker))
    found = query.first()
    if found is None:
        raise Http404
    return found


DESK_LIST_MAX = 200


class RequestListView(APIView):
    @extend_schema(responses={200: RequestOut(many=True)})
    def get(self, request: Request) -> Response:
        """The operators' desk list: every open request and the latest closed ones, newest first."""
        if not request.user.has_perm(DISPATCH_PERMISSION):
            raise PermissionDenied()
        rows = ServiceRequest.objects.select_related("category", "team").order_by("-created_at")[:DESK_LIST_MAX]
        return Response(RequestOut(rows, many=True).data)

    @extend_schema(request=RequestIn, responses={201: RequestOut})
    def post(self, request: Request) -> Response:
        data = RequestIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["channel"] == "field_app" and not request.user.has_perm(FIELD_PERMISSION):
            raise PermissionDenied(_no_field_app())
        created = request_submit(
            channel=values["channel"],
            title=values["title"],
            description=values["description"],
            requester_phone=values["requester_phone"],
            requester=request.user if values["channel"] == "field_app" else None,
            category=values.get("category"),
            building_id=values.get("building_id"),
            actor=request.user,
        )
        return Response(RequestOut(created).data, status=status.HTTP_201_CREATED)


def _cancel_question() -> str:
    from django.utils.translation import gettext as _

    return _("Cancel request #%(id)s? The requester sees it cancelled.")


def _no_field_app() -> str:
    from django.utils.translation import gettext as _

    return _("Only field workers and volunteers file requests from the field app.")


class _Step(APIView):
    input_serializer: type[StrictInputSerializer] = NoInputSerializer

    @extend_schema(request=None, responses={200: RequestOut})
    def post(self, request: Request, pk: int) -> Response:
        self.input = self.input_serializer(data=request.data)
        self.input.is_valid(raise_exception=True)
        item = _visible(request, pk)
        try:
            done = self.step(request, item)
        except RequestStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RequestOut(done).data)

    def step(self, request: Request, item: ServiceRequest) -> ServiceRequest:
        raise NotImplementedError


class TriageIn(StrictInputSerializer):
    category = serializers.SlugRelatedField(slug_field="code", queryset=Category.objects.all())
    team = serializers.SlugRelatedField(
        slug_field="code", queryset=Team.objects.all(), required=False, help_text="default: the category's team"
    )


class RequestTriageView(_Step):
    input_serializer = TriageIn

    @extend_schema(request=TriageIn, responses={200: RequestOut})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, request: Request, item: ServiceRequest) -> ServiceRequest:
        values = self.input.validated_data
        return request_triage(
            request_id=item.pk, actor=request.user, category=values["category"], team=values.get("team")
        )


class RequestCancelView(_Step):
    """An operator cancels an open request (a duplicate, a call withdrawn by phone); a requester
    who filed it from the field app may withdraw it. One ``request.updated`` event (action
    ``cancel``) follows, as for every step."""

    def step(self, request: Request, item: ServiceRequest) -> ServiceRequest:
        return request_cancel(request_id=item.pk, actor=request.user)


class RequestPublishView(_Step):
    def step(self, request: Request, item: ServiceRequest) -> ServiceRequest:
        return request_publish(request_id=item.pk, actor=request.user)


class RequestTakeView(_Step):
    def step(self, request: Request, item: ServiceRequest) -> ServiceRequest:
        worker = Worker.objects.filter(user_id=_uid(request)).select_related("user").first()
        if worker is None:
            raise PermissionDenied(_no_field_app())
        return request_take(request_id=item.pk, worker=worker)


class ResolveIn(StrictInputSerializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    photos = serializers.ListField(child=serializers.FileField(), required=False, default=list, max_length=6)


class RequestResolveView(_Step):
    input_serializer = ResolveIn

    @extend_schema(
        request={"application/json": ResolveIn, "multipart/form-data": ResolveIn}, responses={200: RequestOut}
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def step(self, request: Request, item: ServiceRequest) -> ServiceRequest:
        worker = Worker.objects.filter(user_id=_uid(request)).select_related("user").first()
        if worker is None:
            raise PermissionDenied(_no_field_app())
        data = self.input.validated_data
        return request_resolve(request_id=item.pk, worker=worker, note=data["note"], photos=data["photos"])
