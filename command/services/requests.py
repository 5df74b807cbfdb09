"""The request pipeline (the "wish pool", 微心愿): submit, triage or publish, take, resolve, rate.

Every step locks the request row, checks the transition, stamps its time and appends one
``request.updated`` event (``request.created`` for the first) whose payload names the step, so
the wall, the map (the ``requests`` layer, by building) and the requester's page follow it live.
Taking is atomic: ``request_take`` locks the row, so of two volunteers taking the same published
request at once exactly one wins and the other gets ``RequestStateError`` (tests/residents/
test_requests.py proves it with two database sessions). SLA: ``due_at`` from the category (or
``REQUEST_DEFAULT_SLA_MINUTES``); the periodic job ``requests_mark_overdue`` flags open requests
past it, with an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import feature_of
from command.geometry import check_geometry
from command.models import Building, Category, RequestPhoto, ServiceRequest, Team, Worker
from command.selectors import grid_cell_for_point
from command.services.photos import photo_files_delete, photo_rows_store, photos_prepare
from command.services.points import points_award

DISPATCH_PERMISSION = "command.dispatch_incident"
FIELD_APP_PERMISSION = "command.use_field_app"
TITLE_MAX = 100
TEXT_MAX = 4000
Status = ServiceRequest.Status


class RequestStateError(Exception):
    """The step does not apply to the request as it is now (HTTP 409); ``str()`` says why."""


def _announce(request: ServiceRequest, *, action: str, actor_id: int | None, created: bool = False) -> None:
    payload = feature_of(request, "requests")
    payload["properties"] = {**payload["properties"], "action": action}
    event_append(
        kind="request.created" if created else "request.updated",
        layer="requests",
        object_id=request.pk,
        actor_id=actor_id,
        payload=payload,
    )


def _locked(request_id: int) -> ServiceRequest:
    request = ServiceRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise ServiceRequest.DoesNotExist(request_id)
    return request


def _require(request: ServiceRequest, allowed: Sequence[str], action: str) -> None:
    if request.status not in allowed:
        raise RequestStateError(
            _("Cannot %(action)s request #%(id)s: it is %(status)s.")
            % {"action": action, "id": request.pk, "status": request.get_status_display()}
        )


def _require_operator(actor: Any) -> None:
    if actor is None or not actor.is_active or not actor.has_perm(DISPATCH_PERMISSION):
        raise PermissionDenied(_("Only operators triage, publish or cancel requests."))


def _text(value: str, field: str, *, required: bool = False, limit: int = TEXT_MAX) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise ValidationError({field: _("The text contains a NUL character.")})
    if required and not value:
        raise ValidationError({field: _("This field is required.")})
    if len(value) > limit:
        raise ValidationError({field: _("At most %(max)s characters.") % {"max": limit}})
    return value


def _sla_due(now: datetime, category: Category | None) -> datetime:
    minutes = category.sla_minutes if category is not None else settings.REQUEST_DEFAULT_SLA_MINUTES
    return now + timedelta(minutes=minutes)


def request_submit(
    *,
    channel: str,
    title: str,
    description: str = "",
    requester: Any = None,
    requester_phone: str = "",
    category: Category | None = None,
    building_id: int | None = None,
    location: Point | None = None,
    actor: Any = None,
    at: datetime | None = None,
) -> ServiceRequest:
    """A new request. From the resident page the requester is the signed-in resident; by phone
    or in person an operator (``actor``) enters it with the caller's phone. The place is a
    building (its point), or a point; the grid cell follows from it."""
    if channel not in ServiceRequest.Channel.values:
        raise ValidationError({"channel": _("Unknown channel.")})
    title = _text(title, "title", required=True, limit=TITLE_MAX)
    description = _text(description, "description")
    if requester_phone and not all(ch.isdigit() or ch in "+- " for ch in requester_phone):
        raise ValidationError({"requester_phone": _("A phone number has digits, spaces, + and - only.")})
    if channel in ("phone", "in_person"):
        _require_operator(actor)
    building = None
    if building_id is not None:
        building = Building.objects.filter(pk=building_id).first()
        if building is None:
            raise ValidationError({"building_id": _("No building %(id)s.") % {"id": building_id}})
        surface = building.footprint.point_on_surface
        location = Point(surface.x, surface.y, srid=4326)
    elif location is not None:
        check_geometry(location, expected="Point")
    now = at or timezone.now()
    with transaction.atomic():
        request = ServiceRequest.objects.create(
            channel=channel,
            requester=requester if getattr(requester, "pk", None) else None,
            requester_phone=requester_phone[:32],
            title=title,
            description=description,
            category=category,
            team=category.default_team if category is not None else None,
            location=location,
            building=building,
            grid_cell_id=grid_cell_for_point(location) if location is not None else None,
            created_at=now,
            due_at=_sla_due(now, category),
            updated_at=now,
        )
        _announce(request, action="submit", actor_id=getattr(actor or requester, "pk", None), created=True)
    return request


@transaction.atomic
def request_triage(
    *, request_id: int, actor: Any, category: Category, team: Team | None = None, at: datetime | None = None
) -> ServiceRequest:
    """An operator gives the request its category and team (the category's own by default);
    the SLA runs from the request's creation with the category's minutes."""
    _require_operator(actor)
    now = at or timezone.now()
    request = _locked(request_id)
    _require(request, (Status.SUBMITTED, Status.TRIAGED, Status.PUBLISHED), _("triage"))
    request.category = category
    request.team = team or category.default_team
    request.status = Status.TRIAGED
    request.due_at = request.created_at + timedelta(minutes=category.sla_minutes)
    request.updated_at = now
    request.save(update_fields=["category", "team", "status", "due_at", "updated_at"])
    _announce(request, action="triage", actor_id=actor.pk)
    return request


@transaction.atomic
def request_publish(*, request_id: int, actor: Any, at: datetime | None = None) -> ServiceRequest:
    """An operator puts the request in the pool: any volunteer may take it."""
    _require_operator(actor)
    now = at or timezone.now()
    request = _locked(request_id)
    _require(request, (Status.SUBMITTED, Status.TRIAGED), _("publish"))
    request.status = Status.PUBLISHED
    request.published_at = now
    request.updated_at = now
    request.save(update_fields=["status", "published_at", "updated_at"])
    _announce(request, action="publish", actor_id=actor.pk)
    return request


def _require_worker(worker: Worker | None) -> Worker:
    if worker is None or not worker.user.is_active or not worker.user.has_perm(FIELD_APP_PERMISSION):
        raise PermissionDenied(_("Only field workers and volunteers take requests."))
    return worker


@transaction.atomic
def request_take(*, request_id: int, worker: Worker, at: datetime | None = None) -> ServiceRequest:
    """A volunteer takes a published request (or a worker of its team a triaged one). The row
    lock makes the first taker win; anyone after gets RequestStateError."""
    _require_worker(worker)
    now = at or timezone.now()
    request = _locked(request_id)
    if request.status == Status.TRIAGED and request.team_id != worker.team_id:
        raise RequestStateError(_("Request #%(id)s is assigned to another team.") % {"id": request.pk})
    if request.status == Status.TAKEN:
        raise RequestStateError(_("Request #%(id)s was already taken by someone else.") % {"id": request.pk})
    _require(request, (Status.PUBLISHED, Status.TRIAGED), _("take"))
    request.status = Status.TAKEN
    request.worker = worker
    request.taken_at = now
    request.updated_at = now
    request.save(update_fields=["status", "worker", "taken_at", "updated_at"])
    _announce(request, action="take", actor_id=worker.user_id)
    return request


def request_resolve(
    *, request_id: int, worker: Worker, note: str, photos: Sequence[Any] = (), at: datetime | None = None
) -> ServiceRequest:
    """The taker says how it was done, with photos (re-encoded, without metadata)."""
    _require_worker(worker)
    note = _text(note, "note", required=True)
    prepared = photos_prepare(photos) if photos else []
    now = at or timezone.now()
    written: list[str] = []
    try:
        with transaction.atomic():
            request = _locked(request_id)
            _require(request, (Status.TAKEN,), _("resolve"))
            if request.worker_id != worker.pk:
                raise RequestStateError(_("Request #%(id)s was taken by someone else.") % {"id": request.pk})
            photo_rows_store(RequestPhoto, {"request": request}, prepared, written)
            request.status = Status.RESOLVED
            request.resolution_note = note
            request.resolved_at = now
            request.overdue = False
            request.updated_at = now
            request.save(update_fields=["status", "resolution_note", "resolved_at", "overdue", "updated_at"])
            _announce(request, action="resolve", actor_id=worker.user_id)
            points_award(worker=worker, kind="order", source=f"request:{request.pk}", at=now)
            return request
    except BaseException:
        photo_files_delete(written)
        raise


@transaction.atomic
def request_rate(
    *, request_id: int, requester: Any, rating: int, feedback: str = "", at: datetime | None = None
) -> ServiceRequest:
    """The requester rates the resolved request (1-5 stars) and closes it."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError({"rating": _("Give 1 to 5 stars.")})
    feedback = _text(feedback, "feedback")
    now = at or timezone.now()
    request = _locked(request_id)
    if request.requester_id is None or request.requester_id != getattr(requester, "pk", None):
        raise ServiceRequest.DoesNotExist(request_id)  # someone else's request: not found
    _require(request, (Status.RESOLVED,), _("rate"))
    request.rating = rating
    request.feedback = feedback
    request.status = Status.CLOSED
    request.closed_at = now
    request.updated_at = now
    request.save(update_fields=["rating", "feedback", "status", "closed_at", "updated_at"])
    _announce(request, action="rate", actor_id=requester.pk)
    return request


@transaction.atomic
def request_cancel(*, request_id: int, actor: Any, at: datetime | None = None) -> ServiceRequest:
    """The requester withdraws an open request, or an operator cancels it."""
    request = _locked(request_id)
    own = request.requester_id is not None and request.requester_id == getattr(actor, "pk", None)
    if not own:
        _require_operator(actor)
    now = at or timezone.now()
    _require(request, ServiceRequest.OPEN_STATUSES, _("cancel"))
    request.status = Status.CANCELLED
    request.updated_at = now
    request.save(update_fields=["status", "updated_at"])
    _announce(request, action="cancel", actor_id=actor.pk)
    return request


def requests_mark_overdue(*, now: datetime | None = None) -> list[int]:
    """Flag open requests past their due time, each with its event (the periodic job)."""
    now = now or timezone.now()
    with transaction.atomic():
        late = list(
            ServiceRequest.objects.select_for_update(skip_locked=True)
            .filter(status__in=ServiceRequest.OPEN_STATUSES, overdue=False, due_at__lt=now)
            .order_by("pk")
        )
        for request in late:
            request.overdue = True
            request.updated_at = now
            request.save(update_fields=["overdue", "updated_at"])
            _announce(request, action="overdue", actor_id=None)
    return [r.pk for r in late]
