"""One policy, every channel, as one matrix: role × layer × channel (page, REST, GeoJSON, tile, OGC,
export, websocket subscribe, websocket replay, photo, Open311) asserts exactly the permitted cells.

``MATRIX`` below is written by hand on purpose (deriving it from command/roles.py would test
nothing): it enumerates the layer registry, so a layer added to command/layers.py without a
row here fails ``test_the_matrix_covers_every_layer_and_role``. What a role sees of a layer's
personal data (masked, or left out) and whether it may unmask it is ``PERSONAL``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import mapbox_vector_tile
import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client

from command.layer_queries import FeatureQuery, layer_features
from command.layers import LAYERS, Field, LayerGrant, TableSource
from command.masking import mask_value
from command.models import Event, PersonalDataAccess, Report, ReportPhoto, Road
from command.roles import ROLES
from command.services.accounts import api_token_issue
from command.services.records import record_save
from tests.maps.conftest import Village, tile_of
from tests.support import response_body

pytestmark = pytest.mark.django_db(transaction=True)  # exports read on a connection of their own

ROLE_ORDER = ("admin", "operator", "team_lead", "grid_worker", "police", "supervision_committee", "resident")
# layer -> one mark per role of ROLE_ORDER: "+" sees the layer (in its granted cells), "-" does not.
MATRIX = {
    "cells": "++++++-",
    "roads": "++++++-",
    "buildings": "++++++-",
    "households": "++++---",
    "persons": "++++---",
    "businesses": "++++---",
    "campaigns": "++++---",
    "campaign_buildings": "++++---",
    "campaign_targets": "++++---",
    "cameras": "+++++--",
    "camera_cones": "+++++--",
    "incidents": "++++++-",
    "reports": "++++-+-",
    "workers": "+++++--",
    "alarm_devices": "+++----",
    "requests": "+++----",
    "hotspots": "++++++-",
    "hexbins": "+++++--",
    "coverage_gaps": "+++-+--",
    "entrance_gaps": "+++-+--",
}
# role -> (how it gets the personal data of a layer it sees, may it unmask one record with a purpose)
PERSONAL = {
    "admin": ("masked", True),
    "operator": ("masked", True),
    "team_lead": ("masked", True),
    "grid_worker": ("masked", True),
    "police": ("omitted", False),
    "supervision_committee": ("masked", False),
    "resident": ("omitted", False),
}
AREA = "116.999,38.999,117.003,39.002"
VILLAGE_CELLS = ["A-01", "A-02"]  # grid workers and team leads work these (their grants' cells)


def sees(role: str, layer: str) -> bool:
    return MATRIX[layer][ROLE_ORDER.index(role)] == "+"


def test_the_matrix_covers_every_layer_and_role() -> None:
    assert set(MATRIX) == set(LAYERS), "a layer without a policy row: add it to MATRIX (and to command/roles.py)"
    assert set(ROLE_ORDER) == set(ROLES) == set(PERSONAL)
    assert all(len(marks) == len(ROLE_ORDER) and set(marks) <= {"+", "-"} for marks in MATRIX.values())


# --- helpers --------------------------------------------------------------------------------


def _field(layer: str, name: str) -> Field:
    return next(f for f in LAYERS[layer].fields if f.name == name)


def _raw(layer: str) -> dict[str, dict[str, Any]]:
    """Every feature of ``layer`` in the area with every field unmasked, by id (the truth)."""
    grant = LayerGrant(LAYERS[layer], LAYERS[layer].all_fields, True)
    page = layer_features(grant, FeatureQuery(bbox=(116.999, 38.999, 117.003, 39.002), limit=None))
    return {str(f["id"]): f["properties"] for f in json.loads(page.geojson)["features"]}


def _check_personal(role: str, layer: str, features: list[tuple[str | None, dict[str, Any]]], raw: dict) -> None:
    """Personal data in what a channel handed out: masked or left out, as PERSONAL says."""
    mode, _unmask = PERSONAL[role]
    for feature_id, props in features:
        for name in LAYERS[layer].sensitive_fields:
            if mode == "omitted":
                assert name not in props, (role, layer, name)
            elif name in props and feature_id is not None and feature_id in raw:
                expected = mask_value(raw[feature_id][name], _field(layer, name).masked_as)
                if isinstance(props[name], str) and isinstance(expected, list):  # a CSV cell
                    expected = ",".join(expected)
                assert props[name] == expected, (role, layer, name, props[name])


def _geojson_features(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    return [(str(f.get("id")), f["properties"]) for f in json.loads(body)["features"]]


def _http_channels(client: Client, layer: str, feature_id: str | None) -> dict[str, tuple[int, list]]:
    """status and (id, properties) of each feature of the layer, per HTTP channel."""
    out: dict[str, tuple[int, list]] = {}
    response = client.get(f"/maps/layers/{layer}.geojson", {"bbox": AREA})
    out["geojson"] = (
        response.status_code,
        _geojson_features(response_body(response)) if response.status_code == 200 else [],
    )
    response = client.get(f"/ogc/collections/{layer}/items", {"bbox": AREA})
    out["ogc"] = (
        response.status_code,
        _geojson_features(response_body(response)) if response.status_code == 200 else [],
    )
    response = client.get(f"/maps/export/{layer}.geojson", {"bbox": AREA})
    out["export"] = (
        response.status_code,
        _geojson_features(response_body(response)) if response.status_code == 200 else [],
    )
    response = client.get(f"/maps/export/{layer}.csv", {"bbox": AREA})
    rows = (
        list(csv.DictReader(io.StringIO(response_body(response).decode("utf-8-sig"))))
        if response.status_code == 200
        else []
    )
    out["export.csv"] = (response.status_code, [(r.get("id"), {k: v for k, v in r.items() if v != ""}) for r in rows])
    x, y = tile_of(117.0005, 39.0005, 16)
    response = client.get(f"/maps/tiles/{layer}/16/{x}/{y}.pbf")
    decoded = (
        mapbox_vector_tile.decode(response_body(response))
        if response.status_code == 200 and response_body(response)
        else {}
    )
    out["tile"] = (
        response.status_code,
        [(None, f["properties"]) for f in decoded.get(layer, {"features": []})["features"]],
    )
    response = client.get(f"/api/v1/layers/{layer}/features/{feature_id or 1}/")
    out["rest"] = (
        response.status_code,
        [(str(response.json()["id"]), response.json()["properties"])] if response.status_code == 200 else [],
    )
    return out


# --- the matrix -----------------------------------------------------------------------------


@pytest.fixture
def users(village: Village, make_user: Callable[..., User]) -> dict[str, User]:
    return {
        role: make_user(role, cells=VILLAGE_CELLS if ROLES[role].area == "own_cells" else None) for role in ROLE_ORDER
    }


def test_every_role_gets_exactly_its_cells_of_the_matrix_on_every_http_channel(
    village: Village, users: dict[str, User], settings
) -> None:
    # given a village with a feature of every layer in the area (a road too) and a report photo
    settings.HOTSPOT_RADIUS_M = 30
    from django.contrib.gis.geos import LineString

    road = Road(name="幸福路", road_class="main", geom=LineString((117.0001, 39.0005), (117.0019, 39.0005), srid=4326))
    record_save(obj=road, actor_id=None)
    raw = {layer: _raw(layer) for layer in LAYERS}
    report = Report.objects.get()
    photo = ReportPhoto(report=report, sha256="0" * 64, width=1, height=1)
    photo.image.save("p.jpg", ContentFile(b"jpeg"), save=False)
    photo.thumbnail.save("t.jpg", ContentFile(b"jpeg"), save=False)
    photo.save()
    for role in ROLE_ORDER:
        client = Client()
        client.force_login(users[role])
        for layer in LAYERS:
            # a record to ask REST for: one this role sees in its cells, else any
            own = client.get(f"/maps/layers/{layer}.geojson", {"bbox": AREA})
            seen = [str(f["id"]) for f in own.json()["features"]] if own.status_code == 200 else []
            some_id = next(iter(seen or raw[layer]), None)
            # when every HTTP channel is asked for the layer
            channels = _http_channels(client, layer, some_id)
            # then each answers 200 exactly where the matrix says, 404 alike elsewhere
            for channel, (status, features) in channels.items():
                if channel == "rest" and (some_id is None or not isinstance(LAYERS[layer].source, TableSource)):
                    continue  # no record to ask for (a computed layer's features are not records)
                assert status == (200 if sees(role, layer) else 404), (role, layer, channel, status)
                _check_personal(role, layer, features, raw[layer])
            if sees(role, layer) and raw[layer]:
                assert channels["geojson"][1], (role, layer, "features in the area")
        # the page draws exactly the layers it sees, and no personal data in the clear
        html = client.get("/maps/print/").content.decode()
        for layer in LAYERS.values():
            if layer.page != "none":  # its name in the legend and the layer control
                title = f"{layer.title_zh} {layer.title_en}"
                drawn = title in html or json.dumps(title)[1:-1] in html
                assert drawn == sees(role, layer.name), (role, layer.name, "page")
        for value in ("张三", "13800000001", "垃圾堆放"):
            assert value not in html and json.dumps(value)[1:-1] not in html, (role, value)
        # a photo (the reports layer's personal data): only with the layer and the unmask permission
        expected = 200 if sees(role, "reports") and PERSONAL[role][1] else 404
        assert client.get(f"/api/v1/photos/{photo.pk}/").status_code == expected, (role, "photo")
        # Open311: the village's request for roles that see reports, its description masked
        requests = client.get("/open311/v2/requests.json", {"api_key": api_token_issue(user=users[role])}).json()
        ids = {r["service_request_id"] for r in requests}
        assert (str(report.pk) in ids) == sees(role, "reports"), (role, "open311")
        assert all(r["description"] in ("", "***") for r in requests), (role, "open311 description")
    # nothing was unmasked, so nothing was logged (but the photos, each fetch an unmasked view)
    assert set(PersonalDataAccess.objects.values_list("channel", flat=True)) <= {"photo"}


def test_every_role_subscribes_and_replays_exactly_its_layers(
    village: Village, users: dict[str, User], live_daphne
) -> None:
    from tests.realtime.conftest import user_token
    from tests.realtime.live_client import LiveClient

    logged = set(Event.objects.values_list("layer", flat=True))
    for role in ROLE_ORDER:
        token = user_token(users[role])
        # websocket subscribe: what it asked for, granted and denied as the matrix says
        live = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=token)
        subscribed = live.subscribe(list(LAYERS))
        assert set(subscribed["layers"]) == {layer for layer in LAYERS if sees(role, layer)}, role
        assert set(subscribed["denied"]) == {layer for layer in LAYERS if not sees(role, layer)}, role
        live.close()
        # websocket replay from the start of the log: events of exactly its layers, redacted
        replay = LiveClient(f"{live_daphne.ws_url}/ws/live/?since=0", token=token)
        replay.subscribe(list(LAYERS))
        expected = {layer for layer in logged if layer in LAYERS and sees(role, layer)}
        assert replay.wait_for(lambda c, e=expected: {ev["layer"] for ev in c.events} >= e, timeout=10), role
        for event in replay.events:
            assert sees(role, event["layer"]), (role, event["layer"])
            properties = event["payload"]["properties"]
            for name in LAYERS[event["layer"]].sensitive_fields:
                if PERSONAL[role][0] == "omitted":
                    assert name not in properties, (role, event["layer"], name)
                else:
                    value = properties.get(name)
                    assert value == mask_value(value, _field(event["layer"], name).masked_as), (role, name, value)
        replay.close()
