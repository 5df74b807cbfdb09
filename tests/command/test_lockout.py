"""Issue 18: a limit on password guesses through the login form, the token endpoint and HTTP
Basic (maps/OGC), per account and per client address, counted in the real Redis."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

TOKEN = "/api/v1/auth/token/"
PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_LOCKOUT_SECONDS = 60


def token(username: str, password: str, address: str = "10.1.0.1") -> Any:
    return APIClient().post(
        TOKEN,
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_token_endpoint_locks_an_account_after_the_limit(make_user: Any) -> None:
    make_user("grid_worker", username="guessed", team="road")
    make_user("grid_worker", username="bystander", team="road")
    for _ in range(3):
        assert token("guessed", "wrong").status_code == 400
    # then: even the right password is refused now, from anywhere, with a reason and Retry-After
    for address in ("10.1.0.1", "10.9.9.9"):
        locked = token("guessed", PASSWORD, address)
        assert locked.status_code == 429, locked.content
        assert 0 < int(locked["Retry-After"]) <= 60
        assert locked.json()["detail"] == "Too many failed logins for this account or address; try again in 60 s."
    # another account is not affected
    assert token("bystander", PASSWORD).status_code == 200


def test_a_lock_is_logged(make_user: Any, caplog: Any) -> None:
    make_user("grid_worker", username="logged", team="road")
    with caplog.at_level(logging.WARNING, logger="gridcommand.logins"):
        for _ in range(3):
            token("logged", "wrong")
    assert any("login locked" in r.getMessage() and "'logged'" in r.getMessage() for r in caplog.records)


def test_an_address_is_locked_after_guessing_many_accounts(make_user: Any) -> None:
    make_user("grid_worker", username="target", team="road")
    for i in range(5):
        assert token(f"nobody-{i}", "wrong", "10.2.0.1").status_code == 400
    assert token("target", PASSWORD, "10.2.0.1").status_code == 429
    assert token("target", PASSWORD, "10.2.0.2").status_code == 200


def test_a_success_clears_the_accounts_count(make_user: Any) -> None:
    make_user("grid_worker", username="forgetful", team="road")
    for _ in range(2):
        token("forgetful", "wrong")
    assert token("forgetful", PASSWORD).status_code == 200
    for _ in range(2):
        token("forgetful", "wrong")
    assert token("forgetful", PASSWORD).status_code == 200


def test_login_form_says_the_account_is_locked(make_user: Any) -> None:
    make_user("operator", username="formuser")
    browser = Client(REMOTE_ADDR="10.3.0.1")
    for _ in range(3):
        answer = browser.post("/accounts/login/", {"username": "formuser", "password": "wrong"})
        assert answer.status_code == 200  # the form again, "wrong password"
    locked = browser.post("/accounts/login/", {"username": "formuser", "password": PASSWORD})
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.content.decode()  # zh-Hans by default
    assert "_auth_user_id" not in browser.session


def test_http_basic_is_limited_too(make_user: Any) -> None:
    make_user("operator", username="qgis")

    def basic(password: str) -> Any:
        header = "Basic " + base64.b64encode(f"qgis:{password}".encode()).decode()
        return Client().get(
            "/ogc/collections", HTTP_AUTHORIZATION=header, REMOTE_ADDR="10.4.0.1", HTTP_ACCEPT_LANGUAGE="en"
        )

    for _ in range(3):
        assert basic("wrong").status_code == 401
    locked = basic(PASSWORD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert "Too many failed logins" in locked.json()["description"]
