"""The life of an incident after its first report.

Field workers: accept, arrive, resolve (with a note and photos), hand back. Operators (with
``command.dispatch_incident``): dispatch to a worker, close, cancel. Each step locks the
incident row, checks the transition, stamps its time and appends one ``incident.updated``
event whose payload names the action, so response and resolution times can be measured from
the incident's timestamps and from the event log alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import incident_feature
from command.models import Incident, Worker
from command.services.photos import photo_files, photo_files_delete, photos_attach, photos_prepare

DISPATCH_PERMISSION = "command.dispatch_incident"
Status = Incident.Status
NOTE_MAX_CHARS = 4000


class IncidentStateError(Exception):
    """The step does not apply to the incident as it is now (HTTP 409); ``str()`` says why."""


class IncidentNotFound(Exception):
    """No such incident, or not one this user may act on (HTTP 404 either way)."""


def worker_may_act(*, worker: Worker, incident: Incident) -> bool:
    """A worker acts on incidents of their team, of their cells, or assigned to them."""
    if incident.worker_id == worker.pk or incident.team_id == worker.team_id:
        return True
    return incident.grid_cell_id is not None and worker.cells.filter(pk=incident.grid_cell_id).exists()


def _locked(incident_id: int) -> Incident:
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise IncidentNotFound(incident_id)
    return incident


def _locked_for_worker(incident_id: int, worker: Worker) -> Incident:
    incident = _locked(incident_id)
    if not worker_may_act(worker=worker, incident=incident):
        raise IncidentNotFound(incident_id)
    return incident


def _require(incident: Incident, allowed: Sequence[str], action: str) -> None:
    if incident.status not in allowed:
        raise IncidentStateError(
            _("Cannot %(action)s incident #%(id)s: it is %(status)s.")
            % {"action": action, "id": incident.pk, "status": incident.get_status_display()}
        )


def _require_assignee(incident: Incident, worker: Worker, action: str) -> None:
    if incident.worker_id != worker.pk:
        raise IncidentStateError(
            _("Cannot %(action)s incident #%(id)s: it is assigned to someone else.")
            % {"action": action, "id": incident.pk}
        )


def _save_and_announce(
    incident: Incident, *, fields: list[str], now: datetime, action: str, actor_id: int | None, **extra: Any
) -> Incident:
    incident.updated_at = now
    incident.save(update_fields=[*fields, "updated_at"])
    payload = incident_feature(incident)
    payload["properties"] = {**payload["properties"], "action": action, **extra}
    event_append(kind="incident.updated", layer="incidents", object_id=incident.pk, actor_id=actor_id, payload=payload)
    return incident


def _check_note(note: str, field: str = "note") -> str:
    if len(note) > NOTE_MAX_CHARS:
        raise ValidationError({field: _("The note is longer than %(max)s characters.") % {"max": NOTE_MAX_CHARS}})
    return note.strip()


@transaction.atomic
def incident_accept(*, incident_id: int, worker: Worker, at: datetime | None = None) -> Incident:
    """Take the incident: a new one, or one dispatched to me."""
    now = at or timezone.now()
    incident = _locked_for_worker(incident_id, worker)
    _require(incident, (Status.NEW, Status.DISPATCHED), _("accept"))
    if incident.status == Status.DISPATCHED and incident.worker_id not in (None, worker.pk):
        _require_assignee(incident, worker, _("accept"))
    incident.status = Status.ACCEPTED
    incident.worker = worker
    incident.accepted_at = now
    return _save_and_announce(
        incident,
        fields=["status", "worker", "accepted_at"],
        now=now,
        action="accept",
        actor_id=worker.user_id,
    )


@transaction.atomic
def incident_arrive(*, incident_id: int, worker: Worker, at: datetime | None = None) -> Incident:
    now = at or timezone.now()
    incident = _locked_for_worker(incident_id, worker)
    _require(incident, (Status.ACCEPTED,), _("mark arrival at"))
    _require_assignee(incident, worker, _("mark arrival at"))
    incident.status = Status.ON_SCENE
    incident.arrived_at = now
    return _save_and_announce(
        incident, fields=["status", "arrived_at"], now=now, action="arrive", actor_id=worker.user_id
    )


def incident_resolve(
    *, incident_id: int, worker: Worker, note: str, photos: Sequence[Any] = (), at: datetime | None = None
) -> Incident:
    """Done on scene: a note (required) and optional photos of the result."""
    note = _check_note(note)
    if not note:
        raise ValidationError({"note": _("Say in a few words how the incident was resolved.")})
    prepared = photos_prepare(photos) if photos else []
    now = at or timezone.now()
    written: list[str] = []
    try:
        with transaction.atomic():
            incident = _locked_for_worker(incident_id, worker)
            _require(incident, (Status.ACCEPTED, Status.ON_SCENE), _("resolve"))
            _require_assignee(incident, worker, _("resolve"))
            incident.status = Status.RESOLVED
            incident.resolved_at = now
            incident.resolution_note = note
            written.extend(photo_files(photos_attach(photos=prepared, incident=incident)))
            return _save_and_announce(
                incident,
                fields=["status", "resolved_at", "resolution_note"],
                now=now,
                action="resolve",
                actor_id=worker.user_id,
            )
    except BaseException:
        photo_files_delete(written)
        raise


@transaction.atomic
def incident_hand_back(*, incident_id: int, worker: Worker, reason: str, at: datetime | None = None) -> Incident:
    """Give the incident back to the team (status new, nobody assigned), with a reason."""
    reason = _check_note(reason, "reason")
    if not reason:
        raise ValidationError({"reason": _("Say why you hand the incident back.")})
    now = at or timezone.now()
    incident = _locked_for_worker(incident_id, worker)
    _require(incident, (Status.DISPATCHED, Status.ACCEPTED, Status.ON_SCENE), _("hand back"))
    _require_assignee(incident, worker, _("hand back"))
    incident.status = Status.NEW
    incident.worker = None
    incident.dispatched_at = None
    incident.accepted_at = None
    incident.arrived_at = None
    return _save_and_announce(
        incident,
        fields=["status", "worker", "dispatched_at", "accepted_at", "arrived_at"],
        now=now,
        action="hand_back",
        actor_id=worker.user_id,
        reason=reason,
    )


def _require_dispatcher(actor: Any) -> None:
    if actor is None or not actor.is_active or not actor.has_perm(DISPATCH_PERMISSION):
        raise PermissionDenied(_("Only operators may dispatch, close or cancel incidents."))


@transaction.atomic
def incident_dispatch(*, incident_id: int, worker_id: int, actor: Any, at: datetime | None = None) -> Incident:
    """An operator sends the incident to a worker (also a re-assignment)."""
    _require_dispatcher(actor)
    now = at or timezone.now()
    incident = _locked(incident_id)
    _require(incident, Incident.OPEN_STATUSES, _("dispatch"))
    worker = Worker.objects.filter(pk=worker_id).first()
    if worker is None:
        raise ValidationError({"worker_id": _("No worker %(id)s.") % {"id": worker_id}})
    return _dispatched(incident, worker=worker, team_id=worker.team_id, now=now, action="dispatch", actor=actor)


def _dispatched(
    incident: Incident, *, worker: Worker | None, team_id: int, now: datetime, action: str, actor: Any
) -> Incident:
    """The one dispatch write, to a worker (``incident_dispatch``) or a whole team
    (``incident_dispatch_team``): dispatched now, not yet accepted nor on scene."""
    incident.status = Status.DISPATCHED
    incident.worker = worker
    incident.team_id = team_id
    incident.dispatched_at = now
    incident.accepted_at = None
    incident.arrived_at = None
    return _save_and_announce(
        incident,
        fields=["status", "worker", "team", "dispatched_at", "accepted_at", "arrived_at"],
        now=now,
        action=action,
        actor_id=actor.pk,
    )


@transaction.atomic
def incident_close(*, incident_id: int, actor: Any, note: str = "", at: datetime | None = None) -> Incident:
    """An operator closes a resolved (or still open) incident."""
    _require_dispatcher(actor)
    note = _check_note(note)
    now = at or timezone.now()
    incident = _locked(incident_id)
    _require(incident, (*Incident.OPEN_STATUSES, Status.RESOLVED), _("close"))
    incident.status = Status.CLOSED
    incident.closed_at = now
    fields = ["status", "closed_at"]
    if note:
        incident.resolution_note = "\n".join(filter(None, [incident.resolution_note, note]))
        fields.append("resolution_note")
    return _save_and_announce(incident, fields=fields, now=now, action="close", actor_id=actor.pk)


@transaction.atomic
def incident_cancel(*, incident_id: int, actor: Any, reason: str, at: datetime | None = None) -> Incident:
    """An operator cancels an open incident (a false alarm, a duplicate)."""
    _require_dispatcher(actor)
    reason = _check_note(reason, "reason")
    if not reason:
        raise ValidationError({"reason": _("Say why the incident is cancelled.")})
    now = at or timezone.now()
    incident = _locked(incident_id)
    _require(incident, Incident.OPEN_STATUSES, _("cancel"))
    incident.status = Status.CANCELLED
    incident.cancelled_at = now
    return _save_and_announce(
        incident, fields=["status", "cancelled_at"], now=now, action="cancel", actor_id=actor.pk, reason=reason
    )


PRIORITIES = (1, 2, 3, 4)  # as Category.priority: 1 = most urgent
ALARM_PRIORITY = 1  # an open incident of this priority is an alarm on the wall until acknowledged
CONTROL_ROOM_PERMISSION = "command.use_control_room"


@transaction.atomic
def incident_dispatch_team(*, incident_id: int, team_id: int, actor: Any, at: datetime | None = None) -> Incident:
    """An operator sends the incident to a whole team: any member may accept it."""
    from command.models import Team

    _require_dispatcher(actor)
    now = at or timezone.now()
    incident = _locked(incident_id)
    _require(incident, Incident.OPEN_STATUSES, _("dispatch"))
    if not Team.objects.filter(pk=team_id).exists():
        raise ValidationError({"team_id": _("No team %(id)s.") % {"id": team_id}})
    return _dispatched(incident, worker=None, team_id=team_id, now=now, action="dispatch_team", actor=actor)


@transaction.atomic
def incident_priority_set(*, incident_id: int, priority: int, actor: Any, at: datetime | None = None) -> Incident:
    """An operator changes an open incident's priority (1 = most urgent ... 4)."""
    _require_dispatcher(actor)
    if priority not in PRIORITIES:
        raise ValidationError({"priority": _("The priority is 1 (most urgent) to 4.")})
    now = at or timezone.now()
    incident = _locked(incident_id)
    _require(incident, Incident.OPEN_STATUSES, _("change the priority of"))
    if incident.priority == priority:
        return incident  # nothing changed: no event
    incident.priority = priority
    fields = ["priority"]
    if priority == ALARM_PRIORITY and incident.alarm_acknowledged_at is not None:
        incident.alarm_acknowledged_at = None  # raised to the top again: an alarm again
        incident.alarm_acknowledged_by = None
        fields += ["alarm_acknowledged_at", "alarm_acknowledged_by"]
    return _save_and_announce(incident, fields=fields, now=now, action="priority", actor_id=actor.pk)


@transaction.atomic
def alarm_acknowledge(*, incident_id: int, actor: Any, at: datetime | None = None) -> Incident:
    """An operator acknowledges a top-priority incident's alarm: the banner and the sound stop
    on every wall (event ``alarm.acknowledged``)."""
    if actor is None or not actor.is_active or not actor.has_perm(CONTROL_ROOM_PERMISSION):
        raise PermissionDenied(_("Only control-room operators may acknowledge alarms."))
    now = at or timezone.now()
    incident = _locked(incident_id)
    if incident.priority != ALARM_PRIORITY or incident.status not in Incident.OPEN_STATUSES:
        raise IncidentStateError(
            _("Incident #%(id)s raises no alarm: only open incidents of priority %(p)s do.")
            % {"id": incident.pk, "p": ALARM_PRIORITY}
        )
    if incident.alarm_acknowledged_at is not None:
        raise IncidentStateError(
            _("The alarm of incident #%(id)s was already acknowledged at %(time)s.")
            % {"id": incident.pk, "time": timezone.localtime(incident.alarm_acknowledged_at).strftime("%H:%M:%S")}
        )
    incident.alarm_acknowledged_at = now
    incident.alarm_acknowledged_by = actor
    incident.save(update_fields=["alarm_acknowledged_at", "alarm_acknowledged_by"])
    event_append(
        kind="alarm.acknowledged",
        layer="incidents",
        object_id=incident.pk,
        actor_id=actor.pk,
        payload=incident_feature(incident),
    )
    return incident


OVERDUE_BATCH = 500
# One key for the SLA job across every process (pg_try_advisory_xact_lock): ASCII "GCsla".
SLA_LOCK_KEY = 0x4743736C61


@transaction.atomic
def incidents_overdue_mark(*, now: datetime | None = None, limit: int = OVERDUE_BATCH) -> int:
    """The SLA job: announce every open incident past its ``due_at`` that was not announced yet
    (one ``incident.overdue`` event each, ``overdue_at`` stamped), at most ``limit`` per call.
    Runs under a transaction-scoped advisory lock, so when every Daphne process runs it (one of
    the periodic jobs, command/periodic.py) only one does the work at a time; the others return
    0 at once."""
    from django.db import connection

    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SLA_LOCK_KEY])
        row = cursor.fetchone()
    if not row or not row[0]:
        return 0
    due = list(
        Incident.objects.select_for_update(skip_locked=True)
        .filter(status__in=Incident.OPEN_STATUSES, overdue_at__isnull=True, due_at__lt=now)
        .order_by("due_at", "pk")[:limit]
    )
    for incident in due:
        incident.overdue_at = now
        incident.save(update_fields=["overdue_at"])
        event_append(
            kind="incident.overdue",
            layer="incidents",
            object_id=incident.pk,
            actor_id=None,
            payload=incident_feature(incident),
        )
    return len(due)
