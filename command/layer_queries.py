# ruff: noqa: S608  -- SQL is assembled from the layer declarations (command/layers.py); request values are bound parameters.
"""Read-side SQL for the map layers: GeoJSON, vector tiles, OGC items and exports are built in
PostGIS (``ST_AsGeoJSON`` + ``json_agg``, ``ST_AsMVT``), never by serializing model instances.

Every builder takes a ``LayerGrant`` from ``command.layers.layers_for_user`` and selects only the
fields of that grant: a field the viewer may not see never leaves the database.

SQL is assembled from the layer declarations (command/layers.py: table names, column
expressions); every value that comes from a request goes in as a bound parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections
from psycopg.adapt import Buffer, Loader

from command.layers import ARRAY, LAYERS, TIME, ClusterSource, LayerGrant, Source, TableSource
from command.replica import read_alias


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
    # Declared fields that must equal a value: ((field name, value), ...), e.g. one campaign's
    # buildings (the REST API asks it; the map channels do not take it from clients).
    equals: tuple[tuple[str, Any], ...] = ()


def _where(
    geom: str,
    source: TableSource | None,
    query: FeatureQuery,
    params: dict[str, Any],
    *,
    clustered: ClusterSource | None,
) -> list[str]:
    """The WHERE terms of ``query``: over a table source's rows, or over the rows a cluster
    source clusters (alias ``i``)."""
    if clustered is not None:
        time_sql: str | None = f"i.{clustered.time_column}"
        category_sql: str | None = clustered.category_sql
        status_sql = None
        params["open_statuses"] = list(clustered.statuses)
        terms = [f"i.{clustered.status_column} = ANY(%(open_statuses)s)"]
    else:
        assert source is not None
        time_sql, category_sql, status_sql = source.time_sql, source.category_sql, source.status_sql
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
    if status_sql is not None and query.statuses:
        params["statuses"] = list(query.statuses)
        terms.append(f"{status_sql} = ANY(%(statuses)s)")
    return terms


def cluster_relation(
    source: ClusterSource, query: FeatureQuery, params: dict[str, Any], *, lat: float, near: str | None = None
) -> str:
    """The clusters of ``source`` as a relation ``t`` (id, cluster, count, category_id, geom,
    opened_at): DBSCAN over the rows that pass ``query`` (and, for a tile, lie ``near`` it: an
    SQL term over the clustered point). The radius and minimum count are settings
    (HOTSPOT_RADIUS_M, HOTSPOT_MIN_INCIDENTS); DBSCAN runs in Web Mercator, whose metres grow
    by 1/cos(latitude)."""
    radius = float(getattr(settings, "HOTSPOT_RADIUS_M", 150))
    params["hotspot_eps"] = radius / max(math.cos(math.radians(lat)), 0.01)
    params["hotspot_min"] = int(getattr(settings, "HOTSPOT_MIN_INCIDENTS", 5))
    params["hotspot_pad_m"] = radius / 3
    point, when = f"i.{source.point_column}", f"i.{source.time_column}"
    terms = ([near] if near else []) + _where(point, None, query, params, clustered=source)
    return f"""(
  SELECT c.cluster AS id, c.cluster, count(*) AS count,
         mode() WITHIN GROUP (ORDER BY c.category_id) AS category_id,
         ST_Buffer(ST_ConvexHull(ST_Collect(c.location))::geography, %(hotspot_pad_m)s)::geometry AS geom,
         max(c.opened_at) AS opened_at
  FROM (
    SELECT {_as(point, "location")}, {_as(source.category_sql, "category_id")}, {_as(when, "opened_at")},
           ST_ClusterDBSCAN(ST_Transform({point}, 3857), eps := %(hotspot_eps)s,
                            minpoints := %(hotspot_min)s) OVER () AS cluster
    FROM {source.table} i
    WHERE {" AND ".join(terms)}
  ) c
  WHERE c.cluster IS NOT NULL
  GROUP BY c.cluster
) t"""


def _as(expr: str, name: str) -> str:
    return expr if expr.endswith(f".{name}") else f"{expr} AS {name}"


def _relation(
    source: Source, query: FeatureQuery, params: dict[str, Any], *, lat: float | None = None, near: str | None = None
) -> tuple[str, list[str]]:
    """The FROM text of a layer's rows and the WHERE terms of ``query`` over them (a cluster
    source filters what it clusters, inside its relation)."""
    if isinstance(source, ClusterSource):
        if lat is None:
            lat = 0.0 if query.bbox is None else (query.bbox[1] + query.bbox[3]) / 2
        return cluster_relation(source, query, params, lat=lat, near=near), []
    return source.from_sql, _where(source.geom_sql, source, query, params, clustered=None)


def layer_rows_sql(grant: LayerGrant, query: FeatureQuery, *, geometry_sql: str | None = None) -> tuple[str, dict]:
    """``SELECT <id>, <geometry>, <granted fields...> FROM <layer> WHERE <query>`` ordered by id,
    paged by limit/offset: the one selection every output format wraps."""
    source = grant.layer.source
    params: dict[str, Any] = {}
    from_sql, where = _relation(source, query, params)
    if query.feature_id is not None:
        params["feature_id"] = query.feature_id
        where.append(f"{source.id_sql} = %(feature_id)s")
    for i, (name, value) in enumerate(query.equals):
        params[f"equals_{i}"] = value
        where.append(f"{grant.layer.column(name)[0]} = %(equals_{i})s")
    columns = [f"{grant.layer.column(name)[0]} AS {name}" for name in grant.fields]
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
    with connections[read_alias()].cursor() as cursor:
        cursor.cursor.adapters.register_loader("text", _Utf8Bytes)  # this cursor's only
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    returned = int(row[1])
    return FeaturePage(row[0], returned, list(row[2] or []), query.limit is not None and returned >= query.limit)


def layer_feature_count(grant: LayerGrant, query: FeatureQuery) -> int:
    rows_sql, params = layer_rows_sql(grant, FeatureQuery(**{**query.__dict__, "limit": None, "offset": 0}))
    with connections[read_alias()].cursor() as cursor:
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
    source = LAYERS[name].source
    derived = isinstance(source, ClusterSource)  # the clusters lie within the clustered points
    if isinstance(source, ClusterSource):
        table, column = source.table, source.point_column
        sql = f"SELECT ST_Extent({column}) FROM {table}"
    else:
        table = source.table
        column = source.geom_sql.split(".")[-1]
        sql = f"SELECT ST_Extent({source.geom_sql}) FROM {source.from_sql} WHERE {source.where_sql}"
    with connections[read_alias()].cursor() as cursor:
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
    return z < LAYERS[layer_name].aggregate_below_zoom


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
    source = grant.layer.source
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
    near = None
    if isinstance(source, ClusterSource):
        # cluster only the points near the tile (and a DBSCAN radius around it)
        near = (
            f"i.{source.point_column} && ST_Transform(ST_MakeEnvelope(%(exmin)s - 2 * %(hotspot_eps)s, "
            "%(eymin)s - 2 * %(hotspot_eps)s, %(exmax)s + 2 * %(hotspot_eps)s, %(eymax)s + 2 * %(hotspot_eps)s, "
            "3857), 4326)"
        )
    from_sql, where = _relation(source, query, params, lat=lat, near=near)
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
    columns = "".join(f", {_tile_value(*grant.layer.column(f))} AS {f}" for f in grant.fields)
    attrs = ", ".join(["geom", *grant.fields])
    if grant.layer.aggregate_below_zoom and grant.layer.geometry_type == "Point":
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
