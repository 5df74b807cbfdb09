# ruff: noqa: S608  -- SQL is assembled from the fixed registry below; request values are bound parameters.
"""Read-side SQL for the map layers: GeoJSON, vector tiles, OGC items and exports are built in
PostGIS (``ST_AsGeoJSON`` + ``json_agg``, ``ST_AsMVT``), never by serializing model instances.

Every builder takes a ``LayerGrant`` from ``command.layers.layers_for_user`` and selects only the
fields of that grant: a field the viewer may not see never leaves the database.

SQL is assembled from the fixed registry below (table names, column expressions); every value
that comes from a request goes in as a bound parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from psycopg.adapt import Buffer, Loader

from command.layers import LayerGrant

# How a column is rendered in a vector tile (MVT knows numbers, strings and booleans only).
NUM, TEXT, BOOL, TIME, ARRAY = "num", "text", "bool", "time", "array"


@dataclass(frozen=True)
class LayerSource:
    """Where a layer's rows come from. ``from_sql`` may hold ``{inner_where}`` (hotspots filter
    the incidents they cluster); column expressions refer to the alias ``t``."""

    from_sql: str
    geom_sql: str
    id_sql: str = "t.id"
    columns: tuple[tuple[str, str, str], ...] = ()  # (field, SQL expression, kind)
    where_sql: str = "TRUE"
    time_sql: str | None = None
    category_sql: str | None = None  # expression holding the category id
    status_sql: str | None = None
    aggregate_below_zoom: int = 0  # tiles below this zoom hold counts (at centroids), not features
    depends_on: tuple[str, ...] = ()  # event-log layers whose events change this layer
    extra: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> tuple[str, str]:
        for field_name, expr, kind in self.columns:
            if field_name == name:
                return expr, kind
        raise KeyError(name)


def _cols(*specs: str) -> tuple[tuple[str, str, str], ...]:
    """``"name:kind"`` specs of plain columns of ``t``."""
    out = []
    for spec in specs:
        name, _sep, kind = spec.partition(":")
        out.append((name, f"t.{name}", kind or NUM))
    return tuple(out)


HOTSPOT_SQL = """(
  SELECT c.cluster AS id, c.cluster, count(*) AS count,
         mode() WITHIN GROUP (ORDER BY c.category_id) AS category_id,
         ST_Buffer(ST_ConvexHull(ST_Collect(c.location))::geography, %(hotspot_pad_m)s)::geometry AS geom,
         max(c.opened_at) AS opened_at
  FROM (
    SELECT i.location, i.category_id, i.opened_at,
           ST_ClusterDBSCAN(ST_Transform(i.location, 3857), eps := %(hotspot_eps)s,
                            minpoints := %(hotspot_min)s) OVER () AS cluster
    FROM command_incident i
    WHERE {inner_where}
  ) c
  WHERE c.cluster IS NOT NULL
  GROUP BY c.cluster
) t"""

SOURCES: dict[str, LayerSource] = {
    "cells": LayerSource(
        "command_gridcell t",
        "t.geom",
        columns=_cols("id", "code:text", "name:text", "level:text", "parent_id"),
        depends_on=("cells",),
    ),
    "roads": LayerSource(
        "command_road t", "t.geom", columns=_cols("id", "name:text", "road_class:text"), depends_on=("roads",)
    ),
    "buildings": LayerSource(
        "command_building t",
        "t.footprint",
        columns=_cols("id", "name:text", "address:text", "use:text", "floors", "household_count", "grid_cell_id"),
        aggregate_below_zoom=15,  # 50,000 footprints made 0.75 MB tiles at z12; counts below z15
        depends_on=("buildings", "cells"),
    ),
    "households": LayerSource(
        "command_household t JOIN command_building b ON b.id = t.building_id",
        "b.footprint",
        columns=(
            *_cols("id", "building_id", "unit:text", "resident_type:text", "members", "head_name:text", "phone:text"),
            ("vulnerable", "t.vulnerable", ARRAY),
        ),
        aggregate_below_zoom=15,  # counts below z15: no personal data, cacheable
        depends_on=("households", "buildings"),
    ),
    "cameras": LayerSource(
        "command_camera t",
        "t.location",
        columns=_cols(
            "id", "code:text", "name:text", "heading", "fov", "range_m", "status:text", "owner:text", "grid_cell_id"
        ),
        status_sql="t.status",
        aggregate_below_zoom=13,
        depends_on=("cameras",),
    ),
    "camera_cones": LayerSource(
        "command_camera t",
        "t.view_cone",
        columns=_cols("id", "code:text", "heading", "fov", "range_m", "status:text"),
        where_sql="t.view_cone IS NOT NULL",
        status_sql="t.status",
        depends_on=("cameras",),
    ),
    "incidents": LayerSource(
        "command_incident t",
        "t.location",
        columns=_cols(
            "id",
            "category_id",
            "status:text",
            "priority",
            "grid_cell_id",
            "outside_grid:bool",
            "building_id",
            "team_id",
            "worker_id",
            "report_count",
            "opened_at:time",
            "due_at:time",
            "updated_at:time",
        ),
        time_sql="t.opened_at",
        category_sql="t.category_id",
        status_sql="t.status",
        aggregate_below_zoom=15,
        depends_on=("incidents",),
    ),
    "reports": LayerSource(
        "command_report t",
        "t.location",
        columns=(
            *_cols("id", "category_id", "incident_id", "grid_cell_id", "outside_grid:bool", "building_id"),
            *_cols("received_at:time", "source:text", "reporter_id", "note:text"),
            ("client_id", "t.client_id::text", TEXT),
        ),
        time_sql="t.received_at",
        category_sql="t.category_id",
        aggregate_below_zoom=15,
        depends_on=("reports",),
    ),
    "workers": LayerSource(
        "command_worker t",
        "t.last_position",
        columns=_cols("id", "team_id", "on_duty:bool", "last_position_at:time", "display_name:text", "phone:text"),
        where_sql="t.on_duty AND t.last_position IS NOT NULL",
        time_sql="t.last_position_at",
        depends_on=("workers",),
    ),
    "hotspots": LayerSource(
        HOTSPOT_SQL,
        "t.geom",
        columns=_cols("cluster", "count", "category_id"),
        time_sql=None,
        depends_on=("incidents",),
        extra={"inner_time_sql": "i.opened_at", "inner_geom_sql": "i.location", "inner_category_sql": "i.category_id"},
    ),
}

OPEN_INCIDENT_STATUSES = ("new", "dispatched", "accepted", "on_scene")


@dataclass(frozen=True)
class FeatureQuery:
    """What a client asked for; every value here is validated before it gets here (maps/params.py)."""

    bbox: tuple[float, float, float, float] | None = None  # lon/lat, WGS 84
    start: datetime | None = None
    end: datetime | None = None
    categories: tuple[str, ...] = ()  # category codes
    statuses: tuple[str, ...] = ()
    limit: int | None = 1000
    offset: int = 0
    feature_id: int | None = None


def layer_source(name: str) -> LayerSource:
    return SOURCES[name]


def _where(source: LayerSource, query: FeatureQuery, params: dict[str, Any], *, hotspot_inner: bool) -> list[str]:
    """The WHERE terms of ``query`` against ``source`` (or against the incidents a hotspot clusters)."""
    if hotspot_inner:
        geom, time_sql, category_sql = (
            source.extra["inner_geom_sql"],
            source.extra["inner_time_sql"],
            source.extra["inner_category_sql"],
        )
        status_sql: str | None = "i.status"
        terms = ["i.status = ANY(%(open_statuses)s)"]
        params["open_statuses"] = list(OPEN_INCIDENT_STATUSES)
    else:
        geom, time_sql, category_sql, status_sql = (
            source.geom_sql,
            source.time_sql,
            source.category_sql,
            source.status_sql,
        )
        terms = [source.where_sql]
    if query.bbox is not None:
        params.update(zip(("xmin", "ymin", "xmax", "ymax"), query.bbox, strict=True))
        terms.append(
            f"{geom} && ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326) "
            f"AND ST_Intersects({geom}, ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326))"
        )
    if time_sql is not None:
        if query.start is not None:
            params["start"] = query.start
            terms.append(f"{time_sql} >= %(start)s")
        if query.end is not None:
            params["end"] = query.end
            terms.append(f"{time_sql} <= %(end)s")
    if category_sql is not None and query.categories:
        params["categories"] = list(query.categories)
        terms.append(f"{category_sql} IN (SELECT id FROM command_category WHERE code = ANY(%(categories)s))")
    if status_sql is not None and query.statuses and not hotspot_inner:
        params["statuses"] = list(query.statuses)
        terms.append(f"{status_sql} = ANY(%(statuses)s)")
    return terms


def _from(source: LayerSource, query: FeatureQuery, params: dict[str, Any], *, lat: float | None = None) -> str:
    if "{inner_where}" not in source.from_sql:
        return source.from_sql
    if lat is None:
        lat = 0.0 if query.bbox is None else (query.bbox[1] + query.bbox[3]) / 2
    radius = float(getattr(settings, "HOTSPOT_RADIUS_M", 150))
    # DBSCAN runs in Web Mercator, whose metres grow by 1/cos(latitude).
    params["hotspot_eps"] = radius / max(math.cos(math.radians(lat)), 0.01)
    params["hotspot_min"] = int(getattr(settings, "HOTSPOT_MIN_INCIDENTS", 5))
    params["hotspot_pad_m"] = radius / 3
    inner = " AND ".join(_where(source, query, params, hotspot_inner=True))
    return source.from_sql.replace("{inner_where}", inner)


def layer_rows_sql(grant: LayerGrant, query: FeatureQuery, *, geometry_sql: str | None = None) -> tuple[str, dict]:
    """``SELECT <id>, <geometry>, <granted fields...> FROM <layer> WHERE <query>`` ordered by id,
    paged by limit/offset: the one selection every output format wraps."""
    source = SOURCES[grant.layer.name]
    params: dict[str, Any] = {}
    from_sql = _from(source, query, params)
    derived = "{inner_where}" in source.from_sql  # hotspots: the query filters the clustered incidents
    where = [] if derived else _where(source, query, params, hotspot_inner=False)
    if query.feature_id is not None:
        params["feature_id"] = query.feature_id
        where.append(f"{source.id_sql} = %(feature_id)s")
    columns = [f"{source.column(name)[0]} AS {name}" for name in grant.fields]
    geometry = geometry_sql or source.geom_sql
    sql = (
        f"SELECT {source.id_sql} AS _id, {geometry} AS _geom{''.join(', ' + c for c in columns)} "
        f"FROM {from_sql} WHERE {' AND '.join(where) or 'TRUE'} ORDER BY {source.id_sql}"
    )
    if query.limit is not None:
        params["limit"] = query.limit
        sql += " LIMIT %(limit)s"
    if query.offset:
        params["offset"] = query.offset
        sql += " OFFSET %(offset)s"
    return sql, params


def _properties_sql(grant: LayerGrant, alias: str = "r") -> str:
    if not grant.fields:
        return "'{}'::json"
    return "json_build_object(" + ", ".join(f"'{name}', {alias}.{name}" for name in grant.fields) + ")"


def feature_collection_sql(grant: LayerGrant, query: FeatureQuery, *, with_ids: bool = False) -> tuple[str, dict]:
    """One row: the RFC 7946 FeatureCollection as text, the number of features in it, and the
    ids on the page when ``with_ids``. The aggregates keep the subquery's id order (a plain
    aggregate over an ordered subquery; an ORDER BY inside json_agg would sort the page again,
    and a window to fetch one extra row costs a copy of every geometry: both measured ~20%)."""
    rows_sql, params = layer_rows_sql(grant, query)
    feature = (
        "json_build_object('type', 'Feature', 'id', r._id, "
        "'geometry', ST_AsGeoJSON(r._geom, 7)::json, "
        f"'properties', {_properties_sql(grant)})"
    )
    ids = "array_agg(r._id)" if with_ids else "NULL::bigint[]"
    sql = (
        "SELECT json_build_object('type', 'FeatureCollection', 'features', "
        f"COALESCE(json_agg({feature}), '[]'::json))::text, count(*), {ids} FROM ({rows_sql}) r"
    )
    return sql, params


@dataclass(frozen=True)
class FeaturePage:
    geojson: bytes  # the FeatureCollection, UTF-8 straight from PostGIS
    returned: int
    ids: list[int]
    full: bool  # the page is as long as the limit: more features may follow


class _Utf8Bytes(Loader):
    """``text`` as the UTF-8 bytes the connection received (Django's connections are UTF-8).
    The 7 MB FeatureCollection of 20,000 buildings took 11.8 ms to decode into a str and 8.6 ms
    to encode back for the response (buildings have Chinese names: not ASCII)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def layer_features(grant: LayerGrant, query: FeatureQuery, *, with_ids: bool = False) -> FeaturePage:
    """A page of features of one layer as a GeoJSON FeatureCollection built in the database."""
    sql, params = feature_collection_sql(grant, query, with_ids=with_ids)
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("text", _Utf8Bytes)  # this cursor's only
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    returned = int(row[1])
    return FeaturePage(row[0], returned, list(row[2] or []), query.limit is not None and returned >= query.limit)


def layer_feature_count(grant: LayerGrant, query: FeatureQuery) -> int:
    rows_sql, params = layer_rows_sql(grant, FeatureQuery(**{**query.__dict__, "limit": None, "offset": 0}))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({rows_sql}) q", params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


EXACT_EXTENT_MAX_ROWS = 20000


def _box(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    xmin, ymin, xmax, ymax = (float(c) for c in text[text.index("(") + 1 : -1].replace(",", " ").split())
    return xmin, ymin, xmax, ymax


def layer_extent(name: str) -> tuple[float, float, float, float] | None:
    """The layer's bounding box (lon/lat). Small tables: exact (``ST_Extent``). Tables above
    EXACT_EXTENT_MAX_ROWS rows (planner estimate): ``ST_EstimatedExtent`` from the statistics
    (a scan of 200,000 incidents took ~40 ms per collection), exact when there are none yet."""
    source = SOURCES[name]
    derived = "{inner_where}" in source.from_sql
    if derived:
        table, column, sql = "command_incident", "location", "SELECT ST_Extent(location) FROM command_incident"
    else:
        table = source.from_sql.split()[0]
        column = source.geom_sql.split(".")[-1]
        sql = f"SELECT ST_Extent({source.geom_sql}) FROM {source.from_sql} WHERE {source.where_sql}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
        if row and row[0] > EXACT_EXTENT_MAX_ROWS and (derived or source.geom_sql.startswith("t.")):
            cursor.execute("SELECT ST_EstimatedExtent(%s, %s)::text", [table, column])
            estimated = _box((cursor.fetchone() or [None])[0])
            if estimated is not None:
                return estimated
        cursor.execute(sql)
        row = cursor.fetchone()
    return _box(row[0] if row else None)


# --- vector tiles ---------------------------------------------------------------------------

Affine = tuple[float, float, float, float, float, float]
AFFINE_MARGIN_M = 2000.0  # GCJ-02 moves features by up to ~700 m: look that much beyond the tile
TILE_EXTENT = 4096
TILE_BUFFER = 64
AGGREGATE_BINS = 32  # an aggregated tile has at most 32 x 32 points
MAX_RAW_POINTS = 1000  # above this many points a tile holds counts even at a raw zoom (~100 KB raw)
WEB_MERCATOR_HALF = 20037508.342789244


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * WEB_MERCATOR_HALF / (1 << z)
    xmin = -WEB_MERCATOR_HALF + x * size
    ymax = WEB_MERCATOR_HALF - y * size
    return xmin, ymax - size, xmin + size, ymax


def tile_center_lon_lat(z: int, x: int, y: int) -> tuple[float, float]:
    xmin, ymin, xmax, ymax = tile_bounds_3857(z, x, y)
    mx, my = (xmin + xmax) / 2, (ymin + ymax) / 2
    lon = mx / WEB_MERCATOR_HALF * 180.0
    lat = math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2)
    return lon, lat


def _tile_value(expr: str, kind: str) -> str:
    if kind == TIME:
        return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    if kind == ARRAY:
        return f"array_to_string({expr}, ',')"
    return expr


def tile_aggregated(layer_name: str, z: int) -> bool:
    return z < SOURCES[layer_name].aggregate_below_zoom


def tile_sql(
    grant: LayerGrant, z: int, x: int, y: int, *, affine: Affine | None = None, with_ids: bool = False
) -> tuple[str, dict]:
    """One row: the Mapbox Vector Tile of one layer for ``grant`` (and the ids in it when
    ``with_ids``). Geometry is clipped and snapped to the 4096 grid by ``ST_AsMVTGeom``; lines
    and polygons are simplified to a tenth of a tile pixel below z16; point layers below their
    ``aggregate_below_zoom`` (or above MAX_RAW_POINTS in the tile) come as counts on a 32 x 32
    grid. ``affine`` (a, b, d, e, xoff, yoff in Web-Mercator metres) moves every vertex on the
    way: the GCJ-02 display shift, linearised per tile (maps/gcj02.py)."""
    name = grant.layer.name
    source = SOURCES[name]
    xmin, ymin, xmax, ymax = tile_bounds_3857(z, x, y)
    size = xmax - xmin
    margin = size * TILE_BUFFER / TILE_EXTENT + (AFFINE_MARGIN_M if affine else 0.0)
    params: dict[str, Any] = {
        "z": z,
        "x": x,
        "y": y,
        "layer": name,
        "exmin": xmin - margin,
        "eymin": ymin - margin,
        "exmax": xmax + margin,
        "eymax": ymax + margin,
    }
    _lon, lat = tile_center_lon_lat(z, x, y)
    query = FeatureQuery(limit=None)
    from_sql = _from(source, query, params, lat=lat)
    if "{inner_where}" in source.from_sql:
        # hotspots: cluster only the incidents near the tile (and a DBSCAN radius around it)
        inner_geom = source.extra["inner_geom_sql"]
        from_sql = from_sql.replace(
            "WHERE i.status",
            f"WHERE {inner_geom} && ST_Transform(ST_MakeEnvelope(%(exmin)s - 2 * %(hotspot_eps)s, "
            "%(eymin)s - 2 * %(hotspot_eps)s, %(exmax)s + 2 * %(hotspot_eps)s, %(eymax)s + 2 * %(hotspot_eps)s, "
            "3857), 4326) AND i.status",
            1,
        )
    where = _where(source, query, params, hotspot_inner=False) if "{inner_where}" not in source.from_sql else []
    geom = source.geom_sql
    where.append(f"{geom} && ST_Transform(ST_MakeEnvelope(%(exmin)s, %(eymin)s, %(exmax)s, %(eymax)s, 3857), 4326)")
    merc = f"ST_Transform({geom}, 3857)"
    if affine is not None:
        params.update(zip(("a", "b", "d", "e", "xoff", "yoff"), affine, strict=True))
        merc = f"ST_Affine({merc}, %(a)s, %(b)s, %(d)s, %(e)s, %(xoff)s, %(yoff)s)"
    point = merc if grant.layer.geometry_type == "Point" else f"ST_Centroid({merc})"
    if grant.layer.geometry_type != "Point" and z < 16:
        params["tolerance"] = size / TILE_EXTENT / 10
        merc = f"ST_SimplifyPreserveTopology({merc}, %(tolerance)s)"
    envelope = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
    if tile_aggregated(name, z):
        params["bin"] = size / AGGREGATE_BINS
        rows = (
            f"SELECT ST_AsMVTGeom(ST_MakePoint(avg(ST_X(p)), avg(ST_Y(p))), {envelope}, "
            f"{TILE_EXTENT}, {TILE_BUFFER}, true) AS geom, count(*)::int AS count "
            f"FROM (SELECT {point} AS p FROM {from_sql} WHERE {' AND '.join(where)}) s "
            "GROUP BY ST_SnapToGrid(p, %(bin)s, %(bin)s)"
        )
        return (
            f"SELECT COALESCE(ST_AsMVT(m.*, %(layer)s, {TILE_EXTENT}, 'geom'), ''::bytea), NULL::bigint[] "
            f"FROM ({rows}) m WHERE m.geom IS NOT NULL",
            params,
        )
    columns = "".join(f", {_tile_value(*source.column(f))} AS {f}" for f in grant.fields)
    attrs = ", ".join(["geom", *grant.fields])
    if source.aggregate_below_zoom and grant.layer.geometry_type == "Point":
        # a point layer at or above its raw zoom: raw points, unless the tile would hold more
        # than MAX_RAW_POINTS (a dense district's history), then counts as below the raw zoom
        params["bin"] = size / AGGREGATE_BINS
        params["max_raw"] = MAX_RAW_POINTS
        points = f"SELECT {source.id_sql} AS _id, {merc} AS _p{columns} FROM {from_sql} WHERE {' AND '.join(where)}"
        raw = (
            f"SELECT COALESCE(ST_AsMVT(a.*, %(layer)s, {TILE_EXTENT}, 'geom'), ''::bytea) FROM ("
            f"SELECT {attrs} FROM (SELECT ST_AsMVTGeom(p._p, {envelope}, {TILE_EXTENT}, {TILE_BUFFER}, true) AS geom"
            f"{''.join(', p.' + f for f in grant.fields)} FROM p) r WHERE r.geom IS NOT NULL) a"
        )
        counted = (
            f"SELECT COALESCE(ST_AsMVT(a.*, %(layer)s, {TILE_EXTENT}, 'geom'), ''::bytea) FROM ("
            f"SELECT ST_AsMVTGeom(ST_MakePoint(avg(ST_X(p._p)), avg(ST_Y(p._p))), {envelope}, {TILE_EXTENT}, "
            f"{TILE_BUFFER}, true) AS geom, count(*)::int AS count FROM p "
            "GROUP BY ST_SnapToGrid(p._p, %(bin)s, %(bin)s)) a WHERE a.geom IS NOT NULL"
        )
        ids = "(SELECT array_agg(p._id) FROM p)" if with_ids else "NULL::bigint[]"
        return (
            f"WITH p AS MATERIALIZED ({points}), n AS (SELECT count(*) AS n FROM p) "
            f"SELECT CASE WHEN n.n > %(max_raw)s THEN ({counted}) ELSE ({raw}) END, "
            f"CASE WHEN n.n > %(max_raw)s THEN NULL ELSE {ids} END FROM n",
            params,
        )
    rows = (
        f"SELECT {source.id_sql} AS _id, ST_AsMVTGeom({merc}, {envelope}, {TILE_EXTENT}, {TILE_BUFFER}, true) AS geom"
        f"{columns} FROM {from_sql} WHERE {' AND '.join(where)}"
    )
    mvt = (
        f"SELECT COALESCE(ST_AsMVT(a.*, %(layer)s, {TILE_EXTENT}, 'geom'), ''::bytea) "
        f"FROM (SELECT {attrs} FROM m WHERE m.geom IS NOT NULL) a"
    )
    ids = "SELECT array_agg(m._id) FROM m WHERE m.geom IS NOT NULL" if with_ids else "SELECT NULL::bigint[]"
    return f"WITH m AS ({rows}) SELECT ({mvt}), ({ids})", params
