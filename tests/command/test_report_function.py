"""``gc_report_submit`` (command/services/report_function.py): the database holds the current
text, and the events it writes are the ones the rest of the system builds for the same objects."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from rest_framework.authtoken.models import Token

from command import db_async, eventlog
from command.eventlog import EventRecord, event_record
from command.features import incident_feature, report_feature
from command.models import Event, Incident, Report
from command.services.report_function import (
    BATCH_DROP_FILE_SQL,
    BATCH_FILE_SQL,
    BATCH_FUNCTION_SQL,
    FUNCTION_SQL,
    GROUP_LOCKS_FUNCTION_SQL,
    SUBMIT_DROP_FILE_SQL,
    SUBMIT_FILE_SQL,
)
from command.services.report_rows import INPUT_TYPE, RESULT_TYPE, SubmitInput, SubmitRow, sql_attributes
from command.services.reports import (
    INCIDENT_GROUP_METRES,
    ReportNotTaken,
    Stored,
    report_submit,
    report_submit_async,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "command" / "sql"


def _latest(stem: str, *, drop: bool = False) -> Path:
    """The newest version of a frozen .sql file (``<stem>.v<N>.sql``, or its ``.drop.sql``)."""
    versions = sorted(SQL_DIR.glob(f"{stem}.v*.sql"), key=lambda p: int(p.name.split(".v")[1].split(".")[0]))
    return [p for p in versions if p.name.endswith(".drop.sql") == drop][-1]


def test_the_builder_writes_the_latest_frozen_sql():
    """A change of the builder (report_function.py, report_rows.py's shapes, the layer fields,
    the selectors' SQL) shows here as a diff: freeze it as the next version (command/sql/) with
    a migration that runs it."""
    assert _latest("gc_report_submit").read_text() == SUBMIT_FILE_SQL
    assert _latest("gc_report_submit_batch").read_text() == BATCH_FILE_SQL
    assert _latest("gc_report_submit", drop=True).read_text() == SUBMIT_DROP_FILE_SQL
    assert _latest("gc_report_submit_batch", drop=True).read_text() == BATCH_DROP_FILE_SQL


def assert_composite_type_is_declared(name: str, shape: type) -> None:
    """The composite type ``name`` the migrations made has the dataclass's fields, in order, with
    their declared SQL types (what class_row reads by name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_type t ON t.typrelid = a.attrelid WHERE t.typname = %s AND a.attnum > 0 ORDER BY a.attnum",
            [name],
        )
        found = cursor.fetchall()
    canonical = {"timestamptz": "timestamp with time zone"}
    assert found == [(n, canonical.get(kind, kind)) for n, kind in sql_attributes(shape)]
    assert [f.name for f in dataclasses.fields(shape)] == [n for n, _kind in found]


@pytest.mark.parametrize(("name", "shape"), [(INPUT_TYPE, SubmitInput), (RESULT_TYPE, SubmitRow)])
def test_the_databases_composite_types_are_the_declared_shapes(db, name, shape):
    assert_composite_type_is_declared(name, shape)


@pytest.mark.parametrize(
    ("name", "sql"),
    [
        ("gc_report_submit", FUNCTION_SQL),
        ("gc_report_submit_batch", BATCH_FUNCTION_SQL),
        ("gc_report_group_locks", GROUP_LOCKS_FUNCTION_SQL),
    ],
)
def test_the_database_holds_the_function_as_written_here(db, name, sql):
    # The migrations run the frozen files; the newest equals the builder's text (above).
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [name])
        bodies = [row[0] for row in cursor.fetchall()]
    assert bodies == [sql.split("$fn$")[1]]


def test_its_events_equal_the_features_of_the_stored_objects(grid, reference, make_user, monkeypatch):
    # given
    user = make_user("grid_worker", team="road")
    woken: list[dict] = []
    monkeypatch.setattr(eventlog, "_wake_sender", lambda: type("S", (), {"put_many": woken.extend})())
    here = Point(117.00051234567891, 39.00048765432109, srid=4326)  # more digits than a phone sends
    # when: a report opens an incident, a second one 10 m away joins it

    first = report_submit(reporter_id=user.pk, client_id=uuid.uuid4(), category=reference["road_damage"], location=here)
    second = report_submit(
        reporter_id=user.pk,
        client_id=uuid.uuid4(),
        category=reference["road_damage"],
        location=Point(117.0006, 39.0005, srid=4326),
        note="第二次",
    )
    # then: the log holds the four events, each equal to the feature of the object now
    events = list(Event.objects.filter(layer__in=["incidents", "reports"]).order_by("seq"))
    assert [e.kind for e in events] == ["incident.created", "report.created", "incident.updated", "report.created"]
    incident = Incident.objects.get()
    assert events[2].payload == incident_feature(incident)
    assert events[1].payload == report_feature(Report.objects.get(pk=first.report.pk))
    assert events[3].payload == report_feature(Report.objects.get(pk=second.report.pk))
    # each passes the event schema, and the service's caller gets the whole incident back
    for event in events:
        EventRecord.model_validate(event_record(event))
    assert second.report.incident.dispatched_at == incident.dispatched_at
    assert second.report.incident.report_count == 2


def test_the_wakes_carry_what_the_log_replays(transactional_db, grid, reference, make_user, monkeypatch):
    user = make_user("grid_worker", team="road")
    woken: list[dict] = []
    monkeypatch.setattr(eventlog, "_wake_sender", lambda: type("S", (), {"put_many": woken.extend})())
    report_submit(
        reporter_id=user.pk,
        client_id=uuid.uuid4(),
        category=reference["sanitation"],
        location=Point(117.0013, 39.0002, srid=4326),
    )
    logged = [event_record(e) for e in Event.objects.filter(layer__in=["incidents", "reports"]).order_by("seq")]
    assert woken == logged


@pytest.mark.parametrize("problem", ["unknown token", "inactive user", "unknown category"])
def test_the_token_form_writes_nothing_when_refused(transactional_db, grid, reference, make_user, problem):
    user = make_user("grid_worker", team="road")
    key = Token.objects.create(user=user).key
    if problem == "inactive user":
        user.is_active = False
        user.save()

    async def submit() -> None:
        try:
            await report_submit_async(
                token="f" * 40 if problem == "unknown token" else key,
                client_id=uuid.uuid4(),
                category_code="no_such" if problem == "unknown category" else "road_damage",
                lon=117.0005,
                lat=39.0005,
            )
        finally:
            await db_async.pools_close()

    with pytest.raises(ReportNotTaken) as refused:
        asyncio.run(submit())
    assert refused.value.reason == ("unknown_category" if problem == "unknown category" else "unauthorized")
    assert not Report.objects.exists() and not Incident.objects.exists()


def test_a_batch_refuses_the_report_of_a_revoked_token_alone(transactional_db, grid, reference, make_user):
    # given: five reports at once (one batch), the third with a token that names no user
    user = make_user("grid_worker", team="road")
    key = Token.objects.create(user=user).key
    reports: list[dict[str, Any]] = [{"lon": 117.0001 + 0.0001 * n, "lat": 39.0002} for n in range(5)]
    reports[2]["token"] = "0" * 40
    # when
    results = _submit_together(key, reports)
    # then: that one is refused as unauthorized; the four others are stored, by their user
    assert isinstance(results[2], ReportNotTaken) and results[2].reason == "unauthorized"
    assert sum(isinstance(r, Stored) for r in results) == 4
    assert set(Report.objects.values_list("reporter_id", flat=True)) == {user.pk} and Report.objects.count() == 4


def test_reports_submitted_together_share_transactions_and_a_reused_id_is_refused_alone(
    transactional_db, grid, reference, make_user
):
    # given: 20 reports at once on one event loop (they batch), one of them a reused client id
    user = make_user("grid_worker", team="road")
    key = Token.objects.create(user=user).key
    ids = [uuid.uuid4() for _ in range(20)]
    report_submit(
        reporter_id=user.pk,
        client_id=ids[7],
        category=reference["road_damage"],
        location=Point(117.0005, 39.0005, srid=4326),
    )
    start = Event.objects.order_by("-seq").values_list("seq", flat=True).first()

    # when
    results = _submit_together(
        key,
        [{"client_id": c, "lon": 117.0001 + 0.00009 * n, "lat": 39.0002 + 0.00003 * n} for n, c in enumerate(ids)],
    )
    # then: the reused id alone is refused; the 19 others are stored once each
    refused = [r for r in results if isinstance(r, ReportNotTaken)]
    assert [r.reason for r in refused] == ["resubmitted"] and isinstance(results[7], ReportNotTaken)
    assert Report.objects.count() == 20
    assert {str(r.client_id) for r in results if not isinstance(r, BaseException)} == {
        str(i) for n, i in enumerate(ids) if n != 7
    }
    # ... each answered with its own row (a batch's rows come back in its order)
    stored = dict(Report.objects.values_list("pk", "client_id"))
    assert all(stored[r.report_id] == r.client_id for r in results if not isinstance(r, BaseException))
    # and their 38 events have gap-free seqs after the first report's
    seqs = list(Event.objects.filter(seq__gt=start).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(start + 1, start + 39))


def _session() -> psycopg.Connection:
    """A second database session, as another process's transaction would be."""
    return psycopg.connect(**db_async.conninfo())


def _lock_waits(conn: psycopg.Connection, locktype: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = %s AND pid <> pg_backend_pid()", [locktype]
    ).fetchone()
    return int(row[0]) if row else 0


def _wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


# The counter's row as gc_report_submit takes it for a report's events.
_COUNTER_SQL = (
    "INSERT INTO command_eventcounter (id, last_seq) VALUES (1, 0) "
    "ON CONFLICT (id) DO UPDATE SET last_seq = command_eventcounter.last_seq"
)


# Sleeps 0.3 s after writing an event of a report whose note says "pause-here".
_PAUSE_TRIGGER = """
CREATE FUNCTION gc_test_pause() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
CREATE TRIGGER gc_test_pause AFTER INSERT ON command_event FOR EACH ROW
WHEN (NEW.layer = 'reports' AND NEW.payload->'properties'->>'note' = '***') EXECUTE FUNCTION gc_test_pause();
"""


def _submit_together(key: str, reports: list[dict[str, Any]]) -> list[object]:
    """Reports (``report_submit_async``'s arguments; a new client id and road damage unless
    given) submitted at the same moment on one event loop: they form one batch, in order."""

    async def run() -> list[object]:
        try:
            return await asyncio.gather(
                *(
                    report_submit_async(
                        **{"token": key, "client_id": uuid.uuid4(), "category_code": "road_damage", **report}
                    )
                    for report in reports
                ),
                return_exceptions=True,
            )
        finally:
            await db_async.pools_close()

    return asyncio.run(run())


def _batch_thread(results: list[object], key: str, reports: list[dict[str, Any]]) -> threading.Thread:
    """``_submit_together`` in a thread of its own (the test meanwhile plays the other transaction)."""
    return threading.Thread(target=lambda: results.extend(_submit_together(key, reports)))


def test_a_batch_waiting_for_a_grouping_lock_does_not_hold_the_event_counter(
    transactional_db, grid, reference, make_user
):
    # given: another transaction (a single report) holds the grouping locks of B's square
    user = make_user("grid_worker", team="road")
    key = Token.objects.create(user=user).key
    a, b = Point(117.0003, 39.0003, srid=4326), Point(117.0018, 39.0008, srid=4326)  # ~130 m apart
    other = _session()
    watcher = _session()
    watcher.autocommit = True
    other.execute(
        "SELECT gc_report_group_locks(%s, %s, %s, %s)", [["road_damage"], [b.x], [b.y], INCIDENT_GROUP_METRES]
    )
    # when: A and B go as one batch, and once the batch waits, the other transaction takes the
    # event counter (as a single report does after its grouping locks)
    results: list[object] = []
    batch = _batch_thread(results, key, [{"lon": a.x, "lat": a.y}, {"lon": b.x, "lat": b.y}])
    batch.start()
    try:
        assert _wait_until(lambda: _lock_waits(watcher, "advisory") > 0)
        other.execute("SET LOCAL lock_timeout = '100ms'")  # shorter than the batch's own (250 ms)
        # then: the counter is free (the batch has not taken it while it waits): no wait, no deadlock
        other.execute(_COUNTER_SQL)
        other.commit()
    finally:
        other.close()
        batch.join(timeout=30)
        watcher.close()
    assert [type(r) for r in results] == [Stored, Stored]
    assert Report.objects.count() == 2


def test_a_batch_that_would_deadlock_on_an_incident_row_gives_way(transactional_db, grid, reference, make_user):
    # given: an open incident at B, its row locked by another transaction (an incident action)
    user = make_user("grid_worker", team="road")
    key = Token.objects.create(user=user).key
    a, b = Point(117.0003, 39.0003, srid=4326), Point(117.0018, 39.0008, srid=4326)
    first = report_submit(reporter_id=user.pk, client_id=uuid.uuid4(), category=reference["road_damage"], location=b)
    other = _session()
    other.execute("SELECT id FROM command_incident WHERE id = %s FOR UPDATE", [first.report.incident_id])
    # ... and a batch of A (with a note: "***" in its masked event) then B in which A's events,
    # once written, sleep 0.3 s (so the batch
    # holds the counter from A's events while the other transaction starts to wait)
    with connection.cursor() as cursor:
        cursor.execute(_PAUSE_TRIGGER)
    watcher = _session()
    watcher.autocommit = True
    results: list[object] = []
    batch = _batch_thread(results, key, [{"lon": a.x, "lat": a.y, "note": "pause-here"}, {"lon": b.x, "lat": b.y}])
    batch.start()
    # when: the other transaction waits for the counter first, then the batch reaches B's incident
    try:
        assert _wait_until(
            lambda: (
                watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchone() == (1,)
            )
        )
        other.execute(_COUNTER_SQL)  # waits until the batch gives way; PostgreSQL must not abort it
        other.commit()
    finally:
        other.close()
        batch.join(timeout=30)
        watcher.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER gc_test_pause ON command_event; DROP FUNCTION gc_test_pause()")
    # then: the batch rolled back and went again report by report: both stored, B joins the incident
    assert [type(r) for r in results] == [Stored, Stored]
    assert results[1].incident_id == first.report.incident_id
    assert Report.objects.count() == 3


def test_a_batch_answers_each_report_with_its_own_row(transactional_db, grid, reference, make_user):
    # given: 12 reports at once (one batch after the first), some with a note, time or accuracy, some without
    user = make_user("grid_worker", team="road")
    key = Token.objects.create(user=user).key
    points = [Point(117.0002 + 0.00015 * n, 39.0002 + 0.00007 * n, srid=4326) for n in range(12)]
    # when
    results = _submit_together(
        key,
        [
            {
                "category_code": "road_damage" if n % 3 else "sanitation",
                "lon": p.x,
                "lat": p.y,
                "accuracy_m": None if n % 2 else 4.5 + n,
                "note": "" if n % 4 else f"n{n}",
            }
            for n, p in enumerate(points)
        ],
    )
    # then: every answer is its own report's row: id, place, note, accuracy and incident
    assert all(isinstance(r, Stored) for r in results), results
    for n, result in enumerate(results):
        row = Report.objects.get(pk=result.report_id)
        assert row.client_id == result.client_id
        assert (row.location.x, row.location.y) == (points[n].x, points[n].y)
        assert row.note == ("" if n % 4 else f"n{n}") and row.accuracy_m == (None if n % 2 else 4.5 + n)
        assert row.incident_id == result.incident_id
        # (a later report of the batch may have joined the incident since)
        assert dataclasses.replace(Stored.of(row), report_count=result.report_count) == result
