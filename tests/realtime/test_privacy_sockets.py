"""The websocket under the privacy rules (issue 13): refused handshakes and subscriptions are
logged with their reason; a grant revoked in the admin cuts an open police socket within 5 s;
a grant narrowed to grid cells narrows the live stream too."""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.backends.cached_db import SessionStore
from rest_framework.authtoken.models import Token
from websockets.exceptions import InvalidStatus

from command.models import GridCell
from command.services.access import access_grant_revoke, access_grant_save
from realtime import messages
from tests.realtime.conftest import session_cookie, user_token
from tests.realtime.live_client import LiveClient

pytestmark = pytest.mark.django_db(transaction=True)


def _refused(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        LiveClient(url, **kwargs)
    return refused.value.response.status_code


def _logged(server, text: str, timeout: float = 3, times: int = 1) -> bool:
    """``text`` is in the server's log (at least ``times`` times)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log.read_text(errors="replace").count(text) >= times:
            return True
        time.sleep(0.1)
    return False


def test_refused_handshakes_and_subscriptions_are_logged_with_their_reason(live_daphne, make_user):
    url = f"{live_daphne.ws_url}/ws/live/"
    operator = make_user("operator")
    cookie = session_cookie(operator)
    # a foreign Origin with a valid session
    assert _refused(url, cookie=cookie, origin="http://evil.example.com") == 403
    assert _logged(live_daphne, "websocket handshake refused (foreign origin)")
    # our Origin, no session
    assert _refused(url, origin=live_daphne.url) == 403
    assert _logged(live_daphne, "websocket handshake refused (no session)")
    # a token that was revoked
    police = make_user("police")
    key = user_token(police)
    Token.objects.filter(key=key).delete()
    assert _refused(url, token=key) == 403
    assert _logged(live_daphne, "websocket handshake refused (unknown, revoked or expired token)")
    # a session that expired (through the session store: sessions are cached)
    store = SessionStore(session_key=cookie)
    store.set_expiry(1)
    store.save()
    time.sleep(1.5)
    assert _refused(url, cookie=cookie, origin=live_daphne.url) == 403
    assert _logged(live_daphne, "websocket handshake refused (no session)", times=2)  # the second: expired
    # a subscription to layers the login may not see: denied, and logged
    client = LiveClient(url, token=user_token(police))
    subscribed = client.subscribe(["cameras", "households", "reports"])
    assert subscribed["layers"] == ["cameras"] and subscribed["denied"] == ["households", "reports"]
    assert _logged(live_daphne, f"user {police.pk} refused layers households,reports")
    client.close()


def test_a_grant_revoked_in_the_admin_cuts_an_open_police_socket_within_5_seconds(live_daphne, make_user, grid):
    # given an officer whose role is granted a patrol area, watching incidents
    police = make_user("police")
    admin = make_user("admin")
    grant = access_grant_save(role="police", cells=[grid["A-01"]], reason="派出所辖区", actor_id=admin.pk)
    client = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=user_token(police))
    assert client.subscribe(["incidents", "cameras"])["layers"] == ["incidents", "cameras"]
    # when the admin revokes it
    access_grant_revoke(grant=grant, actor_id=admin.pk)
    revoked_at = time.monotonic()
    # then the socket is closed within 5 s (no layer left), and a new request gets nothing
    code = client.wait_closed(timeout=6)
    assert time.monotonic() - revoked_at < 5
    assert code == messages.CLOSE_FORBIDDEN
    assert _refused_or_empty(live_daphne, police)


def _refused_or_empty(server, user) -> bool:
    client = LiveClient(f"{server.ws_url}/ws/live/", token=user_token(user))
    try:
        hello = client.wait_type("hello")
        return hello["layers"] == []
    finally:
        client.close()


def test_a_grid_worker_hears_only_the_events_of_their_cells(live_daphne, make_user, submit, grid):
    # given a grid worker of A-01 and one of A-02, both watching incidents and reports
    a01 = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=user_token(make_user("grid_worker", cells=["A-01"])))
    a02 = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=user_token(make_user("grid_worker", cells=["A-02"])))
    a01.subscribe(["incidents", "reports"])
    a02.subscribe(["incidents", "reports"])
    # when a report comes in A-01 (117.0005, 39.0005), then one in A-02
    submit(note="张三 13812345678", lon=117.0005, lat=39.0005)
    submit(note="李四", lon=117.0015, lat=39.0005)
    # then each hears the report and incident of its own cell only, personal data masked
    assert a01.wait_for(lambda c: len(c.events) >= 2) and a02.wait_for(lambda c: len(c.events) >= 2)
    time.sleep(1)
    cell_a01, cell_a02 = GridCell.objects.get(code="A-01").pk, GridCell.objects.get(code="A-02").pk
    assert {e["payload"]["properties"]["grid_cell_id"] for e in a01.events} == {cell_a01}
    assert {e["payload"]["properties"]["grid_cell_id"] for e in a02.events} == {cell_a02}
    notes = [e["payload"]["properties"].get("note") for e in a01.events + a02.events if e["layer"] == "reports"]
    assert notes == ["***", "***"]
    a01.close()
    a02.close()


def test_an_expired_token_is_refused_at_the_handshake_and_cuts_an_open_socket(live_daphne, make_user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from command.periodic import periodic_jobs_run

    # given an officer's token issued longer ago than API_TOKEN_MAX_AGE_DAYS, in use on a socket
    police = make_user("police")
    key = user_token(police)
    age = timedelta(days=settings.API_TOKEN_MAX_AGE_DAYS + 1)
    Token.objects.filter(key=key).update(created=timezone.now() - age)
    client = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=key)
    assert client.subscribe(["incidents"])["layers"] == ["incidents"]
    # when the periodic job expires it
    periodic_jobs_run()
    # then the open socket is closed at the next heartbeat, and a new handshake is refused and logged
    assert client.wait_closed(timeout=10) == messages.CLOSE_FORBIDDEN
    assert _refused(f"{live_daphne.ws_url}/ws/live/", token=key) == 403
    assert _logged(live_daphne, "websocket handshake refused (unknown, revoked or expired token)")
    # and REST refuses it too
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").status_code == 401
