"""Vector tiles: ST_AsMVT per viewer, ETag/304, a cache the event log invalidates, counts below
the aggregation zoom."""

from __future__ import annotations

from collections.abc import Callable

import mapbox_vector_tile
import pytest
from django.contrib.gis.geos import Point
from django.test import Client

from command.layers import LAYERS
from command.models import PersonalDataAccess
from command.services.places import camera_save
from maps.models import TileCache
from tests.maps.conftest import HOT, Village, tile_of

pytestmark = pytest.mark.django_db
SENSITIVE = {f for layer in LAYERS.values() for f in layer.sensitive_fields}


def tile(client: Client, layer: str, z: int, lon: float = 117.0005, lat: float = 39.0005, **headers: str):
    x, y = tile_of(lon, lat, z)
    return client.get(f"/maps/tiles/{layer}/{z}/{x}/{y}.pbf", headers=headers)


def decode(response) -> dict:
    return mapbox_vector_tile.decode(response.content) if response.content else {}


def test_police_tiles_hold_cameras_incidents_hotspots_and_no_personal_data(
    village: Village, login: Callable, settings
) -> None:
    # given
    settings.HOTSPOT_RADIUS_M = 30
    police = login("police")
    # when
    layers = {name: decode(tile(police, name, 17)) for name in ("cameras", "incidents", "hotspots", "camera_cones")}
    refused = {name: tile(police, name, 17).status_code for name in ("households", "reports")}
    # then
    assert refused == {"households": 404, "reports": 404}
    assert {f["properties"]["code"] for f in layers["cameras"]["cameras"]["features"]} == {"C1", "C2"}
    assert len(layers["incidents"]["incidents"]["features"]) >= 6
    assert [f["properties"]["count"] for f in layers["hotspots"]["hotspots"]["features"]] == [6]
    for decoded in layers.values():
        for layer in decoded.values():
            for feature in layer["features"]:
                assert not SENSITIVE & set(feature["properties"])


def test_grid_worker_household_tile_has_personal_data_masked(village: Village, login: Callable) -> None:
    # given
    worker = login("grid_worker")
    # when
    response = tile(worker, "households", 17, 117.0003, 39.0003)
    # then
    assert response.status_code == 200
    features = decode(response)["households"]["features"]
    assert {f["properties"]["head_name"] for f in features} >= {"张*", "李*"}
    assert next(f for f in features if f["properties"]["head_name"] == "张*")["properties"]["vulnerable"] == "***"
    assert response["X-Tile-Cache"] == "miss"  # masked tiles are never cached
    assert not PersonalDataAccess.objects.exists()


def test_anonymous_gets_no_tile(village: Village) -> None:
    assert {tile(Client(), name, 16).status_code for name in LAYERS} == {401}


def test_etag_304_and_invalidation_by_the_event_log(village: Village, login: Callable) -> None:
    # given a cached camera tile
    client = login("police")
    first = tile(client, "cameras", 17)
    assert first["X-Tile-Cache"] == "miss"
    etag = first["ETag"]
    # when asked again, and revalidated
    second = tile(client, "cameras", 17)
    revalidated = tile(client, "cameras", 17, If_None_Match=etag)
    # then
    assert second["X-Tile-Cache"] == "hit" and second.content == first.content
    assert revalidated.status_code == 304 and revalidated.content == b""
    # when a camera event is logged (a camera far away), the tile is rebuilt ...
    camera_save(code="C9", name="远处", location=Point(117.5, 39.5, srid=4326), heading=0, fov=90, range_m=20)
    rebuilt = tile(client, "cameras", 17)
    assert rebuilt.status_code == 200 and rebuilt["X-Tile-Cache"] == "miss"
    # ... to the same content, so the client's copy is still good
    assert rebuilt["ETag"] == etag
    assert tile(client, "cameras", 17, If_None_Match=etag).status_code == 304
    # when a camera in the tile changes, the tile changes
    camera_save(code="C1", name="路口1", location=Point(117.0006, 39.0005, srid=4326), heading=90, fov=60, range_m=40)
    changed = tile(client, "cameras", 17, If_None_Match=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_unrelated_events_keep_the_cache(village: Village, login: Callable, reference) -> None:
    # given
    client = login("police")
    tile(client, "cameras", 17)
    # when an incident event (another layer) is logged
    import uuid

    from command.services.reports import report_submit

    report_submit(
        reporter_id=None, client_id=uuid.uuid4(), category=reference["other"], location=Point(*HOT, srid=4326)
    )
    # then
    assert tile(client, "cameras", 17)["X-Tile-Cache"] == "hit"
    assert tile(client, "incidents", 17)["X-Tile-Cache"] == "miss"


def test_points_are_aggregated_below_the_raw_zoom(village: Village, login: Callable) -> None:
    client = login("operator")
    low = decode(tile(client, "incidents", 12, *HOT))["incidents"]["features"]
    high = decode(tile(client, "incidents", 16, *HOT))["incidents"]["features"]
    assert set(low[0]["properties"]) == {"count"}
    assert sum(f["properties"]["count"] for f in low) == 9
    assert all("status" in f["properties"] for f in high) and len(high) == 9


def test_operator_aggregated_report_tiles_are_cached_and_hold_no_personal_data(village: Village, login: Callable):
    client = login("operator")
    features = decode(tile(client, "reports", 12, 117.0016, 39.0004))["reports"]["features"]
    assert [f["properties"] for f in features] == [{"count": 1}]
    assert TileCache.objects.filter(layer="reports").count() == 1


@pytest.mark.parametrize("path", ["cameras/23/0/0", "cameras/2/4/0", "cameras/2/0/4", "cameras/-1/0/0"])
def test_bad_tile_address(village: Village, login: Callable, path: str) -> None:
    response = login("operator").get(f"/maps/tiles/{path}.pbf")
    assert response.status_code in {400, 404}
    if response.status_code == 400:
        assert response.json()["description"]


def test_polygons_are_clipped_to_the_tile(village: Village, login: Callable) -> None:
    client = login("operator")
    features = decode(tile(client, "cells", 18, 117.0005, 39.0005))["cells"]["features"]
    assert {f["properties"]["code"] for f in features} >= {"A-01"}
    for feature in features:
        coords = feature["geometry"]["coordinates"]
        flat = [c for ring in coords for c in ring] if feature["geometry"]["type"] == "Polygon" else []
        assert all(-64 <= x <= 4096 + 64 and -64 <= y <= 4096 + 64 for x, y in flat)


def test_a_dense_tile_holds_counts_even_at_a_raw_zoom(village: Village, login: Callable, monkeypatch) -> None:
    # given a limit below the nine incidents of the village
    import command.layer_queries

    monkeypatch.setattr(command.layer_queries, "MAX_RAW_POINTS", 5)
    # when
    features = decode(tile(login("operator"), "incidents", 16, *HOT))["incidents"]["features"]
    # then
    assert all(set(f["properties"]) == {"count"} for f in features)
    assert sum(f["properties"]["count"] for f in features) == 9


def test_tilecache_clear_command(village: Village, login: Callable) -> None:
    from datetime import timedelta

    from django.core.management import CommandError, call_command
    from django.utils import timezone

    client = login("police")
    tile(client, "cameras", 17)
    tile(client, "cells", 17)
    TileCache.objects.filter(layer="cells").update(built_at=timezone.now() - timedelta(days=10))
    call_command("tilecache_clear", "--older-than-days", "7")
    assert list(TileCache.objects.values_list("layer", flat=True)) == ["cameras"]
    with pytest.raises(CommandError):
        call_command("tilecache_clear", "--older-than-days", "-1")
    call_command("tilecache_clear")
    assert not TileCache.objects.exists()


def test_gcj02_basemap_shifts_tiles_for_display_only(village: Village, login: Callable, settings) -> None:
    # given a GCJ-02 basemap: C1 is stored at WGS 84 117.0005, 39.0005
    from maps.gcj02 import wgs84_to_gcj02

    settings.BASEMAP_CRS = "gcj02"
    client = login("police")
    shifted = wgs84_to_gcj02(117.0005, 39.0005)
    # when
    at_gcj = decode(tile(client, "cameras", 17, *shifted)).get("cameras", {"features": []})["features"]
    at_wgs = decode(tile(client, "cameras", 17)).get("cameras", {"features": []})["features"]
    # then C1 is drawn where the GCJ-02 basemap has its street, ~500 m away from its stored place
    assert "C1" in {f["properties"]["code"] for f in at_gcj}
    assert "C1" not in {f["properties"]["code"] for f in at_wgs}
    assert village.cameras[0].location.x == 117.0005  # storage unchanged


def test_gcj02_tile_shift_matches_the_exact_shift(village: Village, login: Callable, settings) -> None:
    import math

    from command.layer_queries import tile_bounds_3857
    from maps.gcj02 import wgs84_to_gcj02

    settings.BASEMAP_CRS = "gcj02"
    lon, lat = wgs84_to_gcj02(117.0005, 39.0005)
    for z in (13, 16, 17, 19):
        x, y = tile_of(lon, lat, z)
        xmin, ymin, xmax, _ymax = tile_bounds_3857(z, x, y)
        size = xmax - xmin
        mx = math.radians(lon) * 6378137.0
        my = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0
        expected = ((mx - xmin) / size * 4096, (my - ymin) / size * 4096)
        response = login("police").get(f"/maps/tiles/cameras/{z}/{x}/{y}.pbf")
        features = decode(response).get("cameras", {"features": []})["features"]
        drawn = [f for f in features if f["properties"].get("code") == "C1"]
        assert drawn, z
        px, py = drawn[0]["geometry"]["coordinates"]
        # 4096 tile units = 256 screen pixels: one pixel is 16 units; the linearised shift is
        # exact to the tile grid's rounding
        assert abs(px - expected[0]) <= 1 and abs(py - expected[1]) <= 1, (z, px, py, expected)
