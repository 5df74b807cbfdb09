"""Reads that more than one app needs (spatial look-ups run in PostGIS, with GiST indexes).

The two spatial rules of the grid are written once, here, as SQL fragments over a point
expression ``{point}``: ``report_submit``, ``camera_save`` and the bulk loads all use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import QuerySet

if TYPE_CHECKING:
    from command.models import Camera

# The grid cell covering a point. A point on the shared edge of two cells belongs to the one
# with the lowest code (ST_Covers, not ST_Contains, so edges are never "outside the grid").
CELL_FOR_POINT_SQL = (
    "SELECT c.id FROM command_gridcell c WHERE c.level = 'cell' AND ST_Covers(c.geom, {point}) ORDER BY c.code LIMIT 1"
)

# The nearest building footprint within {metres} m of a point. The bbox pre-filter ``&&`` over
# {expand} degrees (at least {metres} m at the point's latitude) uses the GiST index; the
# geography distance is exact.
BUILDING_NEAR_POINT_SQL = (
    "SELECT b.id FROM command_building b "
    "WHERE b.footprint && ST_Expand({point}, {expand}) "
    "AND ST_DWithin(b.footprint::geography, ({point})::geography, {metres}) "
    "ORDER BY ST_Distance(b.footprint::geography, ({point})::geography), b.id LIMIT 1"
)


def grid_cell_for_point(point: Point) -> int | None:
    """The grid cell covering ``point`` (see CELL_FOR_POINT_SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(CELL_FOR_POINT_SQL.format(point="ST_SetSRID(ST_MakePoint(%s, %s), 4326)"), [point.x, point.y])
        row = cursor.fetchone()
    return int(row[0]) if row else None


def cameras_covering(location: Point) -> QuerySet[Camera]:
    """The cameras whose view cone covers ``location`` (its edge included), nearest first, of
    every status (a screen shows the status: an offline camera saw nothing). Uses the GiST
    index on the cones."""
    from django.contrib.gis.db.models.functions import Distance

    from command.models import Camera

    if location.srid is None:
        location = Point(location.x, location.y, srid=4326)
    return (
        Camera.objects.filter(view_cone__covers=location)
        .annotate(distance=Distance("location", location))
        .order_by("distance", "code")
    )
