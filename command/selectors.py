"""Reads that more than one app needs (spatial look-ups run in PostGIS, with GiST indexes)."""

from __future__ import annotations

from django.contrib.gis.geos import Point
from django.db import connection

from command.geometry import metres_to_degrees


def grid_cell_for_point(point: Point) -> int | None:
    """The grid cell covering ``point``. A point on the shared edge of two cells belongs to
    the one with the lowest code (ST_Covers, not ST_Contains, so edges are never "outside")."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM command_gridcell WHERE level = 'cell' "
            "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1",
            [point.x, point.y],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def cell_and_building_for_point(point: Point, *, building_within_m: float = 30.0) -> tuple[int | None, int | None]:
    """Grid cell covering ``point`` and the nearest building footprint within ``building_within_m``
    metres, in one round trip. The bbox pre-filter (``&&``) uses the GiST index; the geography
    distance is exact."""
    dx, dy = metres_to_degrees(point.y, building_within_m * 1.5, building_within_m * 1.5)
    expand = max(dx, dy)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g)
            SELECT
              (SELECT c.id FROM command_gridcell c, p WHERE c.level = 'cell' AND ST_Covers(c.geom, p.g)
                ORDER BY c.code LIMIT 1),
              (SELECT b.id FROM command_building b, p
                WHERE b.footprint && ST_Expand(p.g, %s)
                  AND ST_DWithin(b.footprint::geography, p.g::geography, %s)
                ORDER BY ST_Distance(b.footprint::geography, p.g::geography), b.id LIMIT 1)
            """,
            [point.x, point.y, expand, building_within_m],
        )
        row = cursor.fetchone()
    assert row is not None
    return (int(row[0]) if row[0] is not None else None, int(row[1]) if row[1] is not None else None)
