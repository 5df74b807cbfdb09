"""Field reports: the one way a report enters the system.

``report_submit`` is on the hot path (every phone report, the latency benchmark): it makes a
fixed, small number of round trips (pinned by tests/command/test_services_reports.py):

1. take the grouping locks (category x ~100 m squares), find the grid cell and the nearest
   building (one query),
2. find an open incident nearby, locked (one query),
3. route a worker and insert the incident, or bump the found incident (one or two),
4. insert the report (the idempotency key's unique index decides here), its photos,
5. append the events (command.eventlog).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import incident_feature, report_feature
from command.geometry import check_geometry, metres_to_degrees
from command.models import Category, Incident, Report, ReportPhoto
from command.selectors import BUILDING_NEAR_POINT_SQL, CELL_FOR_POINT_SQL
from command.services.photos import PreparedPhoto, photo_files, photo_files_delete, photos_attach, photos_prepare

# A report joins an open incident of the same category this close in space and time.
INCIDENT_GROUP_METRES = 50.0
INCIDENT_GROUP_WINDOW = timedelta(minutes=30)
# The nearest building footprint within this distance is the report's building.
BUILDING_WITHIN_METRES = 30.0
# Grouping is serialised per category and ~100 m square: a report takes the advisory locks of
# every square its 50 m grouping disk touches (in key order, so two reports never deadlock).
# Two reports that could join one incident share the square of that incident's location, so
# they serialise; reports far apart or of other categories run side by side.
GROUPING_LOCK_KEY = 7001
GROUPING_SQUARE_DEG = 0.001
NOTE_MAX_CHARS = 4000


class ReportConflict(Exception):
    """The client id was already used for a report with different content (HTTP 409)."""

    def __init__(self, existing: Report) -> None:
        super().__init__(f"client id {existing.client_id} was already used for a different report")
        self.existing = existing


@dataclass(frozen=True)
class SubmitResult:
    report: Report
    created: bool  # False: an idempotent retry of an earlier submission
    photos: list[ReportPhoto] = field(default_factory=list)  # photos stored by this call


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


_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)"
_LOCK_CELL_BUILDING_SQL = (
    "WITH locks AS (SELECT count(pg_advisory_xact_lock(k)) AS n"  # noqa: S608 - constants; values are parameters
    " FROM (SELECT k FROM unnest(%(lock_keys)s::bigint[]) k ORDER BY k) ordered) "
    "SELECT (SELECT n FROM locks), "
    f"({CELL_FOR_POINT_SQL.format(point=_POINT)}), "
    f"({BUILDING_NEAR_POINT_SQL.format(point=_POINT, expand='%(bexpand)s', metres='%(bmetres)s')})"
)

# Runs as its own statement after the lock is held, so its snapshot sees every incident that
# an earlier holder of the lock committed.
_NEARBY_INCIDENT_SQL = """
SELECT * FROM command_incident
WHERE category_id = %(category_id)s AND status = ANY(%(open)s) AND last_report_at >= %(since)s
  AND location && ST_Expand(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(iexpand)s)
  AND ST_DWithin(location::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(imetres)s)
ORDER BY location <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), id
LIMIT 1
FOR UPDATE
"""

# The cell's own on-duty workers of the team first, nearest first; then any on-duty worker of
# the team, nearest first (KNN on the last known position).
_ROUTE_WORKER_SQL = """
SELECT w.id FROM command_worker w
WHERE w.team_id = %(team_id)s AND w.on_duty
ORDER BY
  (%(cell_id)s::bigint IS NOT NULL AND EXISTS (
     SELECT 1 FROM command_worker_cells wc WHERE wc.worker_id = w.id AND wc.gridcell_id = %(cell_id)s)) DESC,
  w.last_position IS NULL,
  w.last_position <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326),
  w.id
LIMIT 1
"""


def report_route_worker(*, team_id: int, cell_id: int | None, location: Point) -> int | None:
    """The worker an incident at ``location`` in ``cell_id`` goes to (None: nobody on duty)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ROUTE_WORKER_SQL, {"team_id": team_id, "cell_id": cell_id, "lon": location.x, "lat": location.y}
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def grouping_lock_keys(*, category_id: int, lon: float, lat: float) -> list[int]:
    """The advisory-lock keys (signed 64-bit) of the squares the grouping disk touches."""
    dx, dy = metres_to_degrees(lat, INCIDENT_GROUP_METRES, INCIDENT_GROUP_METRES)
    keys = set()
    for bx in range(math.floor((lon - dx) / GROUPING_SQUARE_DEG), math.floor((lon + dx) / GROUPING_SQUARE_DEG) + 1):
        for by in range(math.floor((lat - dy) / GROUPING_SQUARE_DEG), math.floor((lat + dy) / GROUPING_SQUARE_DEG) + 1):
            digest = hashlib.blake2b(f"{GROUPING_LOCK_KEY}:{category_id}:{bx}:{by}".encode(), digest_size=8).digest()
            keys.add(int.from_bytes(digest, "big", signed=True))
    return sorted(keys)


def report_check(*, location: Point, accuracy_m: float | None, note: str) -> None:
    """The service's own checks (the API checks first, with per-field messages)."""
    check_geometry(location, expected="Point")
    if accuracy_m is not None and not (0 <= accuracy_m <= 100_000):  # also rejects NaN
        raise ValidationError({"accuracy": _("Accuracy must be between 0 and 100000 metres.")})
    if len(note) > NOTE_MAX_CHARS:
        raise ValidationError({"note": _("The note is longer than %(max)s characters.") % {"max": NOTE_MAX_CHARS}})


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
    photos: Sequence[Any] = (),
) -> SubmitResult:
    """Store a report: assign its grid cell and nearest building, route it to its team, group it
    into an incident (or open one with its SLA due time), store its photos and append the
    events — in one transaction. The client id is the idempotency key, enforced by the unique
    constraint: the same id with the same content returns the first report (adding any of
    ``photos`` not stored yet); with other content, ReportConflict."""
    report_check(location=location, accuracy_m=accuracy_m, note=note)
    prepared = photos_prepare(photos) if photos else []
    content_hash = report_content_hash(
        category_code=category.code, location=location, accuracy_m=accuracy_m, note=note, client_time=client_time
    )
    now = received_at or timezone.now()
    written: list[str] = []
    try:
        with transaction.atomic():
            report, stored = _report_create(
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
                photos=prepared,
                written=written,
            )
            return SubmitResult(report, created=True, photos=stored)
    except IntegrityError as exc:
        photo_files_delete(written)
        existing = Report.objects.filter(client_id=client_id).first()
        if existing is None:
            raise exc
        if existing.content_hash != content_hash:
            raise ReportConflict(existing) from None
        return SubmitResult(existing, created=False, photos=_photos_add_on_retry(existing, prepared))
    except BaseException:
        photo_files_delete(written)
        raise


def _photos_add_on_retry(report: Report, photos: list[PreparedPhoto]) -> list[ReportPhoto]:
    """A retry may carry photos the first attempt did not deliver; store only those."""
    if not photos:
        return []
    with transaction.atomic():
        return photos_attach(photos=photos, report=report)


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
    photos: list[PreparedPhoto],
    written: list[str],
) -> tuple[Report, list[ReportPhoto]]:
    # A concurrent retry of the same client id blocks on the unique index at the report insert
    # until the first commits, then fails with IntegrityError: its whole transaction (incident
    # update and events included) rolls back and the caller returns the first report.
    lon, lat = location.x, location.y
    bdx, bdy = metres_to_degrees(lat, BUILDING_WITHIN_METRES * 1.5, BUILDING_WITHIN_METRES * 1.5)
    idx, idy = metres_to_degrees(lat, INCIDENT_GROUP_METRES * 1.5, INCIDENT_GROUP_METRES * 1.5)
    params: dict[str, Any] = {
        "lon": lon,
        "lat": lat,
        "lock_keys": grouping_lock_keys(category_id=category.pk, lon=lon, lat=lat),
        "category_id": category.pk,
        "bexpand": max(bdx, bdy),
        "bmetres": BUILDING_WITHIN_METRES,
        "iexpand": max(idx, idy),
        "imetres": INCIDENT_GROUP_METRES,
        "open": list(Incident.OPEN_STATUSES),
        "since": now - INCIDENT_GROUP_WINDOW,
    }
    with connection.cursor() as cursor:
        # Serialise grouping nearby, so two simultaneous reports of one event open one incident.
        cursor.execute(_LOCK_CELL_BUILDING_SQL, params)
        row = cursor.fetchone()
    assert row is not None
    cell_id = int(row[1]) if row[1] is not None else None
    building_id = int(row[2]) if row[2] is not None else None
    found = list(Incident.objects.raw(_NEARBY_INCIDENT_SQL, params))
    incident_created = not found
    if found:
        incident = found[0]
        incident.report_count += 1
        incident.last_report_at = max(incident.last_report_at, now)
        incident.updated_at = now
    else:
        worker_id = report_route_worker(team_id=category.default_team_id, cell_id=cell_id, location=location)
        incident = Incident(
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
        incident=incident,
    )
    _incident_and_report_write(incident, report, incident_created=incident_created)
    stored = photos_attach(photos=photos, report=report) if photos else []
    written.extend(photo_files(stored))
    _append_report_events(report, incident, incident_created=incident_created, actor_id=reporter_id)
    return report, stored


_REPORT_INSERT = """
INSERT INTO command_report (client_id, content_hash, source, reporter_id, category_id, location, accuracy_m, note,
                            client_time, received_at, grid_cell_id, outside_grid, building_id, incident_id)
SELECT %(client_id)s, %(content_hash)s, %(source)s, %(reporter_id)s, %(category_id)s,
       ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(accuracy_m)s, %(note)s, %(client_time)s,
       %(received_at)s, %(grid_cell_id)s, %(outside_grid)s, %(building_id)s, inc.id
FROM inc
RETURNING id, incident_id
"""

_INCIDENT_INSERT_THEN_REPORT = (
    """
WITH inc AS (
  INSERT INTO command_incident (category_id, status, priority, location, grid_cell_id, outside_grid, building_id,
                                team_id, worker_id, report_count, note, resolution_note, opened_at, last_report_at,
                                due_at, dispatched_at, updated_at)
  VALUES (%(category_id)s, %(status)s, %(priority)s, ST_SetSRID(ST_MakePoint(%(ilon)s, %(ilat)s), 4326),
          %(grid_cell_id)s, %(outside_grid)s, %(building_id)s, %(team_id)s, %(worker_id)s, 1, %(inote)s, '',
          %(received_at)s, %(received_at)s, %(due_at)s, %(dispatched_at)s, %(received_at)s)
  RETURNING id
)"""  # noqa: S608 - two constants joined; every value is a bound parameter
    + _REPORT_INSERT
)

_INCIDENT_UPDATE_THEN_REPORT = (
    """
WITH inc AS (
  UPDATE command_incident SET report_count = %(report_count)s, last_report_at = %(last_report_at)s,
                              updated_at = %(received_at)s
  WHERE id = %(incident_id)s
  RETURNING id
)"""  # noqa: S608 - two constants joined; every value is a bound parameter
    + _REPORT_INSERT
)


def _incident_and_report_write(incident: Incident, report: Report, *, incident_created: bool) -> None:
    """The incident (inserted, or its count bumped) and the report in one round trip. A reused
    client id fails here, on the report's unique index, and the whole transaction rolls back."""
    params: dict[str, Any] = {
        "client_id": report.client_id,
        "content_hash": report.content_hash,
        "source": report.source,
        "reporter_id": report.reporter_id,
        "category_id": report.category_id,
        "lon": report.location.x,
        "lat": report.location.y,
        "accuracy_m": report.accuracy_m,
        "note": report.note,
        "client_time": report.client_time,
        "received_at": report.received_at,
        "grid_cell_id": report.grid_cell_id,
        "outside_grid": report.outside_grid,
        "building_id": report.building_id,
    }
    if incident_created:
        params |= {
            "status": incident.status,
            "priority": incident.priority,
            "ilon": incident.location.x,
            "ilat": incident.location.y,
            "team_id": incident.team_id,
            "worker_id": incident.worker_id,
            "inote": incident.note,
            "due_at": incident.due_at,
            "dispatched_at": incident.dispatched_at,
        }
        sql = _INCIDENT_INSERT_THEN_REPORT
    else:
        params |= {
            "incident_id": incident.pk,
            "report_count": incident.report_count,
            "last_report_at": incident.last_report_at,
        }
        sql = _INCIDENT_UPDATE_THEN_REPORT
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    report.pk, incident.pk = int(row[0]), int(row[1])
    report.incident = incident
    incident._state.adding = report._state.adding = False
    incident._state.db = report._state.db = "default"


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
