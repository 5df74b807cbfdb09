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
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections
from django.utils import timezone
from psycopg.adapt import Buffer, Loader

from command.geometry import METRES_PER_DEGREE_LAT
from command.layers import (
    ARRAY,
    LAYERS,
    TIME,
    ComputedSource,
    CoverageGapSource,
    HexBinSource,
    HotspotSource,
    LayerGrant,
    Source,
    TableSource,
)
from command.replica import read_alias
from command.selectors import CELL_FOR_POINT_SQL


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


def _cells_term(geom: str, cell_sql: str | None, cells: tuple[int, ...], params: dict[str, Any]) -> str:
    """The rows of a grant narrowed to grid cells (command/access.py): by the source's cell
    column, or, for a source that declares none, by its geometry meeting the cells."""
    params["grant_cells"] = list(cells)
    if cell_sql is not None:
        return f"{cell_sql} = ANY(%(grant_cells)s)"
    return (
        f"ST_Intersects({geom}, (SELECT ST_Union(gc.geom) FROM command_gridcell gc WHERE gc.id = ANY(%(grant_cells)s)))"
    )


def _where(
    geom: str, source: TableSource, query: FeatureQuery, params: dict[str, Any], cells: tuple[int, ...] | None = None
) -> list[str]:
    """The WHERE terms of ``query`` over a table source's rows (and a grant's grid cells)."""
    terms = [source.where_sql]
    if cells is not None:
        terms.append(_cells_term(geom, source.cell_sql, cells, params))
    if query.bbox is not None:
        terms.append(_bbox_term(geom, query, params))
    if source.time_sql is not None:
        terms += _time_terms(source.time_sql, query, params)
    terms += _category_terms(source.category_sql, query, params)
    if source.status_sql is not None and query.statuses:
        params["statuses"] = list(query.statuses)
        terms.append(f"{source.status_sql} = ANY(%(statuses)s)")
    return terms


def _bbox_term(geom: str, query: FeatureQuery, params: dict[str, Any]) -> str:
    assert query.bbox is not None
    params.update(zip(("xmin", "ymin", "xmax", "ymax"), query.bbox, strict=True))
    return (
        f"{geom} && ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326) "
        f"AND ST_Intersects({geom}, ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326))"
    )


def _time_terms(time_sql: str, query: FeatureQuery, params: dict[str, Any]) -> list[str]:
    terms = []
    if query.start is not None:
        params["start"] = query.start
        terms.append(f"{time_sql} >= %(start)s")
    if query.end is not None:
        params["end"] = query.end
        terms.append(f"{time_sql} <= %(end)s")
    return terms


def _category_terms(category_sql: str | None, query: FeatureQuery, params: dict[str, Any]) -> list[str]:
    if category_sql is None or not query.categories:
        return []
    params["categories"] = list(query.categories)
    return [f"{category_sql} IN (SELECT id FROM command_category WHERE code = ANY(%(categories)s))"]


# --- computed layers: hotspots, hex bins, coverage gaps ------------------------------------------


def _scale(lat: float | None, params: dict[str, Any], points: str, *, latest: str = "") -> str:
    """cos(latitude): Web-Mercator units per metre shrink by it. From ``lat`` when the view
    is known (a bbox or a tile), else the latitude of one of ``points`` (an SQL relation with
    ``location``; a district is small enough for one: cos changes by 0.1 % in 10 km; the mean
    of 49,000 points cost 170 ms), so that a distance in metres means metres anywhere. With
    ``latest`` (a time column of ``points``), the latest point: a short backward scan of the
    time index, where the first point a sequential scan meets may lie thousands of pages in."""
    if lat is not None:
        params["cos_lat"] = max(math.cos(math.radians(lat)), 0.01)
        return "SELECT %(cos_lat)s::float8 AS k"
    order = f" ORDER BY p.{latest} DESC" if latest else ""
    one = f"SELECT cos(radians(ST_Y(p.location))) FROM {points} p{order} LIMIT 1"
    return f"SELECT GREATEST(COALESCE(({one}), 1), 0.01) AS k"


def today_end_sql(params: dict[str, Any]) -> str:
    """The end of today in TIME_ZONE: computed layers' default windows are whole days ending
    there, so the same request gives the same features (and tile bytes, ETags) all day. Bound
    as a value, computed once here: written in SQL (``date_trunc(... AT TIME ZONE ...)``) it
    was evaluated per row, twice in the filter and once in the window number (a time-zone
    conversion each: 10 % of the 90-day hotspots' CPU), and the planner could not see the range."""
    zone = ZoneInfo(settings.TIME_ZONE)
    tomorrow = timezone.localdate(timezone=zone) + timedelta(days=1)
    params["today_end"] = datetime.combine(tomorrow, time.min, tzinfo=zone)
    return "%(today_end)s::timestamptz"


def _envelope_term(geom: str, query: FeatureQuery, params: dict[str, Any], envelope: str | None) -> list[str]:
    """The rows near the view: within the tile's ``envelope`` (an SQL box in SRID 4326, around
    it), or the query's bbox."""
    if envelope is not None:
        return [f"{geom} && {envelope}"]
    if query.bbox is not None:
        return [_bbox_term(geom, query, params)]
    return []


def hotspot_relation(
    source: HotspotSource, query: FeatureQuery, params: dict[str, Any], *, lat: float | None, envelope: str | None
) -> str:
    """The hotspots of ``source`` as a relation ``t`` (the fields of the hotspots layer and
    ``geom``). Windows: the latest ends at ``query.end`` (default: the end of today) and is ``end - start``
    long (default HOTSPOT_WINDOW_DAYS); HOTSPOT_WINDOWS of them, back to back, are clustered,
    each category with its own distance and minimum count (``ST_ClusterDBSCAN`` partitioned by
    category and window, in Web Mercator scaled to metres). A cluster of the latest window is a
    hotspot: its hull padded by a third of the distance, count, first and last time;
    ``previous_count`` sums the clusters of the window before whose padded hulls meet it
    (``ST_DWithin`` of the bare hulls within both pads: only the output is buffered)
    (none: ``new``; at least HOTSPOT_GROWTH_PERCENT
    more: ``growing``; as much less: ``shrinking``; else ``stable``); ``windows`` counts the
    consecutive windows, back from the latest, linked by meeting padded hulls; ``recurrent`` from
    HOTSPOT_RECURRENT_WINDOWS on."""
    from command.analysis.params import hotspot_params

    hp = hotspot_params()
    codes = sorted(hp.per_category)
    params.update(
        hs_codes=codes,
        hs_radii=[hp.per_category[c][0] for c in codes],
        hs_mins=[hp.per_category[c][1] for c in codes],
        hs_radius=hp.radius_m,
        hs_min=hp.min_count,
        hs_windows=hp.windows,
        hs_recurrent=hp.recurrent_windows,
        hs_growth=hp.growth,
    )
    if query.end is not None:
        params["end"] = query.end
    end = "%(end)s::timestamptz" if query.end is not None else today_end_sql(params)
    if query.start is not None:
        params["start"] = query.start
        length = f"GREATEST({end} - %(start)s::timestamptz, interval '1 second')"
    else:
        params["hs_window_days"] = hp.window_days
        length = "make_interval(days => %(hs_window_days)s)"
    point, when = f"i.{source.point_column}", f"i.{source.time_column}"
    near = envelope
    if near is not None:  # a tile: cluster the points around it too, or hotspots on its edge break up
        params["hs_margin_lat"] = 2 * hp.max_radius_m / METRES_PER_DEGREE_LAT
        params["hs_margin_lon"] = params["hs_margin_lat"] / max(math.cos(math.radians(lat or 0.0)), 0.01)
        near = f"ST_Expand({near}, %(hs_margin_lon)s, %(hs_margin_lat)s)"
    # the window's end and length are written out where used, not taken from a CTE: the planner
    # then sees the time range (a parallel scan with the right row estimate; 20 % of the time)
    terms = [
        f"{when} < {end}",
        f"{when} >= {end} - {length} * %(hs_windows)s",
        *_envelope_term(point, query, params, near),
        *_category_terms(source.category_sql, query, params),
    ]
    return f"""(
  -- param and scale are read twice (the points, the clusters) and inlined where read: a CTE
  -- scan keeps the join out of parallel workers
  WITH RECURSIVE param AS NOT MATERIALIZED (
    SELECT c.id AS category_id, COALESCE(p.radius, %(hs_radius)s) AS radius,
           COALESCE(p.min_count, %(hs_min)s) AS min_count
    FROM command_category c
    LEFT JOIN unnest(%(hs_codes)s::text[], %(hs_radii)s::float8[], %(hs_mins)s::int[]) AS p(code, radius, min_count)
      ON p.code = c.code
  ),
  pts AS NOT MATERIALIZED (
    SELECT {_as(point, "location")}, {_as(source.category_sql, "category_id")}, {when} AS at,
           floor(extract(epoch FROM {end} - {when}) / extract(epoch FROM {length}))::int AS win
    FROM {source.table} i
    WHERE {" AND ".join(terms)}
  ),
  scale AS NOT MATERIALIZED ({_scale(lat, params, "pts", latest="at")}),
  -- the rows carry their point in WGS 84 and DBSCAN projects it: a projected column the
  -- grouping reads too was projected twice a row (once for DBSCAN, once for the output).
  -- They carry nothing the grouping can take from the category (the pad): each column
  -- carried is sorted twice, for the partitions and for the clusters.
  clustered AS (
    SELECT q.location, q.category_id, q.at, q.win,
           ST_ClusterDBSCAN(ST_Transform(q.location, 3857), eps := q.eps, minpoints := q.min_count)
             OVER (PARTITION BY q.category_id, q.win) AS cluster
    FROM (
      SELECT p.location, p.category_id, p.at, p.win, m.radius / k.k AS eps, m.min_count
      FROM pts p JOIN param m ON m.category_id = p.category_id CROSS JOIN scale k
    ) q
  ),
  -- hulls in WGS 84 (for the cell), projected once a cluster (for links and pads). A hull
  -- of the cluster's points as one line (ST_MakeLine of an array), not a multipoint
  -- (ST_Collect): GEOS then reads one coordinate sequence, not a geometry per point (the
  -- same hull, ~3 ms less over 17,680 clustered points)
  clusters AS MATERIALIZED (
    SELECT g.*, m.radius / 3 / k.k AS pad, ST_Transform(g.lonlat, 3857) AS hull FROM (
      SELECT c.category_id, c.win, c.cluster, count(*)::int AS count, min(c.at) AS first_at, max(c.at) AS last_at,
             ST_ConvexHull(ST_MakeLine(array_agg(c.location))) AS lonlat
      FROM clustered c WHERE c.cluster IS NOT NULL
      GROUP BY c.category_id, c.win, c.cluster
    ) g JOIN param m ON m.category_id = g.category_id CROSS JOIN scale k
  ),
  links AS MATERIALIZED (  -- a cluster and the clusters of the window before that its padded hull meets
    SELECT a.category_id, a.win, a.cluster, b.cluster AS before, b.count AS before_count
    FROM clusters a
    JOIN clusters b ON b.category_id = a.category_id AND b.win = a.win + 1
      AND b.hull && ST_Expand(a.hull, a.pad + b.pad) AND ST_DWithin(b.hull, a.hull, a.pad + b.pad)
  ),
  chain AS (
    SELECT h.category_id, h.cluster AS head, h.win, h.cluster FROM clusters h WHERE h.win = 0
    UNION
    SELECT ch.category_id, ch.head, l.win + 1, l.before
    FROM chain ch JOIN links l ON l.category_id = ch.category_id AND l.win = ch.win AND l.cluster = ch.cluster
  ),
  streak AS (SELECT category_id, head, (max(win) + 1)::int AS windows FROM chain GROUP BY category_id, head),
  prev AS (
    SELECT category_id, cluster, sum(before_count)::int AS count FROM links WHERE win = 0 GROUP BY category_id, cluster
  )
  SELECT h.category_id::bigint * 1000000 + h.cluster AS id, h.category_id, h.count,
         COALESCE(prev.count, 0) AS previous_count,
         CASE WHEN prev.count IS NULL THEN 'new'
              WHEN h.count > prev.count AND h.count >= prev.count * (1 + %(hs_growth)s) THEN 'growing'
              WHEN h.count < prev.count AND h.count * (1 + %(hs_growth)s) <= prev.count THEN 'shrinking'
              ELSE 'stable' END AS trend,
         streak.windows, streak.windows >= %(hs_recurrent)s AS recurrent,
         h.first_at, h.last_at, {end} - {length} AS window_start, {end} AS window_end,
         ({CELL_FOR_POINT_SQL.format(point="ST_Centroid(h.lonlat)")}) AS grid_cell_id,
         ST_Transform(ST_Buffer(h.hull, h.pad, 'quad_segs=4'), 4326) AS geom
  FROM clusters h
  JOIN streak ON streak.category_id = h.category_id AND streak.head = h.cluster
  LEFT JOIN prev ON prev.category_id = h.category_id AND prev.cluster = h.cluster
  WHERE h.win = 0
) t"""


def hexbin_relation(
    source: HexBinSource, query: FeatureQuery, params: dict[str, Any], *, lat: float | None, envelope: str | None
) -> str:
    """The hexagon bins of ``source`` as a relation ``t`` (id, count, category_id, geom):
    ``ST_HexagonGrid`` over the view (the tile, the bbox, else the counted rows' extent) in Web
    Mercator, HEXBIN_SIZE_M metres an edge, joined with the rows it holds (by the index on
    their points). Rows: the query's time range, or the last HOTSPOT_WINDOW_DAYS."""
    from command.analysis.params import hotspot_params

    params["hex_size"] = float(settings.HEXBIN_SIZE_M)
    point, when = f"i.{source.point_column}", f"i.{source.time_column}"
    time_terms = _time_terms(when, query, params)
    if query.start is None:
        params["hs_window_days"] = hotspot_params().window_days
        time_terms.append(f"{when} >= {today_end_sql(params)} - make_interval(days => %(hs_window_days)s)")
    rows = [*time_terms, *_category_terms(source.category_sql, query, params)]
    if envelope is not None:
        bounds = f"SELECT ST_Transform({envelope}, 3857) AS box"
    elif query.bbox is not None:
        params.update(zip(("xmin", "ymin", "xmax", "ymax"), query.bbox, strict=True))
        bounds = "SELECT ST_Transform(ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326), 3857) AS box"
    else:
        bounds = (
            f"SELECT ST_Transform(ST_SetSRID(ST_Extent({point}), 4326), 3857) AS box "
            f"FROM {source.table} i WHERE {' AND '.join(rows)}"
        )
    if lat is not None:  # hexagons of neighbouring tiles line up: one size per 0.01 of cos(latitude)
        lat = math.degrees(math.acos(round(math.cos(math.radians(lat)), 2)))
    return f"""(
  WITH bounds AS ({bounds}),
  scale AS ({_scale(lat, params, "(SELECT ST_Transform(ST_Centroid(b.box), 4326) AS location FROM bounds b)")}),
  hexes AS (
    SELECT h.i, h.j, ST_Transform(h.geom, 4326) AS geom
    FROM bounds b CROSS JOIN scale k CROSS JOIN ST_HexagonGrid(%(hex_size)s / k.k, b.box) h
    WHERE b.box IS NOT NULL
  )
  SELECT h.i::bigint * 4294967296 + h.j AS id, count(*)::int AS count,
         mode() WITHIN GROUP (ORDER BY {source.category_sql}) AS category_id, h.geom
  FROM hexes h
  JOIN {source.table} i ON {point} && h.geom AND ST_Intersects({point}, h.geom)
  WHERE {" AND ".join(rows) or "TRUE"}
  GROUP BY h.i, h.j, h.geom
) t"""


def coverage_gap_relation(
    source: CoverageGapSource, query: FeatureQuery, params: dict[str, Any], *, envelope: str | None
) -> str:
    """What no camera sees, as a relation ``t``. Roads: per road of the source's classes, the
    stretches outside the union of the view cones (of cameras in the source's statuses) that
    meet it, with ``length_m``, ``uncovered_m`` (geography lengths) and their ratio; fully
    covered roads are left out. Entrances: per building, its entrance (the point of its
    footprint nearest the nearest road), when no such cone covers it."""
    params["gap_camera_statuses"] = list(source.camera_statuses)
    if source.kind == "roads":
        params["gap_road_classes"] = list(source.road_classes)
        near = _envelope_term("r.geom", query, params, envelope)
        return f"""(
  SELECT r.id, r.name, r.road_class, g.length_m, g.uncovered_m,
         round((g.uncovered_m / NULLIF(g.length_m, 0))::numeric, 3)::float8 AS uncovered_share, g.gap AS geom
  FROM command_road r
  CROSS JOIN LATERAL (
    SELECT round(ST_Length(r.geom::geography)::numeric, 1)::float8 AS length_m,
           round(ST_Length(d.gap::geography)::numeric, 1)::float8 AS uncovered_m, d.gap
    FROM (
      SELECT ST_Multi(ST_CollectionExtract(
               ST_Difference(r.geom, COALESCE(ST_Union(c.view_cone), ST_GeomFromText('POLYGON EMPTY', 4326))), 2
             )) AS gap
      FROM command_camera c
      WHERE c.view_cone && r.geom AND c.status = ANY(%(gap_camera_statuses)s) AND ST_Intersects(c.view_cone, r.geom)
    ) d
  ) g
  WHERE {" AND ".join(["r.road_class = ANY(%(gap_road_classes)s)", *near])} AND NOT ST_IsEmpty(g.gap)
) t"""
    near = _envelope_term("b.footprint", query, params, envelope)
    return f"""(
  SELECT b.id, b.address, b.use, b.grid_cell_id, e.entrance AS geom
  FROM command_building b
  CROSS JOIN LATERAL (
    SELECT ST_ClosestPoint(b.footprint, r.geom) AS entrance FROM command_road r
    ORDER BY r.geom <-> b.footprint, r.id LIMIT 1
  ) e
  WHERE {" AND ".join(near) or "TRUE"} AND NOT EXISTS (
    SELECT 1 FROM command_camera c
    WHERE c.view_cone && e.entrance AND c.status = ANY(%(gap_camera_statuses)s)
      AND ST_Intersects(c.view_cone, e.entrance)
  )
) t"""


def computed_relation(
    source: ComputedSource,
    query: FeatureQuery,
    params: dict[str, Any],
    *,
    lat: float | None = None,
    envelope: str | None = None,
) -> str:
    """The rows of a computed layer as a relation ``t``, for ``query`` (its bbox, or a tile's
    ``envelope``: an SQL box in SRID 4326)."""
    if lat is None and query.bbox is not None:
        lat = (query.bbox[1] + query.bbox[3]) / 2
    if isinstance(source, HotspotSource):
        return hotspot_relation(source, query, params, lat=lat, envelope=envelope)
    if isinstance(source, HexBinSource):
        return hexbin_relation(source, query, params, lat=lat, envelope=envelope)
    return coverage_gap_relation(source, query, params, envelope=envelope)


def _as(expr: str, name: str) -> str:
    return expr if expr.endswith(f".{name}") else f"{expr} AS {name}"


def _relation(
    source: Source,
    query: FeatureQuery,
    params: dict[str, Any],
    *,
    lat: float | None = None,
    envelope: str | None = None,
    cells: tuple[int, ...] | None = None,
) -> tuple[str, list[str]]:
    """The FROM text of a layer's rows and the WHERE terms of ``query`` over them (a computed
    source filters what it computes from, inside its relation; a grant narrowed to grid cells
    keeps the computed features that meet them)."""
    if isinstance(source, TableSource):
        return source.from_sql, _where(source.geom_sql, source, query, params, cells)
    narrowed = [_cells_term(source.geom_sql, None, cells, params)] if cells is not None else []
    return computed_relation(source, query, params, lat=lat, envelope=envelope), narrowed


def layer_rows_sql(grant: LayerGrant, query: FeatureQuery, *, geometry_sql: str | None = None) -> tuple[str, dict]:
    """``SELECT <id>, <geometry>, <granted fields...> FROM <layer> WHERE <query>`` ordered by id,
    paged by limit/offset: the one selection every output format wraps."""
    source = grant.layer.source
    params: dict[str, Any] = {}
    from_sql, where = _relation(source, query, params, cells=grant.cells)
    if query.feature_id is not None:
        params["feature_id"] = query.feature_id
        where.append(f"{source.id_sql} = %(feature_id)s")
    for i, (name, value) in enumerate(query.equals):
        if name not in grant.fields or name in grant.masked:  # no probing a masked value
            where.append("FALSE")
            continue
        params[f"equals_{i}"] = value
        where.append(f"{grant.layer.column(name)[0]} = %(equals_{i})s")
    columns = [f"{grant.column(name)[0]} AS {name}" for name in grant.fields]
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


def layer_size_estimates(names: list[str]) -> dict[str, int]:
    """The planner's row count of each table-backed layer's table (``pg_class.reltuples``, one
    query, no scan): an upper bound of what a viewer may get, enough to send a layer of a large
    table as vector tiles at once. Computed layers and never-analysed tables are left out."""
    tables = {name: LAYERS[name].source.table for name in names if isinstance(LAYERS[name].source, TableSource)}
    if not tables:
        return {}
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)",
            [sorted(set(tables.values()))],
        )
        rows = {relname: int(reltuples) for relname, reltuples in cursor.fetchall() if reltuples >= 0}
    return {name: rows[table] for name, table in tables.items() if table in rows}


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
    derived = not isinstance(source, TableSource)  # computed features lie within their rows
    if isinstance(source, HotspotSource | HexBinSource):
        table, column = source.table, source.point_column
        sql = f"SELECT ST_Extent({column}) FROM {table}"
    elif isinstance(source, CoverageGapSource):
        table, column = source.table, "geom" if source.kind == "roads" else "footprint"
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
    # a computed layer computes from the rows around the tile (hotspots: and a margin more)
    envelope = "ST_Transform(ST_MakeEnvelope(%(exmin)s, %(eymin)s, %(exmax)s, %(eymax)s, 3857), 4326)"
    from_sql, where = _relation(source, query, params, lat=lat, envelope=envelope, cells=grant.cells)
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
    columns = "".join(f", {_tile_value(*grant.column(f))} AS {f}" for f in grant.fields)
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
