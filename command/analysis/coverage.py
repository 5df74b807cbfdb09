"""Camera coverage: what each camera saw, and what no camera sees.

- ``cameras_covering(location)`` (command.selectors): the cameras whose view cone covers a point;
- ``camera_incident_counts``: per camera, the incidents of a period inside its view cone;
- ``road_coverage``: per main road, its length and the length no online camera sees (the
  ``coverage_gaps`` layer's SQL, plus the roads fully covered); the ``entrance_gaps`` layer holds
  the building entrances no online camera sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from command.layer_queries import FeatureQuery, layer_rows_sql
from command.layers import LAYERS, CoverageGapSource, LayerGrant

CAMERA_INCIDENTS_SQL = """
SELECT c.id, c.code, c.name, c.status, count(i.id)::int AS incidents
FROM command_camera c
LEFT JOIN command_incident i
  ON c.view_cone IS NOT NULL AND i.location && c.view_cone AND ST_Covers(c.view_cone, i.location)
 AND i.opened_at >= %(start)s AND i.opened_at < %(end)s
GROUP BY c.id, c.code, c.name, c.status
ORDER BY count(i.id) DESC, c.code
"""


@dataclass(frozen=True)
class CameraIncidents:
    id: int
    code: str
    name: str
    status: str
    incidents: int


def camera_incident_counts(*, start: datetime, end: datetime) -> list[CameraIncidents]:
    """Per camera (every status), the incidents opened in ``[start, end)`` inside its view cone, most first."""
    with connection.cursor() as cursor:
        cursor.execute(CAMERA_INCIDENTS_SQL, {"start": start, "end": end})
        return [CameraIncidents(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class RoadCoverage:
    id: int
    name: str
    road_class: str
    length_m: float
    uncovered_m: float

    @property
    def uncovered_share(self) -> float:
        return round(self.uncovered_m / self.length_m, 3) if self.length_m else 0.0


def road_coverage() -> list[RoadCoverage]:
    """Every road of the coverage-gap layer's classes, most uncovered first (covered ones: 0 m)."""
    layer = LAYERS["coverage_gaps"]
    source = layer.source
    assert isinstance(source, CoverageGapSource)
    grant = LayerGrant(layer, ("id", "uncovered_m"), False)
    sql, params = layer_rows_sql(grant, FeatureQuery(limit=None), geometry_sql="NULL")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        uncovered = {row[0]: float(row[3]) for row in cursor.fetchall()}
        cursor.execute(
            "SELECT id, name, road_class, round(ST_Length(geom::geography)::numeric, 1)::float8 FROM command_road "
            "WHERE road_class = ANY(%s) ORDER BY id",
            [list(source.road_classes)],
        )
        roads = [RoadCoverage(r[0], r[1], r[2], r[3], uncovered.get(r[0], 0.0)) for r in cursor.fetchall()]
    return sorted(roads, key=lambda r: (-r.uncovered_m, r.id))
