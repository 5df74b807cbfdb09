"""Exports (GeoJSON, CSV, GeoPackage, Shapefile) with the same field masking, and GDAL's OAPIF
driver reading the OGC API from a real Daphne. The streams read on a connection of their own,
so the data is committed (transactional_db)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.contrib.gis.gdal import DataSource
from django.test import Client

from command.models import PersonalDataAccess
from tests.maps.conftest import Village
from tests.support import DaphneServer

pytestmark = pytest.mark.django_db(transaction=True)
AREA = "116.999,38.999,117.003,39.002"


def body(response) -> bytes:
    if not response.streaming:
        return response.content
    if getattr(response, "is_async", False):  # GeoJSON/CSV stream from an async iterator

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return async_to_sync(collect)()
    return b"".join(response.streaming_content)


def test_geojson_and_csv_exports_are_masked_per_role(village: Village, login: Callable) -> None:
    # given
    police, worker = login("police"), login("grid_worker")
    # when
    cameras = police.get("/maps/export/cameras.geojson", {"bbox": AREA})
    households_police = police.get("/maps/export/households.csv", {"bbox": AREA})
    households_worker = worker.get("/maps/export/households.csv", {"bbox": AREA})
    households_unmasked = worker.get("/maps/export/households.csv", {"bbox": AREA, "purpose": "入户走访名单"})
    # then
    assert cameras.status_code == 200 and cameras["Content-Disposition"].endswith('cameras.geojson"')
    data = json.loads(body(cameras))
    assert data["type"] == "FeatureCollection" and {f["properties"]["code"] for f in data["features"]} == {"C1", "C2"}
    assert households_police.status_code == 404
    rows = list(csv.DictReader(io.StringIO(body(households_worker).decode("utf-8-sig"))))
    assert {r["head_name"] for r in rows} == {"张*", "李*", "王*"}
    assert rows[0]["wkt"].startswith("POLYGON")
    rows = list(csv.DictReader(io.StringIO(body(households_unmasked).decode("utf-8-sig"))))
    assert {r["head_name"] for r in rows} == {"张三", "李四", "王五"}
    log = PersonalDataAccess.objects.get(channel="export.csv", layer="households")
    assert log.purpose == "入户走访名单" and len(log.object_ids) == 3


def test_gpkg_and_shapefile_through_gdal(village: Village, login: Callable, tmp_path: Path) -> None:
    police = login("police")
    gpkg = police.get("/maps/export/incidents.gpkg", {"bbox": AREA})
    shp = police.get("/maps/export/cameras.shp", {"bbox": AREA})
    assert gpkg.status_code == shp.status_code == 200
    (tmp_path / "incidents.gpkg").write_bytes(body(gpkg))
    layer = DataSource(str(tmp_path / "incidents.gpkg"))[0]
    assert len(layer) == 9 and "status" in layer.fields
    with zipfile.ZipFile(io.BytesIO(body(shp))) as archive:
        archive.extractall(tmp_path / "shp")
    cameras = DataSource(str(tmp_path / "shp" / "cameras.shp"))[0]
    assert sorted(f.get("code") for f in cameras) == ["C1", "C2"]


def test_bad_export_requests(village: Village, login: Callable) -> None:
    client = login("operator")
    assert client.get("/maps/export/cameras.xlsx").status_code == 400
    assert client.get("/maps/export/cameras.csv", {"bbox": "1,2"}).status_code == 400
    assert Client().get("/maps/export/cameras.csv").status_code == 401


def test_gdal_oapif_driver_lists_and_reads_the_layers(village: Village, make_user: Callable) -> None:
    from tests.support import daphne_server

    make_user("police", username="officer-gdal", password="pw-for-tests-1")
    with daphne_server() as server:
        assert isinstance(server, DaphneServer)
        env = {**os.environ, "GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": "officer-gdal:pw-for-tests-1"}
        listing = subprocess.run(
            ["ogrinfo", "-ro", "-q", f"OAPIF:{server.url}/ogc/"], capture_output=True, text=True, env=env, timeout=60
        )
        assert listing.returncode == 0, listing.stderr
        assert "cameras" in listing.stdout and "incidents" in listing.stdout
        assert "households" not in listing.stdout
        read = subprocess.run(
            ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", f"OAPIF:{server.url}/ogc/", "incidents"],
            capture_output=True,
            text=True,
            env={**env, "OGR_WFS_PAGE_SIZE": "4"},
            timeout=60,
        )
        assert read.returncode == 0, read.stderr
        assert len(json.loads(read.stdout)["features"]) == 9


def test_csv_cells_cannot_run_as_spreadsheet_formulas(village: Village, login: Callable) -> None:
    # given a camera whose name looks like a formula
    from django.contrib.gis.geos import Point

    from command.services.places import camera_save

    camera_save(
        code="C3", name="=HYPERLINK(1)", location=Point(117.0007, 39.0007, srid=4326), heading=0, fov=90, range_m=20
    )
    # when
    rows = list(csv.DictReader(io.StringIO(body(login("police").get("/maps/export/cameras.csv")).decode("utf-8-sig"))))
    # then
    assert next(r for r in rows if r["code"] == "C3")["name"] == "'=HYPERLINK(1)"
    assert next(r for r in rows if r["code"] == "C1")["heading"] == "90.0"
