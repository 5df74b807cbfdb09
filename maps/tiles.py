"""Vector tiles per viewer, cached in ``maps_tilecache`` and invalidated by the event log.

A cached tile remembers the event-log ``seq`` it is known fresh at. It stays fresh while no
event of a layer it depends on (``LayerSource.depends_on``) has been logged since; the check
reads only the events after that ``seq`` (a primary-key range scan). When the log no longer
holds those events (retention) the tile is rebuilt. The ETag is the content's hash, so a client
revalidates with 304 across unrelated events.

The decision logic is written once, as ``tile_steps``: a generator that yields the statements
to run, ``(sql, params)``, receives each statement's first row, and returns the ``Tile`` with
the statement that stores it (or moves a cached tile's ``seq`` up), if any. Two small drivers
run it: ``layer_tile_cached`` on Django's connection (the view), which runs the store at once,
and ``alayer_tile_cached`` on an async psycopg connection (the lean ASGI path, maps/fast.py),
which hands the store back to run after the response is sent. Both send the same SQL text
with client-side binding, as Django does, so the server plans them alike.

A cache miss renders with exactly ``tile_sql``'s statement (a data-modifying statement around
it would rule out parallel plans), after one statement (FRESH_SQL) that reads the cached row,
its freshness and the latest ``seq`` together.

Invariants:

- the latest ``seq`` is read before rendering (FRESH_SQL runs first) and stored with the tile,
  so an event that races the render leaves the stored tile stale, never falsely fresh;
- tiles that unmask personal data are never cached: each view is logged with its ids by the
  caller (``layer_access_log``), and these tiles are rendered with their ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from psycopg import AsyncClientCursor, AsyncConnection, AsyncCursor

from command.layer_queries import Affine, tile_aggregated, tile_sql
from command.layers import Layer, LayerGrant


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str
    ids: list[int]  # the features in it, when it unmasks personal data
    cached: bool


Statement = tuple[str, Sequence[Any] | Mapping[str, Any]]
Row = tuple[Any, ...] | None
# yields statements, receives their first rows, returns the tile and the statement to run after
TileSteps = Generator[Statement, Row, tuple[Tile, Statement | None]]


def tile_cache_key(grant: LayerGrant, z: int, x: int, y: int, *, crs: str) -> str:
    """The cache key of a tile as ``grant`` sees it: the layer, the tile, and what the grant
    hands out (``LayerGrant.profile``: the fields, which of them masked, the grid cells it is
    narrowed to; aggregated tiles: the cells only). Viewers with the same profile share a tile;
    two profiles never do, so a tile narrowed to one worker's cells never reaches another's."""
    if tile_aggregated(grant.layer.name, z):
        profile = "agg|" + ("*" if grant.cells is None else ",".join(map(str, grant.cells)))
    else:
        profile = grant.profile
    digest = hashlib.sha1(f"{profile}|{crs}".encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{grant.layer.name}/{z}/{x}/{y}/{digest}"


def tile_cacheable(grant: LayerGrant, z: int) -> bool:
    """Every tile is cached under its profile (``tile_cache_key``), except those that unmask
    personal data: each of those views is logged with its ids (aggregated tiles hold counts)."""
    return tile_aggregated(grant.layer.name, z) or not grant.personal_data


# One row, also when nothing is cached: the cached tile (etag, data, seq), the latest seq and
# whether the cached tile is still fresh.
FRESH_SQL = """
SELECT c.etag, c.data, c.seq, l.latest,
  COALESCE((SELECT min(seq) FROM command_event), c.seq + 1) <= c.seq + 1
    AND NOT EXISTS (SELECT 1 FROM command_event e WHERE e.seq > c.seq AND e.layer = ANY(%s)) AS fresh
FROM (SELECT COALESCE((SELECT last_seq FROM command_eventcounter WHERE id = 1), 0) AS latest) l
LEFT JOIN maps_tilecache c ON c.key = %s
"""


def _fresh(grant: LayerGrant, key: str) -> Statement:
    return FRESH_SQL, [list(grant.layer.depends_on), key]


def tile_fresh_statement(grant: LayerGrant, z: int, x: int, y: int, *, crs: str) -> Statement:
    """FRESH_SQL for the tile: the first statement of ``tile_steps`` on a cacheable tile."""
    return _fresh(grant, tile_cache_key(grant, z, x, y, crs=crs))


def tile_public_profile(layer: Layer) -> LayerGrant:
    """The commonest profile of ``layer``'s tiles: its public fields, everywhere. The lean path
    reads the cache with it before it knows the viewer; a viewer with another profile (masked
    fields) has the row of its own key read after."""
    return LayerGrant(layer, layer.public_fields, personal_data=False)


def tile_shared(grant: LayerGrant, z: int) -> bool:
    """Cached under the public profile: the row the lean path reads before it knows the viewer
    (maps/fast.py serves these; other cacheable tiles, narrowed or masked, are cached by the view)."""
    public = tile_public_profile(grant.layer)
    return tile_cacheable(grant, z) and tile_cache_key(grant, z, 0, 0, crs="") == tile_cache_key(
        public, z, 0, 0, crs=""
    )


# A fresh tile whose seq lags this far behind is moved up, to keep the freshness scan short.
SEQ_REFRESH_LAG = 100
SEQ_REFRESH_SQL = "UPDATE maps_tilecache SET seq = %s WHERE key = %s AND seq = %s"
STORE_SQL = (
    "INSERT INTO maps_tilecache (key, layer, seq, etag, data, built_at) VALUES (%s, %s, %s, %s, %s, now()) "
    "ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, etag = EXCLUDED.etag, data = EXCLUDED.data, "
    "built_at = EXCLUDED.built_at"
)


def _rendered(row: Row) -> tuple[bytes, list[int]]:
    if not row or row[0] is None:
        return b"", []
    return bytes(row[0]), list(row[1] or [])


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def tile_steps(grant: LayerGrant, z: int, x: int, y: int, *, crs: str, affine: Affine | None) -> TileSteps:
    """The tile for ``grant``: from the cache while fresh, else rendered by PostGIS, with the
    statement that stores it. Tiles that unmask personal data are rendered with their ids and
    never cached."""
    if not tile_cacheable(grant, z):
        data, ids = _rendered((yield tile_sql(grant, z, x, y, affine=affine, with_ids=True)))
        return Tile(data, _md5(data), ids, cached=False), None
    key = tile_cache_key(grant, z, x, y, crs=crs)
    row = yield _fresh(grant, key)
    assert row is not None
    latest = int(row[3])  # read before rendering: an event racing the render makes the tile stale
    if row[0] is not None and row[4]:
        etag, data, seq = str(row[0]), bytes(row[1]), int(row[2])
        refresh: Statement | None = (SEQ_REFRESH_SQL, [latest, key, seq]) if latest - seq > SEQ_REFRESH_LAG else None
        return Tile(data, etag, [], cached=True), refresh
    data, _ids = _rendered((yield tile_sql(grant, z, x, y, affine=affine, with_ids=False)))
    etag = _md5(data)
    return Tile(data, etag, [], cached=False), (STORE_SQL, [key, grant.layer.name, latest, etag, data])


def layer_tile_cached(
    grant: LayerGrant, z: int, x: int, y: int, *, crs: str = "wgs84", affine: Affine | None = None
) -> Tile:
    """``tile_steps`` on Django's connection (the view); the tile is stored before it is returned."""
    steps = tile_steps(grant, z, x, y, crs=crs, affine=affine)
    with connection.cursor() as cursor:
        statement = next(steps)
        while True:
            cursor.execute(*statement)
            try:
                statement = steps.send(cursor.fetchone())
            except StopIteration as done:
                tile, after = done.value
                break
        if after is not None:
            cursor.execute(*after)
    return tile


async def alayer_tile_cached(
    conn: AsyncConnection[Any],
    grant: LayerGrant,
    z: int,
    x: int,
    y: int,
    *,
    crs: str = "wgs84",
    affine: Affine | None = None,
    prefetched: tuple[Statement, Row] | None = None,
) -> tuple[Tile, Statement | None]:
    """``tile_steps`` on an async psycopg connection in autocommit mode: the tile, and the
    statement that stores it, for the caller to run (``aexecute``) once the tile is sent.
    ``prefetched``: a statement the caller has already run (within one of its own), and its row."""
    steps = tile_steps(grant, z, x, y, crs=crs, affine=affine)
    async with AsyncClientCursor(conn) as cursor:
        statement = next(steps)
        while True:
            if prefetched is not None and statement == prefetched[0]:
                row, prefetched = prefetched[1], None
            else:
                await cursor.execute(*statement)
                row = await cursor.fetchone()
            try:
                statement = steps.send(row)
            except StopIteration as done:
                return done.value


async def aexecute(conn: AsyncConnection[Any], statement: Statement) -> None:
    """Run the store (or seq refresh) of ``tile_steps``: prepared, the tile bound as binary bytea
    (as a literal, 37 KB of tile are 74 KB of hex to escape here and to parse on the server)."""
    async with AsyncCursor(conn) as cursor:
        await cursor.execute(*statement, prepare=True)


def tile_cache_clear() -> int:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM maps_tilecache")
        return int(cursor.rowcount)
