"""Home alarms: the signed webhook, replays, the incident it opens, heartbeats and offline."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from command.models import AlarmDevice, AlarmEvent, Event, Incident, PersonalDataAccess, Report
from command.services.alarms import (
    AlarmRefused,
    alarm_call_receive,
    alarm_device_register,
    alarm_devices_check,
    alarm_signature,
)

WEBHOOK = "/api/v1/alarms/webhook/"


def signed(secret: str, body: dict, *, ts: int | None = None, code: str = "SOS-0001") -> dict:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "data": raw,
        "content_type": "application/json",
        "headers": {
            "X-GC-Device": code,
            "X-GC-Timestamp": stamp,
            "X-GC-Signature": "sha256=" + alarm_signature(secret, stamp, raw),
        },
    }


def test_a_good_alarm_opens_a_top_priority_incident_at_the_households_building(device, household) -> None:
    # given
    dev, secret = device
    client = Client()
    # when
    response = client.post(WEBHOOK, **signed(secret, {"type": "alarm", "battery": 80}))
    # then
    assert response.status_code == 201, response.content
    incident = Incident.objects.get(pk=response.json()["incident_id"])
    assert incident.priority == 1 and incident.category.code == "emergency_call"
    assert incident.building_id == household.building_id and incident.status == "new"
    report = Report.objects.get(pk=response.json()["report_id"])
    assert report.source == Report.Source.ALARM and report.building_id == household.building_id
    assert AlarmEvent.objects.get().report == report
    dev.refresh_from_db()
    assert dev.status == "alarm" and dev.battery == 80 and dev.last_alarm_at is not None
    kinds = list(Event.objects.order_by("seq").values_list("kind", flat=True))
    assert sorted(kinds[-3:]) == ["alarm_device.updated", "incident.created", "report.created"]


@pytest.mark.parametrize(
    ("tamper", "status", "reason"),
    [
        (lambda r: r["headers"].update({"X-GC-Signature": "sha256=" + "0" * 64}), 401, "signature"),
        (lambda r: r["headers"].update({"X-GC-Device": "SOS-9999"}), 401, "signature"),
        (lambda r: r["headers"].pop("X-GC-Signature"), 401, "signature"),
        (lambda r: r.update({"data": r["data"].replace(b"alarm", b"heartbeat")}), 401, "signature"),
    ],
)
def test_a_bad_signature_is_refused_and_nothing_is_written(device, tamper, status, reason) -> None:
    _dev, secret = device
    request = signed(secret, {"type": "alarm"})
    tamper(request)
    response = Client().post(WEBHOOK, **request)
    assert response.status_code == status and response.json()["error"] == reason
    assert response.json()["detail"]
    assert not Report.objects.exists() and not AlarmEvent.objects.exists()


def test_a_stale_timestamp_and_a_replay_are_refused(device) -> None:
    _dev, secret = device
    client = Client()
    old = client.post(WEBHOOK, **signed(secret, {"type": "alarm"}, ts=int(time.time()) - 301))
    assert old.status_code == 400 and old.json()["error"] == "timestamp"
    ahead = client.post(WEBHOOK, **signed(secret, {"type": "alarm"}, ts=int(time.time()) + 360))
    assert ahead.status_code == 400
    request = signed(secret, {"type": "alarm"})
    assert client.post(WEBHOOK, **request).status_code == 201
    replay = client.post(WEBHOOK, **request)
    assert replay.status_code == 409 and replay.json()["error"] == "replay"
    assert Report.objects.count() == 1


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "fire"}', b'{"type": "alarm", "battery": 101}'])
def test_a_body_it_cannot_take_is_a_400_with_a_reason(device, body) -> None:
    dev, secret = device
    stamp = str(int(time.time()))
    with pytest.raises(AlarmRefused) as refused:
        alarm_call_receive(
            device_code=dev.code, timestamp=stamp, signature=alarm_signature(secret, stamp, body), body=body
        )
    assert refused.value.reason == "body" and str(refused.value)


def test_a_missed_heartbeat_marks_the_device_offline_and_a_call_brings_it_back(device) -> None:
    dev, secret = device
    now = timezone.now()
    # two intervals (60 s) without a call: offline, with its event
    assert alarm_devices_check(now=now + timedelta(seconds=119)) == []
    assert [d.pk for d in alarm_devices_check(now=now + timedelta(seconds=121))] == [dev.pk]
    dev.refresh_from_db()
    assert dev.status == "offline"
    event = Event.objects.filter(kind="alarm_device.updated").latest("seq")
    assert event.payload["properties"]["status"] == "offline"
    assert alarm_devices_check(now=now + timedelta(seconds=200)) == []  # told once
    # a heartbeat: online again
    response = Client().post(WEBHOOK, **signed(secret, {"type": "heartbeat", "battery": 55}))
    assert response.status_code == 200 and response.json()["status"] == "online"
    assert not Report.objects.exists()


def test_the_operator_sees_household_and_contact_logged_and_others_see_nothing(device, make_user) -> None:
    dev, secret = device
    incident_id = Client().post(WEBHOOK, **signed(secret, {"type": "alarm"})).json()["incident_id"]
    client = Client()
    client.force_login(make_user("operator"))
    # when
    body = client.get(f"/api/v1/incidents/{incident_id}/alarms/").json()
    # then
    [shown] = body["devices"]
    assert shown["device"]["contact_name"] == "李明" and shown["device"]["contact_phone"] == "138 0000 1111"
    assert shown["household"]["head_name"] == "李桂兰" and shown["household"]["unit"] == "2-301"
    logged = {(row.layer, tuple(row.object_ids)) for row in PersonalDataAccess.objects.all()}
    assert logged == {("alarm_devices", (str(dev.pk),)), ("households", (str(dev.household_id),))}
    # a police officer and a grid worker: not found, like a missing incident
    for role in ("police", "grid_worker"):
        client.force_login(make_user(role))
        assert client.get(f"/api/v1/incidents/{incident_id}/alarms/").status_code == 404
    client.force_login(make_user("operator"))
    assert client.get("/api/v1/incidents/999999/alarms/").status_code == 404


def test_registering_a_device_checks_its_input(household, make_user) -> None:
    from django.core.exceptions import ValidationError

    operator = make_user("operator")
    for kwargs, field in [
        ({"kind": "flood"}, "kind"),
        ({"heartbeat_seconds": 5}, "heartbeat_seconds"),
        ({"household_id": 999999}, "household_id"),
        ({"contact_phone": "call me"}, "contact_phone"),
        ({"code": ""}, "code"),
    ]:
        args = {"actor": operator, "code": "GAS-1", "kind": "gas", "household_id": household.pk, **kwargs}
        with pytest.raises(ValidationError) as caught:
            alarm_device_register(**args)
        assert field in caught.value.message_dict
    assert not AlarmDevice.objects.exists()
