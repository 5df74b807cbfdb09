"""Who may connect, and what each login receives: one policy (command.layers), live and on replay."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth.models import Group
from websockets.exceptions import InvalidStatus

from command.layers import LAYERS
from command.models import PersonalDataAccess
from tests.realtime.conftest import session_cookie
from tests.realtime.live_client import LiveClient

pytestmark = pytest.mark.django_db(transaction=True)

PERSONAL_FIELDS = {field for layer in LAYERS.values() for field in layer.sensitive_fields}


def _refused(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        LiveClient(url, **kwargs)
    return refused.value.response.status_code


def test_anonymous_and_foreign_origin_handshakes_are_refused(live_daphne, make_user):
    # given
    url = f"{live_daphne.ws_url}/ws/live/"
    cookie = session_cookie(make_user("operator"))
    # then: no credentials at all
    assert _refused(url, origin=live_daphne.url) == 403
    # a valid session cookie sent by another site's page (cross-site websocket hijacking)
    assert _refused(url, cookie=cookie, origin="http://evil.example.com") == 403
    # a session cookie without any Origin (browsers always send one)
    assert _refused(url, cookie=cookie) == 403
    # a bogus token
    assert _refused(url, token="not-a-token") == 403
    # and the same cookie from our own origin is welcome
    client = LiveClient(url, cookie=cookie, origin=live_daphne.url)
    assert client.wait_type("hello")["user"].startswith("operator")
    client.close()


def test_inactive_user_is_refused(live_daphne, make_user):
    user = make_user("operator")
    cookie = session_cookie(user)
    user.is_active = False
    user.save()
    assert _refused(f"{live_daphne.ws_url}/ws/live/", cookie=cookie, origin=live_daphne.url) == 403


def _assert_police_safe(messages: list[dict]) -> None:
    for message in messages:
        if message["type"] != "event":
            continue
        assert message["layer"] in {
            "incidents",
            "cameras",
            "camera_cones",
            "hotspots",
            "cells",
            "roads",
            "buildings",
            "workers",
        }
        assert not PERSONAL_FIELDS & set(message["payload"]["properties"]), message
        assert "actor_id" not in message


def test_police_never_receives_a_layer_it_lacks_nor_personal_data_live_or_on_replay(screens, make_user, submit):
    # given: a police screen asking for everything, beside an operator's
    police = make_user("police")
    operator = make_user("operator")
    police_screen = screens(police)
    subscribed = police_screen.subscribe(list(LAYERS))
    registry = {"households", "persons", "businesses", "campaigns", "campaign_buildings", "campaign_targets"}
    assert set(subscribed["denied"]) == {*registry, "alarm_devices", "requests", "reports"}
    operator_screen = screens(operator)
    operator_screen.subscribe(["incidents", "reports"])
    start = subscribed["seq"]
    # when: reports with notes (personal data) by a worker come in
    worker = make_user("grid_worker", team="volunteer")
    for i in range(3):
        submit(note=f"住户张三 电话 1380000000{i}", reporter=worker)
    # then: the operator sees reports with notes; the police only the incidents, redacted
    assert operator_screen.wait_for(lambda c: len(c.events) == 6)
    assert {e["layer"] for e in operator_screen.events} == {"incidents", "reports"}
    assert police_screen.wait_for(lambda c: len(c.events) == 3)  # the incident: created, then updated twice
    time.sleep(0.5)
    assert {e["layer"] for e in police_screen.events} == {"incidents"}
    _assert_police_safe(police_screen.messages)
    # and on replay from before those reports, the same
    replay = screens(police, since=start)
    replay.subscribe(list(LAYERS))
    assert replay.wait_for(lambda c: len(c.events) == 3)
    time.sleep(0.5)
    assert [e["seq"] for e in replay.events] == police_screen.event_seqs()
    _assert_police_safe(replay.messages)


def test_revoked_layer_stops_within_5_seconds(screens, make_user, submit):
    # given: a grid worker watching reports (personal data included)
    worker = make_user("grid_worker", team="volunteer", cells=["A-01", "A-02"])
    screen = screens(worker)
    screen.subscribe(["incidents", "reports"])
    submit(note="before")
    assert screen.wait_for(lambda c: len(c.events) == 2)
    # when: the login's role becomes police
    worker.groups.set([Group.objects.get(name="police")])
    revoked_at = time.monotonic()
    # then: within 5 s the connection says so, and reports stop
    access = screen.wait_type("access", timeout=5)
    assert time.monotonic() - revoked_at < 5
    assert access["revoked"] == ["reports"]
    assert access["layers"] == ["incidents"]
    submit(note="after", lon=117.0015)
    assert screen.wait_for(lambda c: len(c.events) == 3)
    time.sleep(0.5)
    assert screen.events[-1]["layer"] == "incidents"
    assert not PERSONAL_FIELDS & set(screen.events[-1]["payload"]["properties"])


def test_regranted_layer_comes_back_with_a_resync(screens, make_user, submit):
    police = make_user("police")
    screen = screens(police)
    screen.subscribe(["incidents", "reports"])
    assert screen.wait_type("resync")["reason"] == "initial"
    police.groups.set([Group.objects.get(name="operator")])
    access = screen.wait_type("access", timeout=5)
    assert access["granted"] == ["reports"]
    assert screen.wait_type("resync", count=2)["reason"] == "granted"
    submit()
    assert screen.wait_for(lambda c: {e["layer"] for e in c.events} == {"incidents", "reports"})


def test_deactivated_login_is_disconnected(screens, make_user):
    user = make_user("operator")
    screen = screens(user)
    screen.subscribe(["incidents"])
    user.is_active = False
    user.save()
    assert screen.wait_closed(timeout=6) == 4403


def test_bbox_limits_what_a_screen_receives(screens, make_user, submit):
    # given: a screen watching cell A-01 only (117.000-117.001, 39.000-39.001)
    screen = screens(make_user("operator"))
    screen.subscribe(["incidents"], bbox=[117.000, 39.000, 117.001, 39.001])
    # when: one report inside, one on the east edge, one outside
    submit(lon=117.0005, lat=39.0005)
    submit(lon=117.001, lat=39.0002, category="road_damage")
    submit(lon=117.0018, lat=39.0005, category="sanitation")
    # then: inside and on the edge arrive, outside does not
    assert screen.wait_for(lambda c: len(c.events) == 2)
    time.sleep(0.5)
    coords = [tuple(e["payload"]["geometry"]["coordinates"]) for e in screen.events]
    assert coords == [(117.0005, 39.0005), (117.001, 39.0002)]


def test_personal_data_goes_live_masked_and_a_masked_stream_writes_no_log(screens, make_user, submit):
    # given: an operator (sees reporters and notes, masked) and a police officer (does not)
    operator = make_user("operator")
    police = make_user("police")
    operator_screen = screens(operator)
    operator_screen.subscribe(["incidents", "reports"])
    police_screen = screens(police)
    police_screen.subscribe(["incidents"])
    # when
    submit(note="住户李四")
    assert operator_screen.wait_for(lambda c: len(c.events) == 2)
    operator_screen.wait_type("heartbeat", count=len(operator_screen.of_type("heartbeat")) + 1, timeout=5)
    # then: the operator's report comes masked (the event log holds it so), and nothing is logged
    report = next(e for e in operator_screen.events if e["layer"] == "reports")
    assert report["payload"]["properties"]["note"] == "***"
    assert report["payload"]["properties"]["reporter_id"] is None
    assert not PersonalDataAccess.objects.filter(channel="websocket").exists()


def test_a_token_in_the_subprotocol_list_logs_a_browser_page_in(live_daphne, make_user):
    # given: a page without a session (the field app) that holds an API token
    from websockets.sync.client import connect

    from tests.realtime.conftest import user_token

    url = f"{live_daphne.ws_url}/ws/live/"
    token = user_token(make_user("grid_worker", team="road"))
    # then: the token as a subprotocol opens the socket, answered with the protocol "gridcommand"
    with connect(url, origin=live_daphne.url, subprotocols=["gridcommand", f"gridcommand.token.{token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "gridcommand"
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
    # a wrong or malformed token is refused like any other
    for bad in ("0" * 40, "not-a-token"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=live_daphne.url, subprotocols=["gridcommand", f"gridcommand.token.{bad}"])  # type: ignore[list-item]
        assert refused.value.response.status_code == 403
