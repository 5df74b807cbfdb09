"""Field reports: the one way a report enters the system."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import incident_feature, report_feature
from command.geometry import check_geometry
from command.models import Category, Incident, Report
from command.selectors import cell_and_building_for_point

# A report joins an open incident of the same category this close in space and time.
INCIDENT_GROUP_METRES = 50.0
INCIDENT_GROUP_WINDOW = timedelta(minutes=30)


class ReportConflict(Exception):
    """The client id was already used for a report with different content (HTTP 409)."""

    def __init__(self, existing: Report) -> None:
        super().__init__(f"client id {existing.client_id} was already used for a different report")
        self.existing = existing


@dataclass(frozen=True)
class SubmitResult:
    report: Report
    created: bool  # False: an idempotent retry of an earlier submission


def report_content_hash(
    *, category_code: str, location: Point, accuracy_m: float | None, note: str, client_time: datetime | None
) -> str:
    canonical = json.dumps(
        {
            "category": category_code,
            "lon": round(location.x, 7),
            "lat": round(location.y, 7),
            "accuracy": None if accuracy_m is None else round(float(accuracy_m), 2),
            "note": note.strip(),
            "client_time": client_time.astimezone(UTC).isoformat(timespec="seconds") if client_time else None,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _route_worker(*, team_id: int, cell_id: int | None, location: Point) -> int | None:
    """The cell's own on-duty workers of the team first, nearest first; then any on-duty
    worker of the team, nearest first (KNN on the last known position)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT w.id FROM command_worker w
            WHERE w.team_id = %s AND w.on_duty
            ORDER BY
              (%s::bigint IS NOT NULL AND EXISTS (
                 SELECT 1 FROM command_worker_cells wc WHERE wc.worker_id = w.id AND wc.gridcell_id = %s)) DESC,
              w.last_position IS NULL,
              w.last_position <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326),
              w.id
            LIMIT 1
            """,
            [team_id, cell_id, cell_id, location.x, location.y],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _open_incident_nearby(*, category_id: int, location: Point, now: datetime) -> Incident | None:
    """An open incident of the category within 50 m whose last report is under 30 minutes old."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id FROM command_incident
            WHERE category_id = %s AND status = ANY(%s) AND last_report_at >= %s
              AND location && ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s)
              AND ST_DWithin(location::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)
            ORDER BY location <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)
            LIMIT 1
            FOR UPDATE
            """,
            [
                category_id,
                list(Incident.OPEN_STATUSES),
                now - INCIDENT_GROUP_WINDOW,
                location.x,
                location.y,
                0.001,  # ~85-110 m: a generous bbox pre-filter for the 50 m test below
                location.x,
                location.y,
                INCIDENT_GROUP_METRES,
                location.x,
                location.y,
            ],
        )
        row = cursor.fetchone()
    return Incident.objects.get(pk=row[0]) if row else None


def report_submit(
    *,
    reporter_id: int | None,
    client_id: uuid.UUID,
    category: Category,
    location: Point,
    accuracy_m: float | None = None,
    note: str = "",
    client_time: datetime | None = None,
    source: str = Report.Source.FIELD,
    received_at: datetime | None = None,
) -> SubmitResult:
    """Store a report: assign its grid cell and nearest building, route it to its team, group it
    into an incident (or open one with its SLA due time) and append the events — in one
    transaction. The client id is the idempotency key, enforced by the unique constraint: the
    same id with the same content returns the first report; with other content, ReportConflict."""
    check_geometry(location, expected="Point")
    if accuracy_m is not None and (accuracy_m < 0 or accuracy_m > 100_000):
        raise ValidationError({"accuracy": _("Accuracy must be between 0 and 100000 metres.")})
    if len(note) > 4000:
        raise ValidationError({"note": _("The note is longer than 4000 characters.")})
    content_hash = report_content_hash(
        category_code=category.code, location=location, accuracy_m=accuracy_m, note=note, client_time=client_time
    )
    now = received_at or timezone.now()
    try:
        with transaction.atomic():
            return SubmitResult(
                _report_create(
                    reporter_id=reporter_id,
                    client_id=client_id,
                    category=category,
                    location=location,
                    accuracy_m=accuracy_m,
                    note=note,
                    client_time=client_time,
                    source=source,
                    now=now,
                    content_hash=content_hash,
                ),
                created=True,
            )
    except IntegrityError as exc:
        existing = Report.objects.filter(client_id=client_id).first()
        if existing is None:
            raise exc
        if existing.content_hash != content_hash:
            raise ReportConflict(existing) from None
        return SubmitResult(existing, created=False)


def _report_create(
    *,
    reporter_id: int | None,
    client_id: uuid.UUID,
    category: Category,
    location: Point,
    accuracy_m: float | None,
    note: str,
    client_time: datetime | None,
    source: str,
    now: datetime,
    content_hash: str,
) -> Report:
    # A concurrent retry of the same client id blocks on the unique index at the report insert
    # until the first commits, then fails with IntegrityError: its whole transaction (incident
    # update and events included) rolls back and the caller returns the first report.
    cell_id, building_id = cell_and_building_for_point(location)
    report = Report(
        client_id=client_id,
        content_hash=content_hash,
        source=source,
        reporter_id=reporter_id,
        category=category,
        location=location,
        accuracy_m=accuracy_m,
        note=note,
        client_time=client_time,
        received_at=now,
        grid_cell_id=cell_id,
        outside_grid=cell_id is None,
        building_id=building_id,
    )
    # Serialise grouping per category, so two simultaneous reports of one event open one incident.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7001, category.pk])
    incident = _open_incident_nearby(category_id=category.pk, location=location, now=now)
    incident_created = incident is None
    if incident is None:
        worker_id = _route_worker(team_id=category.default_team_id, cell_id=cell_id, location=location)
        incident = Incident.objects.create(
            category=category,
            status=Incident.Status.DISPATCHED if worker_id else Incident.Status.NEW,
            priority=category.priority,
            location=location,
            grid_cell_id=cell_id,
            outside_grid=cell_id is None,
            building_id=building_id,
            team_id=category.default_team_id,
            worker_id=worker_id,
            report_count=1,
            note=note[:500],
            opened_at=now,
            last_report_at=now,
            due_at=now + timedelta(minutes=category.sla_minutes),
            dispatched_at=now if worker_id else None,
            updated_at=now,
        )
    else:
        incident.report_count += 1
        incident.last_report_at = max(incident.last_report_at, now)
        incident.updated_at = now
        incident.save(update_fields=["report_count", "last_report_at", "updated_at"])
    report.incident = incident
    report.save(force_insert=True)
    _append_report_events(report, incident, incident_created=incident_created, actor_id=reporter_id)
    return report


def _append_report_events(report: Report, incident: Incident, *, incident_created: bool, actor_id: int | None) -> None:
    event_append(
        kind="incident.created" if incident_created else "incident.updated",
        layer="incidents",
        object_id=incident.pk,
        actor_id=actor_id,
        payload=incident_feature(incident),
    )
    event_append(
        kind="report.created", layer="reports", object_id=report.pk, actor_id=actor_id, payload=report_feature(report)
    )


def report_get_existing(client_id: uuid.UUID) -> Report | None:
    return Report.objects.filter(client_id=client_id).select_related("incident").first()
