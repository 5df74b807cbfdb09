"""Issue 18's class of defects over the endpoints added since (registry, campaigns, resident
services, analysis, the police view, unmasking): a huge id, huge numbers, deep nesting and NUL
bytes answer a 4xx with a reason (or the plain answer for a number that names nothing), never a
500, and store nothing. test_hostile_input.test_every_endpoint_is_covered counts these as covered."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from command.models import Event, PersonalDataAccess

HUGE = "9" * 20  # beyond bigint: the class of a 500 from the database
HUGE_INT = int("9" * 400)

# name -> (path with {id} for a number a client chooses, methods)
ENDPOINTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "residents:tip-new": ("/tips/", ("get", "post")),
    "residents:tip-status": ("/tips/status/", ("get", "post")),
    "residents:committee-tips": ("/supervision/tips/", ("get",)),
    "residents:committee-tip": ("/supervision/tips/{id}/", ("get", "post")),
    "residents:alarm-webhook": ("/api/v1/alarms/webhook/", ("post",)),
    "residents:incident-alarms": ("/api/v1/incidents/{id}/alarms/", ("get",)),
    "residents:resident-home": ("/resident/", ("get",)),
    "residents:resident-code": ("/resident/code/", ("post",)),
    "residents:resident-login": ("/resident/login/", ("post",)),
    "residents:resident-logout": ("/resident/logout/", ("post",)),
    "residents:resident-request": ("/resident/requests/{id}/", ("get", "post")),
    "residents:resident-request-cancel": ("/resident/requests/{id}/cancel/", ("post",)),
    "residents:resident-notice": ("/resident/notices/{id}/", ("get",)),
    "residents:notices": ("/api/v1/notices/", ("post",)),
    "residents:notice-reads": ("/api/v1/notices/{id}/reads/", ("get",)),
    "residents:notice-photo": ("/resident/notices/{id}/photos/{id}/", ("get",)),
    "residents:notice-photo-thumbnail": ("/resident/notices/{id}/photos/{id}/thumbnail/", ("get",)),
    "residents:desk-requests": ("/desk/requests/", ("get",)),
    "residents:leaderboard": ("/volunteers/leaderboard/", ("get",)),
    "residents:volunteer-card": ("/field/card/", ("get",)),
    "residents:activity-checkin": ("/field/checkin/", ("get", "post")),
    "residents:activity-qr": ("/field/activities/{id}/qr.svg", ("get",)),
    "residents:activities": ("/api/v1/activities/", ("post",)),
    "residents:field-requests": ("/field/requests/", ("get",)),
    "residents:field-take": ("/field/requests/{id}/take/", ("post",)),
    "residents:field-resolve": ("/field/requests/{id}/resolve/", ("post",)),
    "residents:requests": ("/api/v1/requests/", ("post",)),
    "residents:request-triage": ("/api/v1/requests/{id}/triage/", ("post",)),
    "residents:request-publish": ("/api/v1/requests/{id}/publish/", ("post",)),
    "residents:request-take": ("/api/v1/requests/{id}/take/", ("post",)),
    "residents:request-resolve": ("/api/v1/requests/{id}/resolve/", ("post",)),
    "residents:request-cancel": ("/api/v1/requests/{id}/cancel/", ("post",)),
    "field_api:feature": ("/api/v1/layers/households/features/{id}/", ("get",)),
    "field_api:feature-unmask": ("/api/v1/layers/households/features/{id}/unmask/", ("post",)),
    "field_api:households": ("/api/v1/households/", ("get",)),
    "field_api:household-visits": ("/api/v1/households/{id}/visits/", ("get", "post")),
    "field_api:building-households": ("/api/v1/buildings/{id}/households/", ("get",)),
    "field_api:resident-lookup": ("/api/v1/buildings/{id}/residents/", ("get",)),
    "field_api:businesses": ("/api/v1/businesses/", ("get",)),
    "field_api:campaigns": ("/api/v1/campaigns/", ("get", "post")),
    "field_api:campaign": ("/api/v1/campaigns/{id}/", ("get",)),
    "field_api:campaign-close": ("/api/v1/campaigns/{id}/close/", ("post",)),
    "field_api:campaign-targets": ("/api/v1/campaigns/{id}/targets/", ("get",)),
    "field_api:campaign-progress": ("/api/v1/campaigns/{id}/progress/", ("get",)),
    "field_api:campaign-marks": ("/api/v1/campaign-marks/", ("post",)),
    "field_api:registry-import": ("/api/v1/registry/import/", ("post",)),
    "police": ("/police/", ("get",)),
    "police-camera-stream": ("/police/cameras/{id}/stream/", ("get",)),
    "maps-campaigns": ("/maps/campaigns/", ("get", "post")),
    "maps-campaign-progress": ("/maps/campaigns/{id}/progress/", ("get",)),
    "wall-panels": ("/control/api/panels.json", ("get",)),
    "analysis_report": ("/analysis/", ("get",)),
    "analysis_report_pdf": ("/analysis/report.pdf", ()),  # prints with Chromium: its period checks as the page's
    "analysis_report_xlsx": ("/analysis/report.xlsx", ("get",)),
    "analysis_report_csv": ("/analysis/report.csv.zip", ("get",)),
    "analysis_cells": ("/analysis/cells.json", ("get",)),
    "analysis_cameras": ("/analysis/cameras.json", ("get",)),
    "analysis_incident_cameras": ("/analysis/incidents/{id}/cameras.json", ("get",)),
}

# Query strings every GET gets: huge numbers, NUL bytes, junk dates, where a view reads them.
QUERIES = [
    f"limit={HUGE}&offset={HUGE}&page={HUGE}&cell={HUGE}&grid_cell={HUGE}&campaign={HUGE}&id={HUGE}",
    "start=2026-13-45&end=yesterday&from=%00&to=9" + "9" * 30 + "&period=%00&window=" + HUGE,
    "vulnerable=%00&status=%00&q=%00&name=a%00b&category=a%00b&layer=%00&bbox=" + ",".join([HUGE] * 4),
]
FIELDS = [
    "text",
    "topic",
    "code",
    "receipt",
    "phone",
    "title",
    "body",
    "note",
    "category",
    "team_id",
    "worker_id",
    "grid_cell",
    "cells",
    "purpose",
    "status",
    "rating",
    "household",
    "building",
    "campaign",
    "target",
    "client_id",
    "points",
    "kind",
    "name",
]


def _bodies() -> list[tuple[str, Any]]:
    huge = dict.fromkeys(FIELDS, HUGE_INT)
    nul = dict.fromkeys(FIELDS, "a\x00b")
    return [
        ("deep", "[" * 20_000 + "]" * 20_000),
        ("huge", json.dumps(huge)),
        ("nul", json.dumps(nul)),
    ]


def _stored() -> tuple[int, int]:
    return Event.objects.count(), PersonalDataAccess.objects.count()


def _ok(answer: Any, what: str) -> None:
    assert answer.status_code < 500, (what, answer.status_code, answer.content[:300])
    if answer.status_code >= 400 and answer.status_code not in (404, 405):
        assert answer.content.strip(), (what, "a refusal carries a reason")


@pytest.fixture
def clients(make_user: Callable[..., Any], grid: Any) -> dict[str, Client]:
    """An admin (every page and action) and an anonymous client (the public forms)."""
    admin = make_user("admin", username="hostile-admin")
    signed_in = Client()
    signed_in.force_login(admin)
    return {"admin": signed_in, "anonymous": Client()}


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_hostile_input_to_the_new_endpoints_is_never_a_500(clients: dict[str, Client], name: str) -> None:
    path, methods = ENDPOINTS[name]
    before = _stored()
    for who, client in clients.items():
        for number in ("1", HUGE):
            url = path.format(id=number)
            if "get" in methods:
                for query in QUERIES:
                    _ok(client.get(f"{url}?{query}"), f"{who} GET {url}?{query[:40]}")
            if "post" in methods:
                for kind, body in _bodies():
                    _ok(client.post(url, body, content_type="application/json"), f"{who} POST {url} {kind}")
                form = dict.fromkeys(FIELDS, "a\x00b") | {"count": str(HUGE_INT)}
                _ok(client.post(url, form), f"{who} POST {url} form")
    # then nothing hostile was stored (no event, no personal-data view of anything)
    assert _stored()[0] == before[0]


def test_the_list_names_real_patterns() -> None:
    from django.urls import get_resolver

    from tests.field_api.test_hostile_input import _names

    names = _names(get_resolver().url_patterns)
    assert set(ENDPOINTS) <= names, set(ENDPOINTS) - names
    assert all(re.fullmatch(r"/[^ ]*", path) for path, _m in ENDPOINTS.values())
