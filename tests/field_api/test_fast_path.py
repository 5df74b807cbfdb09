"""The lean report path (field_api/fast.py) in front of Django: it answers the common case as the
DRF view would, and hands everything else to that view unchanged.

The ASGI application of command/asgi.py is called in-process (so the tests can see which path
answered); the database work is real and committed (the async pool has its own connections).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.authtoken.models import Token

from command import db_async
from command.lean import KNOWN_MIDDLEWARE
from command.models import Event, Incident, Report
from command.services import reports as report_services
from command.services.accounts import api_token_revoke
from tests.field_api.conftest import report_body

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/reports/"


async def _call(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    from command.asgi import application

    query = b""
    if "?" in path:
        path, _, q = path.partition("?")
        query = q.encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"content-length", str(len(body)).encode())]
        + [(k.lower().encode(), v.encode()) for k, v in {"Host": "testserver", **headers}.items()],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await application(scope, receive, send)
    finally:
        await db_async.pools_close()
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content


def post(body: Any, *, token: str | None, path: str = URL, **headers: str) -> tuple[int, dict[str, str], Any]:
    sent_headers = {"Content-Type": "application/json", "Accept-Language": "en", **headers}
    if token:
        sent_headers["Authorization"] = f"Token {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, response_headers, content = asyncio.run(_call(path, raw, sent_headers))
    return status, response_headers, json.loads(content) if content else None


@pytest.fixture
def token(worker_user: User) -> str:
    return Token.objects.get_or_create(user=worker_user)[0].key


@pytest.fixture
def lean_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The client ids the lean path stored (it is the only caller of report_submit_async)."""
    calls: list[str] = []
    original = report_services.report_submit_async

    async def spy(**kwargs: Any) -> Any:
        result = await original(**kwargs)
        calls.append(str(kwargs["client_id"]))
        return result

    monkeypatch.setattr("field_api.fast.report_submit_async", spy)
    return calls


def test_new_report_is_answered_by_the_lean_path_as_the_drf_view_answers(token, grid, lean_calls):
    # given: one report through the lean path, one through Django (a query string sends it there)
    fast_body, drf_body = report_body(), report_body(note="  trimmed  ")
    # when
    fast_status, fast_headers, fast = post(fast_body, token=token)
    drf_status, drf_headers, drf = post(drf_body, token=token, path=URL + "?via=django")
    # then: the lean path took the first only
    assert lean_calls == [fast_body["client_id"]]
    assert (fast_status, drf_status) == (201, 201)
    # the same headers (Django's middleware: security, language, frame options, length)
    assert fast_headers.keys() == drf_headers.keys()
    assert {k: v for k, v in fast_headers.items() if k != "content-length"} == {
        k: v for k, v in drf_headers.items() if k != "content-length"
    }
    assert fast_headers["content-language"] == "en"
    # the same receipt, field by field (apart from the ids, the note and the times)
    assert fast.keys() == drf.keys()
    for key in ("category", "location", "accuracy", "client_time", "grid_cell_id", "outside_grid", "building_id"):
        assert fast[key] == drf[key], key
    assert drf["note"] == "trimmed"
    assert fast["incident"]["id"] == drf["incident"]["id"]  # 50 m, same category: one incident
    assert (fast["incident"]["report_count"], drf["incident"]["report_count"]) == (1, 2)
    # and stored once, with its two events
    stored = Report.objects.get(client_id=fast_body["client_id"])
    assert stored.pk == fast["id"] and stored.grid_cell_id == grid["A-01"].pk and stored.reporter.username == "wang"
    assert Event.objects.filter(object_id=str(stored.pk), layer="reports").count() == 1
    assert Incident.objects.get().report_count == 2


def test_retry_and_conflict_are_answered_by_the_drf_view_and_counted_once(token, grid, lean_calls):
    body = report_body()
    with override_settings(FIELD_API_RATES={**settings.FIELD_API_RATES, "reports": "2/min"}):
        # when: sent, retried (the lean path finds it stored and hands it to Django) ...
        first = post(body, token=token)
        retry = post(body, token=token)
        # ... and a third request: over the rate of 2 per minute
        third = post(report_body(), token=token)
    # then
    assert first[0] == 201 and retry[0] == 200 and retry[2]["id"] == first[2]["id"]
    assert third[0] == 429 and "retry-after" in third[1]
    assert Report.objects.count() == 1
    # and other content under the same id: 409 from the DRF view
    conflict = post({**body, "note": "another"}, token=token)
    assert conflict[0] == 409 and conflict[2]["existing"]["id"] == first[2]["id"]
    assert lean_calls == [body["client_id"]]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"location": {"type": "Point", "coordinates": [117.0, 91.0]}}, 400, "location"),
        ({"location": {"type": "LineString", "coordinates": [[117.0, 39.0], [117.1, 39.1]]}}, 400, "location"),
        ({"category": "no_such_thing"}, 400, "category"),
        ({"accuracy": -1}, 400, "accuracy"),
        ({"client_id": "not-a-uuid"}, 400, "client_id"),
        ({"note": "x" * 4001}, 400, "note"),
        ({"client_time": "yesterday"}, 400, "client_time"),
    ],
)
def test_bad_input_gets_the_drf_view_reasons(token, grid, lean_calls, change, status, field):
    code, _headers, answer = post(report_body(**change), token=token)
    assert code == status and field in answer, answer
    assert not Report.objects.exists() and not Event.objects.filter(layer__in=["reports", "incidents"]).exists()
    assert lean_calls == []


def test_malformed_json_and_wrong_content_type_go_to_the_drf_view(token, grid, lean_calls):
    assert post(b'{"client_id": ', token=token)[0] == 400
    assert post(json.dumps(report_body()).encode(), token=token, **{"Content-Type": "text/plain"})[0] == 415
    assert not Report.objects.exists() and lean_calls == []


def test_unknown_revoked_and_inactive_tokens_are_refused(token, worker_user, grid, lean_calls):
    assert post(report_body(), token="0" * 40)[0] == 401
    # a token the lean path has seen (and cached) stops working the moment it is revoked ...
    assert post(report_body(), token=token)[0] == 201
    api_token_revoke(user=worker_user)
    assert post(report_body(), token=token)[0] == 401
    # ... and so does a new one of a user made inactive
    fresh = Token.objects.create(user=worker_user).key
    assert post(report_body(), token=fresh)[0] == 201
    User.objects.filter(pk=worker_user.pk).update(is_active=False)
    assert post(report_body(), token=fresh)[0] == 401
    assert Report.objects.count() == 2 and len(lean_calls) == 2


def test_a_request_django_would_redirect_to_https_is_left_to_django(token, grid, lean_calls):
    # (Django's own middleware chain was built when the app first ran, with the settings of that
    # moment, so here it answers as configured then; what matters is that the lean path stepped
    # aside: in production the redirect setting is fixed from the start.)
    with override_settings(SECURE_SSL_REDIRECT=True):
        post(report_body(), token=token)
    assert lean_calls == []


def test_another_middleware_list_sends_every_report_to_django(token, grid, lean_calls, settings):
    # the lean path reproduces what the known middleware add; with another list it steps aside
    assert tuple(settings.MIDDLEWARE) == KNOWN_MIDDLEWARE
    settings.MIDDLEWARE = [*KNOWN_MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    assert post(report_body(), token=token)[0] == 201
    assert lean_calls == [] and Report.objects.count() == 1


def test_a_host_not_in_allowed_hosts_is_left_to_django(token, grid, lean_calls):
    status, _headers, _answer = post(report_body(), token=token, Host="evil.example")
    assert status == 400
    assert lean_calls == [] and not Report.objects.exists()


def test_switched_off_every_report_goes_through_django(token, grid, lean_calls):
    with override_settings(FAST_PATHS=False):
        assert post(report_body(client_id=str(uuid.uuid4())), token=token)[0] == 201
    assert lean_calls == [] and Report.objects.count() == 1


def test_a_failure_after_the_write_is_answered_by_django_without_a_second_report(token, grid, lean_calls, monkeypatch):
    # given: the lean path stores the report, then fails while answering
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated failure after commit")

    monkeypatch.setattr("field_api.fast.stored_output", broken)
    body = report_body()
    # when
    status, _headers, answer = post(body, token=token)
    # then: Django found it by its client id: the first receipt, and one report
    assert status == 200 and answer["client_id"] == body["client_id"]
    assert Report.objects.filter(client_id=body["client_id"]).count() == 1
    assert lean_calls == [body["client_id"]]
