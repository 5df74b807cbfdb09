"""Issue 18: a socket lives only as long as the login that opened it. Revoking the token or
logging out closes that login's sockets within 5 s (the hub's heartbeat re-checks them);
another login of the same user stays open."""

from __future__ import annotations

import time

import pytest
import requests
from django.test import Client

from realtime.messages import CLOSE_FORBIDDEN
from tests.realtime.conftest import session_cookie, user_token
from tests.realtime.live_client import LiveClient

pytestmark = pytest.mark.django_db(transaction=True)


def test_revoking_the_token_closes_its_sockets_within_5_seconds(live_daphne, make_user):
    user = make_user("operator")
    token = user_token(user)
    screen = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=token)
    cookie = session_cookie(user)
    browser = LiveClient(f"{live_daphne.ws_url}/ws/live/", cookie=cookie, origin=live_daphne.url)
    screen.subscribe(["incidents"])
    browser.subscribe(["incidents"])
    answer = requests.delete(
        f"{live_daphne.url}/api/v1/auth/token/", headers={"Authorization": f"Token {token}"}, timeout=10
    )
    assert answer.status_code == 204
    revoked_at = time.monotonic()
    assert screen.wait_closed(timeout=6) == CLOSE_FORBIDDEN
    assert time.monotonic() - revoked_at < 5.5
    # the same user's browser session is another login: it goes on
    assert browser.wait_type("heartbeat", timeout=5, count=len(browser.of_type("heartbeat")) + 1)
    assert browser.close_code is None
    browser.close()


def test_logging_out_closes_that_sessions_sockets_within_5_seconds(live_daphne, make_user):
    user = make_user("grid_worker", team="road")
    first, second = session_cookie(user), session_cookie(user)
    leaving = LiveClient(f"{live_daphne.ws_url}/ws/live/", cookie=first, origin=live_daphne.url)
    staying = LiveClient(f"{live_daphne.ws_url}/ws/live/", cookie=second, origin=live_daphne.url)
    leaving.subscribe(["incidents"])
    staying.subscribe(["incidents"])
    browser = Client()
    browser.cookies["sessionid"] = first
    assert browser.post("/accounts/logout/").status_code in (200, 302)
    logged_out_at = time.monotonic()
    assert leaving.wait_closed(timeout=6) == CLOSE_FORBIDDEN
    assert time.monotonic() - logged_out_at < 5.5
    assert staying.wait_type("heartbeat", timeout=5, count=len(staying.of_type("heartbeat")) + 1)
    assert staying.close_code is None
    staying.close()
