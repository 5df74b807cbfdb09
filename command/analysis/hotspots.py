"""Hotspots as rows: the hotspots layer's SQL (command.layer_queries.hotspot_relation, derived
from the layer declaration) run for a window, read by name. The layer, the refresh service
(command.services.hotspots), the period report and bench/analysis.py all use this one query."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from django.db import connection

from command.layer_queries import FeatureQuery, layer_rows_sql
from command.layers import LAYERS, LayerGrant


@dataclass(frozen=True)
class Hotspot:
    id: int
    category_id: int
    count: int
    previous_count: int
    trend: str  # new, growing, stable, shrinking
    windows: int
    recurrent: bool
    first_at: datetime
    last_at: datetime
    window_start: datetime
    window_end: datetime
    grid_cell_id: int | None
    geometry_json: str = field(repr=False)  # the padded hull as GeoJSON text, as PostGIS wrote it

    @cached_property
    def geojson(self) -> dict[str, Any]:
        """The padded hull, parsed on first use (most callers read counts and trends only: the
        layer's 90-day computation spent 15 ms of its ~400 parsing 130 hulls nobody read)."""
        return dict(json.loads(self.geometry_json))

    def feature(self) -> dict[str, Any]:
        """As a feature of the hotspots layer (the ``hotspot.raised`` event's payload)."""
        properties = {
            name: (value.isoformat() if isinstance(value, datetime) else value)
            for name, value in self.__dict__.items()
            if name in LAYERS["hotspots"].all_fields
        }
        return {"id": str(self.id), "geometry": self.geojson, "properties": properties}


def hotspots_compute(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    categories: tuple[str, ...] = (),
    bbox: tuple[float, float, float, float] | None = None,
) -> list[Hotspot]:
    """The hotspots of the window ``[start, end)`` (defaults: the layer's, the last
    HOTSPOT_WINDOW_DAYS), biggest first."""
    layer = LAYERS["hotspots"]
    grant = LayerGrant(layer, layer.all_fields, False)
    query = FeatureQuery(bbox=bbox, start=start, end=end, categories=categories, limit=None)
    sql, params = layer_rows_sql(grant, query, geometry_sql="ST_AsGeoJSON(t.geom, 7)")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    out = [
        Hotspot(
            **{k: v for k, v in row.items() if not k.startswith("_")},
            geometry_json=row["_geom"],
        )
        for row in rows
    ]
    return sorted(out, key=lambda h: (-h.count, h.id))
