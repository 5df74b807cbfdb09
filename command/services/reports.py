"""Field reports: the one way a report enters the system.

``report_submit`` is on the hot path (every phone report, the latency and ingest benchmarks):
its whole write — grouping locks, grid cell, nearest building, incident grouping, routing, the
report row and both events — is one statement, the ``gc_report_submit`` function
(command/services/report_function.py; its input and result: report_rows.py); photos follow in
the same transaction. The lean path's reports share statements (command/services/batching.py).
``report_submit_async`` runs the same statement on the event loop for the lean HTTP path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import psycopg
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import GEOSGeometry, Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import wakes_send
from command.geometry import check_geometry, check_lon_lat
from command.loops import loop_local
from command.models import Category, Incident, Report, ReportPhoto
from command.report_input import REPORT_INPUT, report_values
from command.services.batching import StatementBatcher
from command.services.photos import PreparedPhoto, photo_files, photo_files_delete, photos_attach, photos_prepare
from command.services.report_rows import (
    BATCH_ARRAYS,
    BATCH_SUBMIT_SQL,
    CONSTANTS,
    LOGIN_SUBMIT_SQL,
    SUBMIT_SQL,
    SubmitRow,
    submit_row,
)

# A report joins an open incident of the same category this close in space and time.
INCIDENT_GROUP_METRES = 50.0
INCIDENT_GROUP_WINDOW = timedelta(minutes=30)
# The nearest building footprint within this distance is the report's building.
BUILDING_WITHIN_METRES = 30.0


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


def report_content_hash(*, category_code: str, lon_lat: tuple[float, float], values: Mapping[str, Any]) -> str:
    """What a client id stands for: the same key with the same hash is a retry, with another
    hash a conflict. ``values`` by column, every declared one (command/report_input.py)."""
    canonical = json.dumps(
        {
            "category": category_code,
            "lon": round(lon_lat[0], 7),
            "lat": round(lon_lat[1], 7),
            **{value.name: value.canonical(values[value.column]) for value in REPORT_INPUT},
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def report_submit(
    *,
    reporter_id: int | None,
    client_id: uuid.UUID,
    category: Category,
    location: Point,
    source: str = Report.Source.FIELD,
    received_at: datetime | None = None,
    photos: Sequence[Any] = (),
    **values: Any,
) -> SubmitResult:
    """Store a report: assign its grid cell and nearest building, route it to its team, group it
    into an incident (or open one with its SLA due time), store its photos and append the
    events — in one transaction. ``values``: the report's declared values by column
    (command/report_input.py: ``accuracy_m``, ``note``, ``client_time`` ...; a missing one takes
    its default). The client id is the idempotency key, enforced by the unique constraint: the
    same id with the same content returns the first report (adding any of ``photos`` not stored
    yet); with other content, ReportConflict."""
    check_geometry(location, expected="Point")
    checked = report_values(values)
    prepared = photos_prepare(photos) if photos else []
    submission = _Submission(
        token=None,
        reporter_id=reporter_id,
        client_id=client_id,
        category_code=category.code,
        lon_lat=(location.x, location.y),
        values=checked,
        source=source,
        now=received_at or timezone.now(),
    )
    content_hash = submission.content_hash
    written: list[str] = []
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(SUBMIT_SQL, submission.params())
                fetched = cursor.fetchone()
            assert fetched is not None
            row = SubmitRow(*fetched)  # the result type's columns, in the dataclass's order
            if row.status != "created":
                raise ValidationError({"category": _("Unknown category %(code)s.") % {"code": category.code}})
            report = submission.stored(row, category)
            stored = photos_attach(photos=prepared, report=report) if prepared else []
            written.extend(photo_files(stored))
            wires = row.wires
            transaction.on_commit(lambda: wakes_send(wires))
            return SubmitResult(report, created=True, photos=stored)
    except IntegrityError as exc:
        photo_files_delete(written)
        existing = Report.objects.filter(client_id=client_id, reporter_id=reporter_id).first()
        if existing is None:
            raise exc
        if existing.content_hash != content_hash:
            raise ReportConflict(existing) from None
        return SubmitResult(existing, created=False, photos=_photos_add_on_retry(existing, prepared))
    except BaseException:
        photo_files_delete(written)
        raise


class ReportNotTaken(Exception):
    """``report_submit_async`` wrote nothing; ``reason`` says why: ``resubmitted`` (the client id
    is stored: the caller answers through ``report_submit``, 200 or 409), ``unauthorized`` (the
    token is unknown, revoked or its user inactive), ``unknown_category``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Stored:
    """A report ``report_submit_async`` stored, as plain values: the lean HTTP path answers from
    them (a Report and an Incident instance cost it ~27 us per report, GEOS points ~10 us per
    read). ``Stored.of`` gives the same values for a Report."""

    report_id: int
    client_id: uuid.UUID
    lon: float
    lat: float
    values: dict[str, Any]  # the declared values, by column (command/report_input.py)
    received_at: datetime
    grid_cell_id: int | None
    outside_grid: bool
    building_id: int | None
    incident_id: int
    incident_status: str
    team_id: int | None
    worker_id: int | None
    report_count: int
    due_at: datetime

    @classmethod
    def of(cls, report: Report) -> Stored:
        incident = report.incident
        assert incident is not None
        return cls(
            report_id=report.pk,
            client_id=report.client_id,
            lon=report.location.x,
            lat=report.location.y,
            values={value.column: getattr(report, value.column) for value in REPORT_INPUT},
            received_at=report.received_at,
            grid_cell_id=report.grid_cell_id,
            outside_grid=report.outside_grid,
            building_id=report.building_id,
            incident_id=incident.pk,
            incident_status=incident.status,
            team_id=incident.team_id,
            worker_id=incident.worker_id,
            report_count=incident.report_count,
            due_at=incident.due_at,
        )


async def report_submit_async(
    *,
    token: str,
    client_id: uuid.UUID,
    category_code: str,
    lon: float,
    lat: float,
    source: str = Report.Source.FIELD,
    **values: Any,
) -> Stored:
    """``report_submit`` without photos, for the holder of an API ``token``, on the running event
    loop (command.db_async): the same statement, checking the token and the category in the
    same round trip. The wakes go out after commit. Raises ReportNotTaken (nothing written)."""
    lon_lat = check_lon_lat(lon, lat)
    submission = _Submission(
        token=token,
        reporter_id=None,
        client_id=client_id,
        category_code=category_code,
        lon_lat=lon_lat,
        values=report_values(values),
        source=source,
        now=timezone.now(),
    )
    try:
        row = await _batcher().submit(submission)
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.table_name != Report._meta.db_table:
            raise
        raise ReportNotTaken("resubmitted") from None
    if row.status != "created":
        raise ReportNotTaken(row.status)
    return submission.brief(row)  # woken by the batch, after its commit


def report_params(
    *,
    reporter_id: int | None,
    client_id: uuid.UUID,
    category_code: str,
    lon_lat: tuple[float, float],
    source: str,
    received_at: datetime,
    **values: Any,
) -> dict[str, Any]:
    """The parameters of ``gc_report_input`` (and the grouping constants) for one report made by
    another service's statement (command/services/alarms.py): the values checked as
    ``report_submit`` checks them, the content hash as it computes it."""
    return _Submission(
        token=None,
        reporter_id=reporter_id,
        client_id=client_id,
        category_code=category_code,
        lon_lat=check_lon_lat(*lon_lat),
        values=report_values(values),
        source=source,
        now=received_at,
    ).params()


# One batch of the lean path is one statement of at most this many reports.
MAX_BATCH = 32


async def _one(conn: psycopg.AsyncConnection[Any], submission: _Submission) -> SubmitRow:
    """One report alone: autocommit, the statement is its own transaction, one round trip."""
    cursor = conn.cursor(row_factory=submit_row)
    await cursor.execute(LOGIN_SUBMIT_SQL, submission.params())
    row = await cursor.fetchone()
    assert row is not None
    return row


async def _many(conn: psycopg.AsyncConnection[Any], submissions: list[_Submission]) -> list[SubmitRow]:
    """Several reports in one statement (its own transaction): gc_report_submit_batch."""
    columns = [s.params() for s in submissions]
    params = {name: [c[name] for c in columns] for name in BATCH_ARRAYS}
    params.update({name: columns[0][name] for name in CONSTANTS})
    cursor = conn.cursor(row_factory=submit_row)
    await cursor.execute(BATCH_SUBMIT_SQL, params)
    return await cursor.fetchall()


def _woken(rows: list[SubmitRow]) -> None:
    """The batch committed: wake the screens for the events of the reports it stored."""
    wakes_send([wire for row in rows if row.status == "created" for wire in row.wires])


_batchers: dict[asyncio.AbstractEventLoop, StatementBatcher[_Submission, SubmitRow]] = {}


def _new_batcher(loop: asyncio.AbstractEventLoop) -> StatementBatcher[_Submission, SubmitRow]:
    return StatementBatcher(loop, one=_one, many=_many, done=_woken, max_batch=MAX_BATCH, name="gc-report-batches")


def _batcher() -> StatementBatcher[_Submission, SubmitRow]:
    return loop_local(_batchers, _new_batcher)


def _model_from_row(model: type[Incident], row: dict[str, Any] | str) -> Incident:
    """A model instance from ``to_jsonb(row)`` (timestamps as ISO text, geometries as GeoJSON)."""
    data = json.loads(row) if isinstance(row, str) else row
    values: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        value = data[f.column]
        if value is not None and isinstance(f, DateTimeField):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(f, GeometryField):
            if value["type"] == "Point":
                value = Point(float(value["coordinates"][0]), float(value["coordinates"][1]), srid=4326)
            else:
                value = GEOSGeometry(json.dumps(value), srid=4326)
        values[f.attname] = value
    instance = model(**values)
    instance._state.adding = False
    instance._state.db = "default"
    return instance


def _photos_add_on_retry(report: Report, photos: list[PreparedPhoto]) -> list[ReportPhoto]:
    """A retry may carry photos the first attempt did not deliver; store only those."""
    if not photos:
        return []
    with transaction.atomic():
        return photos_attach(photos=photos, report=report)


@dataclass(frozen=True)
class _Submission:
    token: str | None
    reporter_id: int | None
    client_id: uuid.UUID
    category_code: str
    lon_lat: tuple[float, float]
    values: dict[str, Any]  # every declared value, checked, by column
    source: str
    now: datetime

    @cached_property
    def location(self) -> Point:
        return Point(*self.lon_lat, srid=4326)

    @cached_property
    def content_hash(self) -> str:
        return report_content_hash(category_code=self.category_code, lon_lat=self.lon_lat, values=self.values)

    def params(self) -> dict[str, Any]:
        """The statement's parameters: the function's input, the token (the lean path), the constants."""
        # gc_report_input's attributes by name (SubmitInput declares them; the statements bind each
        # by name, so a missing one fails at once), without building the dataclass on the hot path.
        return {
            "reporter_id": self.reporter_id,
            "from_login": self.token is not None,
            "content_hash": self.content_hash,
            "source": self.source,
            "received_at": self.now,
            "client_id": self.client_id,
            "category_code": self.category_code,
            "lon": self.lon_lat[0],
            "lat": self.lon_lat[1],
            **self.values,
            "token": self.token,
            "group_metres": INCIDENT_GROUP_METRES,
            "group_window": INCIDENT_GROUP_WINDOW,
            "building_metres": BUILDING_WITHIN_METRES,
        }

    def stored(self, row: SubmitRow, category: Category) -> Report:
        """The report (with its whole incident) as the function stored it."""
        report = Report(
            id=row.report_id,
            content_hash=self.content_hash,
            source=self.source,
            reporter_id=row.reporter_id,
            category=category,
            location=self.location,
            incident=_model_from_row(Incident, row.incident),
            **self.values,
            **self._values(row),
        )
        report._state.adding = False
        report._state.db = "default"
        return report

    def brief(self, row: SubmitRow) -> Stored:
        """What the lean path answers with, from the function's row."""
        assert row.report_id is not None and row.incident_id is not None and row.incident_status is not None
        assert row.report_count is not None and row.due_at is not None
        return Stored(
            report_id=row.report_id,
            lon=self.lon_lat[0],
            lat=self.lon_lat[1],
            incident_id=row.incident_id,
            incident_status=row.incident_status,
            team_id=row.team_id,
            worker_id=row.worker_id,
            report_count=row.report_count,
            due_at=row.due_at,
            values=self.values,
            **self._values(row),
        )

    def _values(self, row: SubmitRow) -> dict[str, Any]:
        """The report's other values that Report and Stored name alike."""
        cell_id, building_id = row.grid_cell_id, row.building_id
        return {
            "client_id": self.client_id,
            "received_at": self.now,
            "grid_cell_id": cell_id,
            "outside_grid": cell_id is None,
            "building_id": building_id,
        }
