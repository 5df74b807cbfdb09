"""Geometry checks at the model boundary, grid-cell assignment and camera view cones."""

import math

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import translation

from command.geometry import camera_view_cone, check_lon_lat, geometry_from_geojson
from command.models import GridCell
from command.selectors import grid_cell_for_point
from command.services.places import building_save, camera_save, grid_cell_save


@pytest.fixture(autouse=True)
def _english():
    """The messages are checked in English (zh-Hans is the default language)."""
    with translation.override("en"):
        yield


def _poly(coords, srid=4326):
    return Polygon(coords, srid=srid)


# --- invalid geometries are refused with a clear message ------------------------------------


@pytest.mark.django_db
def test_self_intersecting_polygon_is_refused_with_the_reason():
    # given: a bow tie, its edges cross at (117.0005, 39.0005)
    bowtie = _poly(((117.000, 39.000), (117.001, 39.001), (117.001, 39.000), (117.000, 39.001), (117.000, 39.000)))
    # when / then
    with pytest.raises(ValidationError, match="Self-intersection"):
        grid_cell_save(code="X-01", name="bad", geom=bowtie)
    assert not GridCell.objects.filter(code="X-01").exists()


@pytest.mark.django_db
def test_srid_other_than_4326_is_refused():
    web_mercator = Polygon.from_bbox((13024380, 4721671, 13024480, 4721771))
    web_mercator.srid = 3857
    with pytest.raises(ValidationError, match="EPSG:4326"):
        building_save(footprint=web_mercator, address="x")


@pytest.mark.django_db
def test_coordinates_out_of_range_are_refused():
    with pytest.raises(ValidationError, match="Latitude"):
        building_save(footprint=Polygon.from_bbox((117.0, 95.0, 117.001, 95.001)), address="x")


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [(181, 39, "Longitude"), (117, -91, "Latitude"), ("nan", 39, "finite"), ("x", 1, "numbers")],
)
def test_lon_lat_checks(lon, lat, message):
    with pytest.raises(ValidationError, match=message):
        check_lon_lat(lon, lat)


def test_geojson_with_a_crs_member_is_refused():
    with pytest.raises(ValidationError, match="crs"):
        geometry_from_geojson(
            {"type": "Point", "coordinates": [117, 39], "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
            expected="Point",
        )


def test_geojson_of_the_wrong_type_is_refused():
    with pytest.raises(ValidationError, match="Expected a Point"):
        geometry_from_geojson({"type": "LineString", "coordinates": [[117, 39], [117.1, 39.1]]}, expected="Point")


@pytest.mark.django_db
def test_the_database_refuses_an_invalid_polygon_even_past_the_services():
    bowtie = _poly(((117.000, 39.000), (117.001, 39.001), (117.001, 39.000), (117.000, 39.001), (117.000, 39.000)))
    with pytest.raises(IntegrityError, match="gridcell_geom_valid"), transaction.atomic():
        GridCell.objects.create(code="X-02", name="bad", geom=bowtie)


# --- grid-cell assignment -------------------------------------------------------------------


@pytest.mark.django_db
def test_point_inside_on_edge_and_outside(grid):
    # inside A-01
    assert grid_cell_for_point(Point(117.0005, 39.0005, srid=4326)) == grid["A-01"].pk
    # inside A-02
    assert grid_cell_for_point(Point(117.0015, 39.0005, srid=4326)) == grid["A-02"].pk
    # on the shared edge lon=117.001: the lower code wins, never "outside"
    assert grid_cell_for_point(Point(117.001, 39.0005, srid=4326)) == grid["A-01"].pk
    # on the outer edge of A-02 (lon=117.002): still A-02
    assert grid_cell_for_point(Point(117.002, 39.0005, srid=4326)) == grid["A-02"].pk
    # just outside
    assert grid_cell_for_point(Point(117.0021, 39.0005, srid=4326)) is None


@pytest.mark.django_db
def test_building_cell_comes_from_its_footprint(grid):
    # given: wholly inside A-01
    inside = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    # a footprint across the edge, three quarters of it in A-02 (117.00095 .. 117.00115)
    straddling = building_save(footprint=Polygon.from_bbox((117.00095, 39.0002, 117.00115, 39.0004)), address="2号")
    # a footprint touching A-02 only along its outer edge, the rest outside
    outside = building_save(footprint=Polygon.from_bbox((117.0025, 39.0002, 117.0027, 39.0004)), address="3号")
    # then
    assert inside.grid_cell_id == grid["A-01"].pk
    assert straddling.grid_cell_id == grid["A-02"].pk
    assert outside.grid_cell_id is None


@pytest.mark.django_db
def test_moving_a_cell_boundary_reassigns_buildings(grid):
    building = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    # A-02 grows west over the building
    bigger = Polygon.from_bbox((117.0001, 39.000, 117.002, 39.001))
    bigger.srid = 4326
    # (A-01 shrinks to keep the grid a partition)
    smaller = Polygon.from_bbox((117.000, 39.000, 117.0001, 39.001))
    smaller.srid = 4326
    grid_cell_save(code="A-01", name="A-01", geom=smaller, parent=grid["A"])
    grid_cell_save(code="A-02", name="A-02", geom=bigger, parent=grid["A"])
    building.refresh_from_db()
    assert building.grid_cell_id == grid["A-02"].pk


@pytest.mark.django_db
def test_moving_a_cell_boundary_reassigns_cameras(grid):
    camera = camera_save(
        code="CAM-M", name="x", location=Point(117.0003, 39.0005, srid=4326), heading=0, fov=90, range_m=40
    )
    assert camera.grid_cell_id == grid["A-01"].pk
    # A-02 grows west over the camera, A-01 shrinks
    grid_cell_save(
        code="A-01",
        name="A-01",
        geom=_poly(((117.0, 39.0), (117.0001, 39.0), (117.0001, 39.001), (117.0, 39.001), (117.0, 39.0))),
        parent=grid["A"],
    )
    grid_cell_save(
        code="A-02",
        name="A-02",
        geom=_poly(((117.0001, 39.0), (117.002, 39.0), (117.002, 39.001), (117.0001, 39.001), (117.0001, 39.0))),
        parent=grid["A"],
    )
    camera.refresh_from_db()
    assert camera.grid_cell_id == grid["A-02"].pk


# --- camera view cones ----------------------------------------------------------------------


def _area_m2(polygon: Polygon) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Area(ST_GeomFromEWKT(%s)::geography)", [polygon.ewkt])
        return float(cursor.fetchone()[0])


def _offset(lon, lat, bearing_deg, metres):
    from command.geometry import metres_to_degrees

    dlon, dlat = metres_to_degrees(
        lat, metres * math.sin(math.radians(bearing_deg)), metres * math.cos(math.radians(bearing_deg))
    )
    return Point(lon + dlon, lat + dlat, srid=4326)


@pytest.mark.django_db
def test_view_cone_covers_what_the_camera_faces_and_not_behind():
    camera = Point(117.0005, 39.0005, srid=4326)
    cone = camera_view_cone(camera, heading=90, fov=60, range_m=80)
    assert cone.valid
    assert cone.contains(_offset(117.0005, 39.0005, 90, 40))  # straight ahead
    assert cone.contains(_offset(117.0005, 39.0005, 115, 70))  # inside the edge of the 60° fan
    assert not cone.contains(_offset(117.0005, 39.0005, 125, 40))  # outside the fan
    assert not cone.contains(_offset(117.0005, 39.0005, 90, 85))  # beyond range
    assert not cone.contains(_offset(117.0005, 39.0005, 270, 20))  # behind
    # its area is the sector's, πr²·fov/360, within 1 %
    expected = math.pi * 80**2 * 60 / 360
    assert _area_m2(cone) == pytest.approx(expected, rel=0.01)


@pytest.mark.django_db
def test_view_cone_across_north():
    camera = Point(117.0005, 39.0005, srid=4326)
    cone = camera_view_cone(camera, heading=350, fov=40, range_m=50)
    assert cone.contains(_offset(117.0005, 39.0005, 5, 30))
    assert cone.contains(_offset(117.0005, 39.0005, 335, 30))
    assert not cone.contains(_offset(117.0005, 39.0005, 20, 30))


@pytest.mark.django_db
def test_full_circle_camera():
    cone = camera_view_cone(Point(117.0, 39.0, srid=4326), heading=0, fov=360, range_m=30)
    assert _area_m2(cone) == pytest.approx(math.pi * 30**2, rel=0.01)


@pytest.mark.django_db
def test_camera_save_derives_cone_and_cell(grid):
    camera = camera_save(
        code="CAM-1", name="门口", location=Point(117.0005, 39.0005, srid=4326), heading=0, fov=90, range_m=40
    )
    assert camera.grid_cell_id == grid["A-01"].pk
    assert camera.view_cone is not None and camera.view_cone.contains(_offset(117.0005, 39.0005, 0, 20))


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [("heading", 360), ("fov", 0), ("range_m", 5000)])
def test_camera_out_of_range_values_are_refused(field, value):
    args = {"heading": 0.0, "fov": 60.0, "range_m": 50.0, field: value}
    with pytest.raises(ValidationError):
        camera_save(code="CAM-2", name="x", location=Point(117.0, 39.0, srid=4326), **args)


def test_messages_are_chinese_by_default():
    with pytest.raises(ValidationError, match="经度"), translation.override("zh-hans"):
        check_lon_lat(181, 39)
