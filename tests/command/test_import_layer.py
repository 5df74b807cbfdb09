"""``manage.py import_layer`` on small GeoJSON and Shapefile files written by the tests."""

import json
import subprocess

import pytest
from django.core.management import CommandError, call_command

from command.models import Building, Event, GridCell


def _feature(ring, **properties):
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _write(path, features, crs=None):
    collection = {"type": "FeatureCollection", "features": features}
    if crs:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(collection, ensure_ascii=False))
    return path


@pytest.fixture
def cells_geojson(tmp_path):
    # two cells side by side, as in tests/conftest.py's grid
    return _write(
        tmp_path / "cells.geojson",
        [
            _feature(_box(117.000, 39.000, 117.001, 39.001), code="T-01", name="一号网格"),
            _feature(_box(117.001, 39.000, 117.002, 39.001), code="T-02", name="二号网格"),
        ],
    )


@pytest.mark.django_db
def test_import_cells_then_buildings_from_geojson(tmp_path, cells_geojson):
    # given
    buildings = _write(
        tmp_path / "buildings.geojson",
        [
            _feature(_box(117.0002, 39.0002, 117.0004, 39.0004), ADDR="幸福街1号", FLOORS=6),
            _feature(_box(117.0012, 39.0002, 117.0014, 39.0004), ADDR="幸福街2号", FLOORS=2),
        ],
    )
    # when
    call_command("import_layer", str(cells_geojson), layer="cells")
    call_command("import_layer", str(buildings), layer="buildings", map=["address=ADDR", "floors=FLOORS"])
    # then
    assert sorted(GridCell.objects.values_list("code", "name")) == [("T-01", "一号网格"), ("T-02", "二号网格")]
    assert dict(Building.objects.values_list("address", "grid_cell__code")) == {
        "幸福街1号": "T-01",
        "幸福街2号": "T-02",
    }
    assert Building.objects.get(address="幸福街1号").floors == 6
    assert Event.objects.filter(kind="layer.reloaded", layer="buildings").exists()


@pytest.mark.django_db
def test_import_buildings_from_a_shapefile(tmp_path, cells_geojson):
    # given: a Shapefile made from GeoJSON by GDAL's ogr2ogr
    source = _write(tmp_path / "b.geojson", [_feature(_box(117.0002, 39.0002, 117.0004, 39.0004), address="育才街9号")])
    shp = tmp_path / "buildings.shp"
    subprocess.run(
        ["ogr2ogr", "-f", "ESRI Shapefile", "-lco", "ENCODING=UTF-8", str(shp), str(source)],
        check=True,
        capture_output=True,
    )
    call_command("import_layer", str(cells_geojson), layer="cells")
    # when
    call_command("import_layer", str(shp), layer="buildings")
    # then
    building = Building.objects.get()
    assert building.address == "育才街9号"
    assert building.grid_cell.code == "T-01"


@pytest.mark.django_db
def test_wrong_geometry_type_is_refused(tmp_path):
    points = tmp_path / "points.geojson"
    points.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"address": "x"},
                        "geometry": {"type": "Point", "coordinates": [117, 39]},
                    }
                ],
            }
        )
    )
    with pytest.raises(CommandError, match="Point geometries; buildings need Polygon"):
        call_command("import_layer", str(points), layer="buildings")


@pytest.mark.django_db
def test_other_srid_is_refused_and_nothing_imported(tmp_path):
    mercator = _write(
        tmp_path / "mercator.geojson",
        [_feature(_box(13024380, 4721671, 13024480, 4721771), code="M-01", name="m")],
        crs="urn:ogc:def:crs:EPSG::3857",
    )
    with pytest.raises(CommandError, match=r"EPSG:3857.*only WGS 84"):
        call_command("import_layer", str(mercator), layer="cells")
    assert not GridCell.objects.exists()


@pytest.mark.django_db
def test_shapefile_reprojected_to_another_srid_is_refused(tmp_path):
    source = _write(tmp_path / "b.geojson", [_feature(_box(117.0002, 39.0002, 117.0004, 39.0004), address="x")])
    shp = tmp_path / "b3857.shp"
    subprocess.run(["ogr2ogr", "-t_srs", "EPSG:3857", str(shp), str(source)], check=True, capture_output=True)
    with pytest.raises(CommandError, match="only WGS 84"):
        call_command("import_layer", str(shp), layer="buildings")


@pytest.mark.django_db
def test_missing_attribute_names_what_the_file_has(tmp_path):
    no_address = _write(tmp_path / "n.geojson", [_feature(_box(117.0, 39.0, 117.001, 39.001), street="x")])
    with pytest.raises(CommandError, match=r"lacks address.*attributes are street"):
        call_command("import_layer", str(no_address), layer="buildings")


@pytest.mark.django_db
def test_one_invalid_polygon_imports_nothing(tmp_path):
    bowtie = [[117.0, 39.0], [117.001, 39.001], [117.001, 39.0], [117.0, 39.001], [117.0, 39.0]]
    mixed = _write(
        tmp_path / "mixed.geojson",
        [
            _feature(_box(117.0, 39.0, 117.001, 39.001), code="V-01", name="ok"),
            _feature(bowtie, code="V-02", name="bad"),
        ],
    )
    with pytest.raises(CommandError, match="invalid polygon"):
        call_command("import_layer", str(mixed), layer="cells")
    assert not GridCell.objects.exists()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_layer", str(tmp_path / "nope.geojson"), layer="cells")
