"""Resume with ?since=, the retention window, bad input, slow and silent clients."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from command.eventlog import events_prune, latest_seq
from realtime.messages import CLOSE_BAD_REQUEST, CLOSE_SLOW, CLOSE_TIMEOUT
from tests.realtime.conftest import session_cookie
from tests.realtime.live_client import LiveClient
from tests.support import daphne_server

pytestmark = pytest.mark.django_db(transaction=True)


def _open(server, user, **kwargs) -> LiveClient:
    return LiveClient(f"{server.ws_url}/ws/live/", cookie=session_cookie(user), origin=server.url, **kwargs)


def test_resume_with_since_replays_exactly_what_was_missed(screens, make_user, submit):
    # given: a screen that saw one report, then went away
    operator = make_user("operator")
    first = screens(operator)
    first.subscribe(["incidents", "reports"])
    submit(note="seen")
    assert first.wait_for(lambda c: len(c.events) == 2)
    since = first.last_seq
    first.close()
    # when: two reports commit while it is away, and it comes back with since
    submit(note="missed 1", lon=117.0012)
    submit(note="missed 2", lon=117.0014)
    back = screens(operator, since=since)
    subscribed = back.subscribe(["incidents", "reports"])
    # then: exactly the missed events, in order, and no resync
    assert subscribed["seq"] == since
    assert back.wait_for(lambda c: len(c.events) == 4)
    time.sleep(0.5)
    assert back.event_seqs() == list(range(since + 1, since + 5))
    assert back.of_type("resync") == []
    assert back.wait_type("hello")["since"] == since


def test_resume_from_before_pruned_events_gets_resync(screens, make_user, submit):
    operator = make_user("operator")
    submit()
    since = latest_seq()
    submit(lon=117.0012)
    assert events_prune(before=timezone.now()) >= 4
    back = screens(operator, since=since)
    back.subscribe(["incidents", "reports"])
    resync = back.wait_type("resync")
    assert (resync["reason"], resync["seq"]) == ("retention", latest_seq())


def test_resume_past_the_retention_window_gets_resync(make_user, submit):
    operator = make_user("operator")
    submit()
    since = latest_seq() - 1
    with daphne_server(extra_env={"EVENT_RETENTION_HOURS": "0"}) as server:
        client = _open(server, operator, since=since)
        client.subscribe(["reports"])
        assert client.wait_type("resync")["reason"] == "retention"
        assert client.events == []
        client.close()


def test_resume_too_far_back_or_ahead_gets_resync(make_user, submit):
    operator = make_user("operator")
    for i in range(3):
        submit(lon=117.0001 + i * 0.0002)
    with daphne_server(extra_env={"REALTIME_MAX_REPLAY": "3"}) as server:
        far = _open(server, operator, since=0)
        far.subscribe(["reports"])
        assert far.wait_type("resync")["reason"] == "too_far"
        ahead = _open(server, operator, since=latest_seq() + 10)
        ahead.subscribe(["reports"])
        assert ahead.wait_type("resync") == {"type": "resync", "seq": latest_seq(), "reason": "ahead"}
        far.close()
        ahead.close()


def test_bad_since_is_refused_with_4400(live_daphne, make_user):
    bad = LiveClient(
        f"{live_daphne.ws_url}/ws/live/?since=yesterday",
        cookie=session_cookie(make_user("operator")),
        origin=live_daphne.url,
    )
    assert bad.wait_type("error")["code"] == "bad_request"
    assert bad.wait_closed() == CLOSE_BAD_REQUEST


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        '{"type": "teleport"}',
        '{"type": "subscribe", "layers": ["secret_layer"]}',
        '{"type": "subscribe", "layers": "incidents"}',
        '{"type": "subscribe", "layers": ["incidents"], "bbox": [118, 39, 117, 40]}',
        '{"type": "subscribe", "layers": ["incidents"], "bbox": [1e999, 39, 117, 40]}',
        '{"type": "ack", "seq": -1}',
    ],
)
def test_malformed_client_messages_get_an_error_and_the_connection_stays(screens, make_user, frame):
    screen = screens(make_user("operator"))
    screen.ws.send(frame)
    error = screen.wait_type("error")
    assert error["code"] == "bad_request" and error["detail"]
    assert screen.subscribe(["incidents"])["layers"] == ["incidents"]  # still usable


def test_binary_frame_gets_an_error(screens, make_user):
    screen = screens(make_user("operator"))
    screen.ws.send(b"\x00\x01")
    assert screen.wait_type("error")["code"] == "bad_request"


def test_slow_client_gets_resync_and_is_closed(make_user, submit):
    # given: a screen that never acknowledges, against a 20 kB allowance
    operator = make_user("operator")
    with daphne_server(extra_env={"REALTIME_MAX_UNACKED_BYTES": "20000"}) as server:
        client = _open(server, operator, ack=False)
        client.subscribe(["incidents", "reports"])
        # when: more than that is sent to it
        for i in range(30):
            submit(note="x" * 200, lon=117.0001 + (i % 10) * 0.00018, lat=39.0001 + (i // 10) * 0.0002)
        # then: it is told to reload, and closed, instead of buffering without bound
        assert client.wait_closed(timeout=15) == CLOSE_SLOW
        assert client.of_type("resync")[-1]["reason"] == "slow"
        assert sum(len(str(m)) for m in client.events) < 40000


def test_silent_client_is_closed(make_user):
    with daphne_server(extra_env={"REALTIME_CLIENT_TIMEOUT_SECONDS": "4"}) as server:
        client = _open(server, make_user("operator"), ack=False)
        client.subscribe(["incidents"])
        assert client.wait_closed(timeout=10) == CLOSE_TIMEOUT
