"""A good alarm reaches a websocket client on a real Daphne; a silent device goes offline by
the periodic job Daphne runs itself, and that reaches the screen too."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

from django.utils import timezone

from command.models import AlarmDevice
from command.services.alarms import alarm_device_register, alarm_signature
from tests.realtime.conftest import session_cookie
from tests.realtime.live_client import LiveClient
from tests.support import daphne_server


def _post(url: str, code: str, secret: str, body: dict) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=raw,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GC-Device": code,
            "X-GC-Timestamp": stamp,
            "X-GC-Signature": "sha256=" + alarm_signature(secret, stamp, raw),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_alarm_reaches_the_wall_and_a_silent_device_goes_offline(transactional_db, household, make_user) -> None:
    operator = make_user("operator")
    device, secret = alarm_device_register(
        actor=operator, code="SOS-7", kind="sos", household_id=household.pk, heartbeat_seconds=10
    )
    silent, _secret = alarm_device_register(
        actor=operator, code="GAS-8", kind="gas", household_id=household.pk, heartbeat_seconds=10
    )
    with daphne_server({"PERIODIC_JOBS_SECONDS": "1"}) as server:
        screen = LiveClient(f"{server.ws_url}/ws/live/", cookie=session_cookie(operator), origin=server.url)
        try:
            screen.subscribe(["incidents", "alarm_devices"])
            AlarmDevice.objects.filter(pk=silent.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
            # when: the button is pressed
            status, body = _post(f"{server.url}/api/v1/alarms/webhook/", device.code, secret, {"type": "alarm"})
            assert status == 201, body
            # then: the incident reaches the screen, top priority, and the device shows its alarm
            assert screen.wait_for(
                lambda c: any(
                    m["kind"] == "incident.created" and m["payload"]["properties"]["priority"] == 1
                    for m in c.of_type("event")
                )
            )
            assert screen.wait_for(
                lambda c: any(
                    m["kind"] == "alarm_device.updated" and m["payload"]["properties"]["status"] == "alarm"
                    for m in c.of_type("event")
                )
            )
            # and the silent one goes offline by Daphne's own periodic job, no other process
            assert screen.wait_for(
                lambda c: any(
                    m["kind"] == "alarm_device.updated"
                    and m["object_id"] == str(silent.pk)
                    and m["payload"]["properties"]["status"] == "offline"
                    for m in c.of_type("event")
                ),
                timeout=15,
            )
        finally:
            screen.close()
