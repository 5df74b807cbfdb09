"""The alarm webhook's lean path (field_api/residents/fast.py) and the one statement both paths run
(``gc_alarm_receive``, command/services/alarm_function.py).

The ASGI application of command/asgi.py is called in-process, as tests/field_api/test_fast_path.py
does (a query string sends a call to Django's view, which ignores it): the same call answered by
either path gets the same status, headers and body, and every refusal is Django's, with nothing
written by the lean path.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from command.features import feature_of
from command.models import AlarmDevice, AlarmEvent, AlarmSignatureSeen, Event, Report
from command.services import alarms as alarm_services
from command.services.alarm_function import FUNCTION_SQL, RECEIVE_DROP_FILE_SQL, RECEIVE_FILE_SQL
from command.services.alarms import (
    ALARM_INPUT_TYPE,
    ALARM_RESULT_TYPE,
    DEVICE_SQL,
    RECEIVE_SQL,
    AlarmInput,
    AlarmRow,
    alarm_call_check,
    alarm_device_register,
    alarm_device_rotate_secret,
    alarm_signature,
)
from tests.command.test_report_function import assert_composite_type_is_declared
from tests.field_api.test_fast_path import _call

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK = "/api/v1/alarms/webhook/"
SQL_DIR = Path(__file__).resolve().parents[2] / "command" / "sql"


def _latest(stem: str, *, drop: bool = False) -> Path:
    versions = sorted(SQL_DIR.glob(f"{stem}.v*.sql"), key=lambda p: int(p.name.split(".v")[1].split(".")[0]))
    return [p for p in versions if p.name.endswith(".drop.sql") == drop][-1]


@pytest.fixture
def lean_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device codes whose calls the lean path took (answered 200/201 itself)."""
    taken: list[str] = []
    original = alarm_services.alarm_call_receive_async

    async def spy(**kwargs: Any) -> Any:
        outcome = await original(**kwargs)
        taken.append(outcome.device_code)
        return outcome

    monkeypatch.setattr("field_api.residents.fast.alarm_call_receive_async", spy)
    return taken


def signed(secret: str, body: Any, *, ts: int | None = None, code: str = "SOS-0001") -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    return raw, {
        "Content-Type": "application/json",
        "Accept-Language": "en",
        "X-GC-Device": code,
        "X-GC-Timestamp": stamp,
        "X-GC-Signature": "sha256=" + alarm_signature(secret, stamp, raw),
    }


def post(raw: bytes, headers: dict[str, str], *, django: bool = False) -> tuple[int, dict[str, str], Any]:
    status, response_headers, content = asyncio.run(_call(WEBHOOK + ("?via=django" if django else ""), raw, headers))
    return status, response_headers, json.loads(content) if content else None


def test_the_builder_writes_the_latest_frozen_sql_and_the_database_holds_it():
    assert _latest("gc_alarm_receive").read_text() == RECEIVE_FILE_SQL
    assert _latest("gc_alarm_receive", drop=True).read_text() == RECEIVE_DROP_FILE_SQL
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'gc_alarm_receive'")
        assert [row[0] for row in cursor.fetchall()] == [FUNCTION_SQL.split("$fn$")[1]]


@pytest.mark.parametrize(("name", "shape"), [(ALARM_INPUT_TYPE, AlarmInput), (ALARM_RESULT_TYPE, AlarmRow)])
def test_the_databases_composite_types_are_the_declared_shapes(name, shape):
    assert_composite_type_is_declared(name, shape)


def test_a_good_alarm_is_answered_by_the_lean_path_as_django_answers_it(device, household, lean_calls):
    # given: two devices of one household, one call through each path
    dev, secret = device
    other, other_secret = alarm_device_register(actor=None, code="SOS-0002", kind="sos", household_id=household.pk)
    # when
    fast_status, fast_headers, fast = post(*signed(secret, {"type": "alarm", "battery": 80}))
    slow_status, slow_headers, slow = post(*signed(other_secret, {"type": "alarm"}, code=other.code), django=True)
    # then: the lean path took the first only, and both answered alike
    assert lean_calls == ["SOS-0001"]
    assert (fast_status, slow_status) == (201, 201)
    assert fast_headers.keys() == slow_headers.keys()
    assert {k: v for k, v in fast_headers.items() if k != "content-length"} == {
        k: v for k, v in slow_headers.items() if k != "content-length"
    }
    assert fast.keys() == slow.keys() and fast["incident_id"] == slow["incident_id"]  # one place: one incident
    # stored as the service stores it: the report at the building, the AlarmEvent, the device
    report = Report.objects.get(pk=fast["report_id"])
    assert report.source == Report.Source.ALARM and report.building_id == household.building_id
    assert AlarmEvent.objects.get(report=report).device_id == dev.pk
    dev.refresh_from_db()
    assert (dev.status, dev.battery) == ("alarm", 80) and dev.last_alarm_at == dev.last_heartbeat_at
    # the device's event is its feature now (built before the write, from what the call read)
    event = Event.objects.filter(kind="alarm_device.updated", object_id=str(dev.pk)).latest("seq")
    now = AlarmDevice.objects.select_related("household__building").get(pk=dev.pk)
    assert event.payload == feature_of(now, "alarm_devices")
    kinds = [e.kind for e in Event.objects.filter(seq__gte=event.seq - 2, seq__lte=event.seq).order_by("seq")]
    assert kinds == ["incident.created", "report.created", "alarm_device.updated"]


BAD_CALLS = {
    "wrong signature": lambda s: (lambda raw, h: (raw, {**h, "X-GC-Signature": "sha256=" + "0" * 64}))(
        *signed(s, {"type": "alarm"})
    ),
    "unknown device": lambda s: signed(s, {"type": "alarm"}, code="SOS-9999"),
    "no signature": lambda s: (lambda raw, h: (raw, {k: v for k, v in h.items() if k != "X-GC-Signature"}))(
        *signed(s, {"type": "alarm"})
    ),
    "body changed after signing": lambda s: (lambda raw, h: (raw.replace(b"alarm", b"heartbeat"), h))(
        *signed(s, {"type": "alarm"})
    ),
    "timestamp too old": lambda s: signed(s, {"type": "alarm"}, ts=int(time.time()) - 301),
    "timestamp ahead": lambda s: signed(s, {"type": "alarm"}, ts=int(time.time()) + 360),
    "timestamp not a number": lambda s: (lambda raw: (raw, {**signed(s, raw)[1], "X-GC-Timestamp": "soon"}))(
        b'{"type": "alarm"}'
    ),
    "not json": lambda s: signed(s, b"not json"),
    "not an object": lambda s: signed(s, b"[]"),
    "unknown type": lambda s: signed(s, {"type": "fire"}),
    "battery out of range": lambda s: signed(s, {"type": "alarm", "battery": 101}),
    "battery not a number": lambda s: signed(s, {"type": "alarm", "battery": "full"}),
    "body too long": lambda s: signed(s, {"type": "alarm", "pad": "x" * 5000}),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_both_paths_give_the_same_answer_to_a_bad_call_and_write_nothing(device, lean_calls, case):
    _dev, secret = device
    raw, headers = BAD_CALLS[case](secret)
    # when: the same call, to each path
    fast = post(raw, headers)
    slow = post(raw, headers, django=True)
    # then: the same status, reason and headers; a 4xx with a reason a person can act on
    assert fast[0] == slow[0] and 400 <= fast[0] < 500, (fast, slow)
    assert fast[2] == slow[2] and fast[2]["error"] in ("signature", "timestamp", "body") and fast[2]["detail"]
    assert {k: v for k, v in fast[1].items() if k != "x-request-id"} == {
        k: v for k, v in slow[1].items() if k != "x-request-id"
    }
    assert lean_calls == []
    assert not Report.objects.exists() and not AlarmSignatureSeen.objects.exists() and not AlarmEvent.objects.exists()


def test_a_replay_is_refused_by_both_paths_and_stored_once(device, lean_calls):
    _dev, secret = device
    raw, headers = signed(secret, {"type": "alarm", "n": 1})
    assert post(raw, headers)[0] == 201
    fast, slow = post(raw, headers), post(raw, headers, django=True)
    assert (fast[0], slow[0]) == (409, 409) and fast[2] == slow[2] and fast[2]["error"] == "replay"
    assert lean_calls == ["SOS-0001"]  # the first call only
    assert Report.objects.count() == 1 and AlarmSignatureSeen.objects.count() == 1


def test_a_heartbeat_brings_an_offline_device_back_on_the_lean_path(device, lean_calls):
    dev, secret = device
    AlarmDevice.objects.filter(pk=dev.pk).update(status="offline")
    status, _headers, answer = post(*signed(secret, {"type": "heartbeat", "battery": 55}))
    assert (status, answer) == (200, {"type": "heartbeat", "device": "SOS-0001", "status": "online"})
    assert lean_calls == ["SOS-0001"] and not Report.objects.exists()
    event = Event.objects.filter(kind="alarm_device.updated").latest("seq")
    assert event.payload == feature_of(AlarmDevice.objects.get(pk=dev.pk), "alarm_devices")
    # a heartbeat of a device already online changes no status: no event
    before = Event.objects.count()
    assert post(*signed(secret, {"type": "heartbeat", "n": 2}))[0] == 200
    assert Event.objects.count() == before


def test_a_device_changed_between_the_read_and_the_write_is_not_written(device):
    # given: a call checked against the device's row, then the secret rotated (another process)
    dev, secret = device
    raw, headers = signed(secret, {"type": "alarm"})
    with connection.cursor() as cursor:
        cursor.execute(DEVICE_SQL, {"code": dev.code})
        row = dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))
    call = alarm_call_check(
        row,
        device_code=dev.code,
        timestamp=headers["X-GC-Timestamp"],
        signature=headers["X-GC-Signature"],
        body=raw,
        now=timezone.now(),
    )
    alarm_device_rotate_secret(actor=None, device_id=dev.pk)
    events = Event.objects.count()
    # when
    with connection.cursor() as cursor:
        cursor.execute(RECEIVE_SQL, call.params)
        answered = AlarmRow(*cursor.fetchone())
    # then
    assert answered.status == "changed"
    assert not Report.objects.exists() and not AlarmSignatureSeen.objects.exists()
    assert Event.objects.count() == events
