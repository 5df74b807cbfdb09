"""/healthz (database, Redis, event-log lag) and /metrics (Prometheus) on a real Daphne, and
what each says when a part is away."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from command import health
from tests.realtime.conftest import session_cookie
from tests.realtime.live_client import LiveClient


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_each_check_and_metrics_count_what_the_process_did(live_daphne, make_user, reference, grid):
    # given: a screen and a phone on a real Daphne
    operator = make_user("operator")
    worker = make_user("grid_worker", team="volunteer")
    screen = LiveClient(f"{live_daphne.ws_url}/ws/live/", cookie=session_cookie(operator), origin=live_daphne.url)
    try:
        screen.subscribe(["incidents", "reports"])
        request = urllib.request.Request(
            f"{live_daphne.url}/api/v1/reports/",
            data=json.dumps(
                {
                    "client_id": str(uuid.uuid4()),
                    "category": "elevator_fault",
                    "location": {"type": "Point", "coordinates": [117.0005, 39.0005]},
                }
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Token {Token.objects.create(user=worker)}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        assert screen.wait_for(lambda c: len(c.events) == 2)
        # when
        status, body = _get(f"{live_daphne.url}/healthz")
        _status, text = _get(f"{live_daphne.url}/metrics")
    finally:
        screen.close()
    # then: every check passed, and the screen is not behind
    report = json.loads(body)
    assert status == 200 and report["ok"] is True
    assert report["database"]["ok"] and report["redis"]["ok"] and report["postgis"]
    assert report["event_log"]["screens"] == 1 and report["event_log"]["behind"] == 0
    assert report["event_log"]["lag_seconds"] == 0
    # and /metrics counts the connection, the deliveries, the lag and the requests by route
    samples = _samples(text.decode())
    assert samples[("gridcommand_websocket_connections", ())] == 1
    assert samples[("gridcommand_events_delivered_total", ())] == 2
    assert samples[("gridcommand_event_delivery_lag_seconds_count", ())] >= 1
    report_route = (("method", "POST"), ("route", "/api/v1/reports/"), ("status", "2xx"))
    assert samples[("gridcommand_http_request_duration_seconds_count", report_route)] == 1
    tile_like = [labels for name, labels in samples if name == "gridcommand_http_request_duration_seconds_count"]
    assert all(dict(labels)["route"] != "/api/v1/reports/x" for labels in tile_like)


@pytest.mark.django_db
def test_healthz_is_503_with_the_reason_when_redis_is_away(settings, monkeypatch):
    # given: a Redis that does not answer
    monkeypatch.setattr(health, "_redis_client", None)
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    # when
    response = Client().get("/healthz")
    monkeypatch.setattr(health, "_redis_client", None)
    # then
    assert response.status_code == 503
    report = response.json()
    assert report["ok"] is False and report["redis"]["ok"] is False and "redis.sock" in report["redis"]["error"]
    assert report["database"]["ok"] is True


@pytest.mark.django_db
def test_metrics_are_only_for_the_allowed_networks(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404
    response = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert response.status_code == 200 and b"gridcommand_http_request_duration_seconds" in response.content


@pytest.mark.django_db
def test_rate_limits_let_reports_through_while_redis_is_away(make_user, reference, grid, settings):
    # given: the shared cache (rate-limit histories) is unreachable
    worker: User = make_user("grid_worker", team="volunteer")
    token = Token.objects.create(user=worker)
    dead = {**settings.CACHES["default"], "LOCATION": "unix:///nonexistent/redis.sock"}
    with override_settings(CACHES={**settings.CACHES, "default": dead}):
        # when: a phone reports
        response = Client().post(
            "/api/v1/reports/",
            data={
                "client_id": str(uuid.uuid4()),
                "category": "elevator_fault",
                "location": {"type": "Point", "coordinates": [117.0005, 39.0005]},
            },
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token.key}",
        )
    # then: it is taken, not refused with a 500 (Redis carries counters, never the truth)
    assert response.status_code == 201, response.content
