"""Grid cells, roads, buildings and cameras: single edits and bulk loads."""

from __future__ import annotations

from django.contrib.gis.geos import GEOSGeometry, Point, Polygon
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import camera_feature, feature_of
from command.geometry import camera_view_cone, check_geometry
from command.models import Building, Camera, GridCell
from command.selectors import CELL_FOR_POINT_SQL, grid_cell_for_point

ASSIGN_BUILDING_CELLS_SQL = """
UPDATE command_building b SET grid_cell_id = (
    SELECT c.id FROM command_gridcell c
    WHERE c.level = 'cell' AND c.geom && b.footprint AND ST_Intersects(c.geom, b.footprint)
    ORDER BY ST_Area(ST_Intersection(c.geom, b.footprint)) DESC, c.code
    LIMIT 1)
"""


def buildings_assign_cells(*, building_ids: list[int] | None = None) -> int:
    """Derive each building's grid cell from its footprint: the cell holding the largest part
    of it (a footprint straddling an edge goes where most of it stands; ties to the lower code)."""
    with connection.cursor() as cursor:
        if building_ids is None:
            cursor.execute(ASSIGN_BUILDING_CELLS_SQL)
        else:
            cursor.execute(ASSIGN_BUILDING_CELLS_SQL + " WHERE b.id = ANY(%s)", [building_ids])
        return int(cursor.rowcount)


def _cells_rederive(area: GEOSGeometry) -> None:
    """Derive again the cells of the buildings and cameras in ``area`` (a cell's old and new
    extent): only they can have changed cell, so an edit stays cheap on a large district."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM command_building WHERE footprint && ST_GeomFromEWKB(%s)", [area.ewkb])
        buildings_assign_cells(building_ids=[row[0] for row in cursor.fetchall()])
        cursor.execute(
            "UPDATE command_camera t SET grid_cell_id = ("  # noqa: S608 - composed of constants
            + CELL_FOR_POINT_SQL.format(point="t.location")
            + ") WHERE t.location && ST_GeomFromEWKB(%s)",
            [area.ewkb],
        )


@transaction.atomic
def grid_cell_save(
    *,
    code: str,
    name: str,
    geom: Polygon,
    level: str = GridCell.Level.CELL,
    parent: GridCell | None = None,
    actor_id: int | None = None,
) -> GridCell:
    check_geometry(geom, expected="Polygon")
    if level not in GridCell.Level.values:
        raise ValidationError({"level": _("Unknown grid level %(level)s.") % {"level": level}})
    if parent is not None and parent.level != GridCell.Level.BIG:
        raise ValidationError({"parent": _("The parent of a grid cell must be a big grid.")})
    old = GridCell.objects.filter(code=code).values_list("geom", flat=True).first()
    cell, _created = GridCell.objects.update_or_create(
        code=code, defaults={"name": name, "geom": geom, "level": level, "parent": parent}
    )
    _cells_rederive(geom if old is None else geom.union(old))
    event_append(
        kind="layer.reloaded",
        layer="cells",
        object_id=cell.pk,
        actor_id=actor_id,
        payload={"id": str(cell.pk), "properties": {"cells": 1}},
    )
    return cell


@transaction.atomic
def building_save(
    *,
    footprint: Polygon,
    address: str,
    use: str = Building.Use.RESIDENTIAL,
    floors: int = 1,
    name: str = "",
    household_count: int = 0,
    building: Building | None = None,
    actor_id: int | None = None,
) -> Building:
    check_geometry(footprint, expected="Polygon")
    if use not in Building.Use.values:
        raise ValidationError({"use": _("Unknown building use %(use)s.") % {"use": use}})
    if not 0 < floors <= 200:
        raise ValidationError({"floors": _("Floors must be between 1 and 200.")})
    building = building or Building()
    building.footprint = footprint
    building.address = address
    building.use = use
    building.floors = floors
    building.name = name
    building.household_count = household_count
    building.save()
    buildings_assign_cells(building_ids=[building.pk])
    building.refresh_from_db(fields=["grid_cell"])
    event_append(
        kind="building.updated",
        layer="buildings",
        object_id=building.pk,
        actor_id=actor_id,
        payload=feature_of(building, "buildings"),  # the whole feature: screens redraw it
    )
    return building


@transaction.atomic
def camera_save(
    *,
    code: str,
    name: str,
    location: Point,
    heading: float,
    fov: float,
    range_m: float,
    status: str = Camera.Status.ONLINE,
    owner: str = "",
    stream_url: str = "",
    snapshot_url: str = "",
    actor_id: int | None = None,
) -> Camera:
    """Create or update a camera; its view cone and grid cell are derived here."""
    check_geometry(location, expected="Point")
    if not 0 <= heading < 360:
        raise ValidationError({"heading": _("Heading must be at least 0 and below 360 degrees.")})
    if not 0 < fov <= 360:
        raise ValidationError({"fov": _("Field of view must be above 0 and at most 360 degrees.")})
    if not 0 < range_m <= 2000:
        raise ValidationError({"range_m": _("Range must be above 0 and at most 2000 metres.")})
    if status not in Camera.Status.values:
        raise ValidationError({"status": _("Unknown camera status %(status)s.") % {"status": status}})
    camera, _created = Camera.objects.update_or_create(
        code=code,
        defaults={
            "name": name,
            "location": location,
            "heading": heading,
            "fov": fov,
            "range_m": range_m,
            "status": status,
            "owner": owner,
            "stream_url": stream_url,
            "snapshot_url": snapshot_url,
            "view_cone": camera_view_cone(location, heading=heading, fov=fov, range_m=range_m),
            "grid_cell_id": grid_cell_for_point(location),
        },
    )
    event_append(
        kind="camera.updated", layer="cameras", object_id=camera.pk, actor_id=actor_id, payload=camera_feature(camera)
    )
    return camera
