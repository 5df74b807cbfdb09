"""Issue 18: hostile input over every write and list endpoint answers 4xx with a reason, never
500, and stores nothing: huge numbers, deep nesting, NUL bytes, huge offsets, images whose text
chunks inflate. A new URL pattern must be listed here (``test_every_endpoint_is_covered``)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from PIL import Image
from rest_framework.test import APIClient

from command.models import Event, Incident, Report, ReportPhoto
from tests.field_api.conftest import client_for, image_bytes, report_body

HUGE_INT = int("9" * 400)
DEEP = 20_000


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def counts() -> tuple[int, ...]:
    return (
        Report.objects.count(),
        Incident.objects.count(),
        ReportPhoto.objects.count(),
        Event.objects.filter(layer__in=["reports", "incidents"]).count(),
    )


def assert_refused(answer: Any, *, status: tuple[int, ...] = (400,)) -> None:
    assert answer.status_code in status, (answer.status_code, answer.content[:300])
    body = answer.content.decode("utf-8", "replace")
    assert body.strip(), "a refusal carries a reason"


@pytest.fixture
def incident_id(api: APIClient) -> int:
    answer = api.post("/api/v1/reports/", report_body(), format="json")
    assert answer.status_code == 201
    return int(answer.json()["incident"]["id"])


# --- every write: (path, how to send) -------------------------------------------------------

WRITES: list[tuple[str, str]] = [
    ("/api/v1/auth/token/", "json"),
    ("/api/v1/reports/", "json"),
    ("/api/v1/reports/", "multipart"),
    ("/api/v1/pings/", "json"),
    ("/api/v1/me/duty/", "json"),
    ("/open311/v2/requests.json", "json"),
    ("/open311/v2/requests.json", "form"),
    ("/api/v1/incidents/{id}/accept/", "json"),
    ("/api/v1/incidents/{id}/arrive/", "json"),
    ("/api/v1/incidents/{id}/resolve/", "json"),
    ("/api/v1/incidents/{id}/hand-back/", "json"),
    ("/api/v1/incidents/{id}/dispatch/", "json"),
    ("/api/v1/incidents/{id}/close/", "json"),
    ("/api/v1/incidents/{id}/cancel/", "json"),
    ("/api/v1/incidents/{id}/priority/", "json"),
    ("/api/v1/incidents/{id}/acknowledge/", "json"),
]


def _post(client: APIClient, path: str, how: str, body: Any) -> Any:
    if how == "raw":
        return client.post(path, body, content_type="application/json")
    if how == "multipart":
        return client.post(path, body, format="multipart")
    if how == "form":
        return client.post(path, body)
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("path", "how"), WRITES)
def test_deep_nesting_is_a_400_everywhere(api: APIClient, incident_id: int, path: str, how: str) -> None:
    before = counts()
    url = path.format(id=incident_id)
    if how == "json":
        answer = _post(api, url, "raw", deep_json())
    elif how == "multipart":
        answer = api.post(url, {**report_body(), "location": deep_json()}, format="multipart")
    else:
        answer = api.post(url, {"service_code": "road_damage", "lat": deep_json(), "long": "117.0005"})
    assert_refused(answer)
    assert counts() == before


@pytest.mark.parametrize(("path", "how"), WRITES)
def test_huge_integers_are_a_400_everywhere(api: APIClient, incident_id: int, path: str, how: str) -> None:
    before = counts()
    url = path.format(id=incident_id)
    location = {"type": "Point", "coordinates": [HUGE_INT, 39.0005]}
    body: dict[str, Any] = {
        **report_body(location=location),
        "latitude": HUGE_INT,
        "longitude": HUGE_INT,
        "accuracy": HUGE_INT,
        "worker_id": HUGE_INT,
        "team_id": HUGE_INT,
        "priority": HUGE_INT,
        "lat": HUGE_INT,
        "long": HUGE_INT,
        "service_code": "road_damage",
        "pings": [{"longitude": HUGE_INT, "latitude": 39.0, "at": "2026-12-01T10:00:00Z"}],
        "on_duty": True,
        "username": "x",
        "password": "y",
        "reason": "r",
        "note": "n",
    }
    if how == "multipart":
        body = {**report_body(), "location": json.dumps(location)}
    elif how == "form":
        body = {"service_code": "road_damage", "lat": str(HUGE_INT), "long": "117.0005"}
    answer = _post(api, url, how, body)
    assert_refused(answer, status=(400, 404, 409))
    assert counts() == before


@pytest.mark.parametrize(
    "fields",
    [
        {"longitude": str(HUGE_INT), "latitude": "39.0005"},
        {"longitude": "117.0005", "latitude": "-" + str(HUGE_INT)},
        {"location": json.dumps({"type": "Point", "coordinates": [117.0005, -HUGE_INT]})},
    ],
)
def test_multipart_coordinates_of_400_digits(api: APIClient, grid: Any, fields: dict[str, str]) -> None:
    body = {k: v for k, v in report_body().items() if k != "location"} | fields
    answer = api.post("/api/v1/reports/", body, format="multipart")
    assert_refused(answer)
    assert counts() == (0, 0, 0, 0)


def test_nul_bytes_are_a_4xx(api: APIClient, incident_id: int) -> None:
    before = counts()
    assert_refused(api.get("/field/app%00.js"), status=(404,))
    assert_refused(api.get("/field/%00"), status=(404,))
    assert_refused(api.post("/api/v1/reports/", report_body(note="a\x00b"), format="json"))
    assert_refused(
        api.post("/api/v1/reports/", {**report_body(), "location": '{"type":"Point\x00"}'}, format="multipart")
    )
    assert_refused(api.post("/open311/v2/requests.json", {"service_code": "road\x00", "lat": "39", "long": "117"}))
    assert_refused(api.post("/api/v1/auth/token/", {"username": "a\x00", "password": "b"}, format="json"))
    assert_refused(
        api.post(f"/api/v1/incidents/{incident_id}/hand-back/", {"reason": "x\x00y"}, format="json"),
        status=(400, 409),
    )
    assert_refused(api.get("/maps/layers/incidents.geojson?category=a%00b"), status=(400, 404))
    assert_refused(api.get("/ogc/collections/incidents/items?bbox=1%00,2,3,4"), status=(400,))
    assert counts() == before


LISTS = [
    "/maps/layers/incidents.geojson",
    "/ogc/collections/incidents/items",
    "/maps/export/incidents.csv",
    "/maps/export/incidents.geojson",
    "/maps/export/incidents.gpkg",
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("offset", [str(2**63), str(2**63 - 1), str(2**64), "9" * 400, "-1", "1e3"])
def test_huge_offsets_are_a_400(operator_api: APIClient, path: str, offset: str) -> None:
    answer = operator_api.get(f"{path}?offset={offset}")
    assert_refused(answer)
    assert "offset" in answer.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/open311/v2/requests.json?service_request_id=" + "9" * 400,
        "/open311/v2/requests.json?service_request_id=99999999999999999999",
        "/open311/v2/requests/99999999999999999999.json",
        "/api/v1/incidents/99999999999999999999/",
        "/api/v1/photos/99999999999999999999/",
        "/api/v1/assignments/?longitude=" + "9" * 400 + "&latitude=39",
        "/maps/tiles/incidents/99999999999999999999/0/0.pbf",
        "/ogc/collections/incidents/items/99999999999999999999",
        "/ogc/collections/incidents/items?limit=" + "9" * 400,
        "/maps/layers/incidents.geojson?limit=99999999999999999999",
        "/maps/layers/incidents.geojson?bbox=" + ",".join(["9" * 400] * 4),
    ],
)
def test_huge_ids_and_numbers_in_reads_are_never_a_500(operator_api: APIClient, path: str) -> None:
    """A 4xx with a reason, or the plain answer for a number that names nothing: an empty list
    of service requests, OGC's limit clamped to its maximum (as the standard says)."""
    answer = operator_api.get(path)
    assert answer.status_code < 500, (path, answer.status_code, answer.content[:300])
    if answer.status_code == 200:
        assert "service_request_id" in path or "limit=" in path


@pytest.fixture
def operator_api(make_user: Callable[..., Any], grid: Any) -> APIClient:
    return client_for(make_user("operator", username="hostile-operator"))


# --- images -----------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_text_bomb(inflated: int = 200 * 1024 * 1024) -> bytes:
    """A 4x4 PNG with a zTXt chunk of ~200 KB that inflates to ``inflated`` bytes."""
    png = image_bytes("PNG", size=(4, 4))
    compressor = zlib.compressobj(9)
    block = b"\0" * (1 << 20)
    text = b"".join(compressor.compress(block) for _ in range(inflated >> 20)) + compressor.flush()
    chunk = _png_chunk(b"zTXt", b"Comment\0\0" + text)
    return png[:33] + chunk + png[33:]  # after the signature and IHDR


def test_png_whose_text_chunk_inflates_is_a_400(api: APIClient, grid: Any) -> None:
    body = report_body(location=json.dumps({"type": "Point", "coordinates": [117.0005, 39.0005]}))
    body["photos"] = [SimpleUploadedFile("bomb.png", png_with_text_bomb())]
    answer = api.post("/api/v1/reports/", body, format="multipart")
    assert_refused(answer)
    assert "photos" in answer.json()
    assert counts() == (0, 0, 0, 0)


# --- every URL pattern is listed above -----------------------------------------------------------

COVERED = {
    # writes (WRITES) and reads (LISTS, the huge-number reads)
    "field_api:token",
    "field_api:reports",
    "field_api:pings",
    "field_api:duty",
    "field_api:open311-requests",
    "field_api:open311-request",
    "field_api:incident",
    "field_api:incident-accept",
    "field_api:incident-arrive",
    "field_api:incident-resolve",
    "field_api:incident-hand-back",
    "field_api:incident-dispatch",
    "field_api:incident-close",
    "field_api:incident-cancel",
    "field_api:incident-priority",
    "field_api:incident-acknowledge",
    "field_api:assignments",
    "field_api:photo",
    "field_api:field-asset",
    "maps-layer-geojson",
    "maps-layer-tile",
    "maps-layer-export",
    "ogc-items",
    "ogc-item",
    # the wall's reads: tests/maps/test_wall.py (bad filters, huge ids)
    "wall-desk",
    "wall-incident",
}
# Endpoints that take no body and no number a client chooses (or only the session's CSRF form)
NO_CLIENT_NUMBERS = {
    "home",
    "login",  # the form: tests/command/test_lockout.py
    "healthz",
    "metrics",
    "field_api:token-session",
    "field_api:categories",
    "field_api:photo-thumbnail",  # the photo view's subclass: same parsing
    "field_api:me",
    "field_api:open311-services",
    "field_api:field-app",
    "field_api:field-sw",
    "field_api:field-manifest",
    "field_api:schema",
    "field_api:docs",
    "maps-control-room",  # a redirect to /control/
    "wall",
    "wall-state",
    "maps-police",  # a redirect to /police/
    "police",
    "police-camera-stream",  # an int path converter; 404 alike for missing and forbidden ids
    "field_api:feature",  # ids that are not whole numbers are 404 (tests/command/test_privacy.py)
    "field_api:feature-unmask",
    "maps-print",
    "ogc-landing",
    "ogc-api",
    "ogc-conformance",
    "ogc-collections",
    "ogc-collection",
}


def _names(patterns: list[Any], namespace: str = "") -> set[str]:
    names: set[str] = set()
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name in {"admin"} or str(entry.pattern).startswith(("accounts/", "i18n/", "admin/")):
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= _names(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name and not str(entry.pattern).startswith("admin/"):
            names.add(namespace + entry.name)
    return names


def test_every_endpoint_is_covered() -> None:
    from tests.field_api.test_hostile_input_new import ENDPOINTS

    names = _names(get_resolver().url_patterns)
    missing = names - COVERED - NO_CLIENT_NUMBERS - set(ENDPOINTS)
    assert missing == set(), "add the new endpoint's hostile cases to this file or test_hostile_input_new.py"


def test_png_text_bomb_is_what_it_says() -> None:
    data = png_with_text_bomb(inflated=8 << 20)
    assert len(data) < 100_000
    with Image.open(io.BytesIO(image_bytes("PNG", size=(4, 4)))) as plain:
        assert plain.size == (4, 4)
    assert b"zTXt" in data
