"""One login -> user path: every channel reads ``Authorization: Token`` by command.logins' rule.

Issue 18/11: a valid token followed by junk was accepted by tiles, GeoJSON, OGC and exports
(``[:40]``) and refused by the REST API; here every channel refuses it, on a real Daphne (the
lean paths included), while the key alone is accepted (so the refusals are the rule's).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from command import db_async
from command.logins import BadCredentials, token_from_authorization
from tests.support import DaphneServer

KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Basic dXNlcjpwdw==", None),
        ("Device abc", None),
        (f"Token {KEY}", KEY),
        (f"token   {KEY}  ", KEY),
        (f"Token {KEY}".encode(), KEY),
    ],
)
def test_token_from_authorization_reads_one_key(header: Any, expected: str | None) -> None:
    assert token_from_authorization(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "Token",
        f"Token {KEY}x",
        f"Token {KEY}0",
        f"Token {KEY} junk",
        f"Token {KEY[:39]}",
        f"Token {KEY.upper()}",
        "Token " + KEY[:20] + "\u00e9" + KEY[21:],
        b"Token \xff\xfe",
    ],
)
def test_token_from_authorization_refuses_anything_else(header: Any) -> None:
    with pytest.raises(BadCredentials):
        token_from_authorization(header)


def test_export_connection_keeps_database_options(settings: Any) -> None:
    """The streamed export's connection is made as Django's (sslmode and the other OPTIONS)."""
    from maps import exports

    settings.DATABASES = {
        "default": {**settings.DATABASES["default"], "OPTIONS": {"sslmode": "disable", "pool": {"min_size": 1}}}
    }
    info = db_async.conninfo()
    assert info["sslmode"] == "disable"
    assert "pool" not in info
    assert "_conninfo" not in vars(exports)  # the export has no connection rule of its own


CHANNELS = [
    ("GET", "/api/v1/me/"),
    ("GET", "/api/v1/assignments/"),
    ("GET", "/maps/layers/incidents.geojson"),
    ("GET", "/maps/tiles/incidents/14/13515/6209.pbf"),
    ("GET", "/ogc/collections/incidents/items"),
    ("GET", "/maps/export/incidents.csv"),
    ("GET", "/maps/export/incidents.gpkg"),
    ("GET", "/open311/v2/requests.json"),
]


@pytest.mark.django_db(transaction=True)
def test_token_with_a_suffix_is_refused_on_every_channel(
    live_daphne: DaphneServer, make_user: Callable[..., User], grid: Any
) -> None:
    user = make_user("grid_worker", username="suffix", team="road")
    key = Token.objects.create(user=user).key
    good = {"Authorization": f"Token {key}"}
    for suffix in ("x", "0", " junk"):
        bad = {"Authorization": f"Token {key}{suffix}"}
        for method, path in CHANNELS:
            assert requests.request(method, live_daphne.url + path, headers=good, timeout=30).status_code == 200, path
            answer = requests.request(method, live_daphne.url + path, headers=bad, timeout=30)
            assert answer.status_code in (401, 403), (path, suffix, answer.status_code)
        # the report write, on the lean path and through Django (multipart)
        body = {
            "client_id": str(uuid.uuid4()),
            "category": "road_damage",
            "location": {"type": "Point", "coordinates": [117.0005, 39.0005]},
        }
        answer = requests.post(live_daphne.url + "/api/v1/reports/", json=body, headers=bad, timeout=30)
        assert answer.status_code == 401, answer.text
        assert "token" in answer.json()["detail"].lower()
        form = {
            "client_id": str(uuid.uuid4()),
            "category": "road_damage",
            "longitude": "117.0005",
            "latitude": "39.0005",
        }
        answer = requests.post(live_daphne.url + "/api/v1/reports/", data=form, headers=bad, timeout=30)
        assert answer.status_code == 401, answer.text
        # the websocket handshake
        with pytest.raises(InvalidStatus) as refused:
            connect(live_daphne.ws_url + "/ws/live/", additional_headers=bad, proxy=None, open_timeout=10)
        assert refused.value.response.status_code == 403
    from command.models import Report

    assert not Report.objects.exists()
    answer = requests.post(
        live_daphne.url + "/api/v1/reports/",
        data=json.dumps(body),
        headers={**good, "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    with connect(live_daphne.ws_url + "/ws/live/", additional_headers=good, proxy=None, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"]
