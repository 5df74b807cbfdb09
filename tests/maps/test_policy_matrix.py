"""One policy, every channel: the same answer from GeoJSON, tiles, OGC items and exports for
each role (the "Done when" of the map-layers issue, as one matrix)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import mapbox_vector_tile
import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from command.layers import LAYERS
from tests.maps.conftest import Village, tile_of

pytestmark = pytest.mark.django_db(transaction=True)  # exports read on a connection of their own
AREA = "116.999,38.999,117.003,39.002"
SENSITIVE = {f for layer in LAYERS.values() for f in layer.sensitive_fields}
# Residents, businesses and door-to-door campaigns: none of it for the police, in any channel.
REGISTRY_LAYERS = ("households", "persons", "businesses", "campaigns", "campaign_buildings", "campaign_targets")


def _body(response) -> bytes:
    if not response.streaming:
        return response.content

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def fetch(client: Client, channel: str, layer: str) -> tuple[int, list[set[str]]]:
    """Status, and the property names of each feature the channel handed out."""
    if channel == "geojson":
        response = client.get(f"/maps/layers/{layer}.geojson", {"bbox": AREA})
        parse = lambda b: [set(f["properties"]) for f in json.loads(b)["features"]]  # noqa: E731
    elif channel == "tile":
        x, y = tile_of(117.0005, 39.0005, 16)
        response = client.get(f"/maps/tiles/{layer}/16/{x}/{y}.pbf")

        def parse(b: bytes) -> list[set[str]]:
            decoded = mapbox_vector_tile.decode(b) if b else {}
            return [set(f["properties"]) for f in decoded.get(layer, {"features": []})["features"]]
    elif channel == "ogc":
        response = client.get(f"/ogc/collections/{layer}/items", {"bbox": AREA})
        parse = lambda b: [set(f["properties"]) for f in json.loads(b)["features"]]  # noqa: E731
    else:
        response = client.get(f"/maps/export/{layer}.csv", {"bbox": AREA})

        def parse(b: bytes) -> list[set[str]]:
            rows = list(csv.DictReader(io.StringIO(b.decode("utf-8-sig"))))
            return [{k for k, v in row.items() if k != "wkt"} for row in rows]

    if response.status_code != 200:
        return response.status_code, []
    return 200, parse(_body(response))


CHANNELS = ["geojson", "tile", "ogc", "export"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_police_gets_cameras_incidents_hotspots_and_no_personal_data(
    village: Village, login: Callable, settings, channel: str
) -> None:
    settings.HOTSPOT_RADIUS_M = 30
    police = login("police")
    for layer in ("cameras", "incidents", "hotspots"):
        status, features = fetch(police, channel, layer)
        assert status == 200 and features, (channel, layer)
        assert all(not SENSITIVE & props for props in features), (channel, layer)
    for layer in (*REGISTRY_LAYERS, "reports", "workers"):
        assert fetch(police, channel, layer)[0] == 404, (channel, layer)


@pytest.mark.parametrize("channel", CHANNELS)
def test_grid_worker_gets_households_with_personal_data(village: Village, login: Callable, channel: str) -> None:
    status, features = fetch(login("grid_worker"), channel, "households")
    assert status == 200 and features
    assert all({"head_name", "phone"} <= props for props in features)


@pytest.mark.parametrize("channel", CHANNELS)
def test_anonymous_gets_nothing(village: Village, channel: str) -> None:
    for layer in LAYERS:
        assert fetch(Client(), channel, layer)[0] == 401, (channel, layer)
