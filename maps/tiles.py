"""Vector tiles per viewer, cached in ``maps_tilecache`` and invalidated by the event log.

A cached tile remembers the event-log ``seq`` it is known fresh at. It stays fresh while no
event of a layer it depends on (``LayerSource.depends_on``) has been logged since; the check
reads only the events after that ``seq`` (a primary-key range scan). When the log no longer
holds those events (retention) the tile is rebuilt. The ETag is the content's hash, so a client
revalidates with 304 across unrelated events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import connection

from command.layer_queries import SOURCES, Affine, layer_tile, tile_aggregated
from command.layers import LayerGrant


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str
    ids: list[int]  # the features in it, when it unmasks personal data
    cached: bool


def tile_cache_key(grant: LayerGrant, z: int, x: int, y: int, *, crs: str) -> str:
    profile = "agg" if tile_aggregated(grant.layer.name, z) else ",".join(grant.fields)
    digest = hashlib.sha1(f"{profile}|{crs}".encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{grant.layer.name}/{z}/{x}/{y}/{digest}"


FRESH_SQL = """
SELECT c.etag, c.data, c.seq, l.latest,
  COALESCE((SELECT min(seq) FROM command_event), c.seq + 1) <= c.seq + 1
    AND NOT EXISTS (SELECT 1 FROM command_event e WHERE e.seq > c.seq AND e.layer = ANY(%s)) AS fresh
FROM (SELECT COALESCE((SELECT last_seq FROM command_eventcounter WHERE id = 1), 0) AS latest) l
LEFT JOIN maps_tilecache c ON c.key = %s
"""


def layer_tile_cached(
    grant: LayerGrant, z: int, x: int, y: int, *, crs: str = "wgs84", affine: Affine | None = None
) -> Tile:
    """The tile for ``grant``: from the cache while fresh, else rendered by PostGIS and stored.
    Tiles that unmask personal data are never cached (each view is logged with its ids)."""
    if grant.personal_data and not tile_aggregated(grant.layer.name, z):
        data, ids = layer_tile(grant, z, x, y, affine=affine)
        return Tile(data, hashlib.md5(data, usedforsecurity=False).hexdigest(), ids, cached=False)
    key = tile_cache_key(grant, z, x, y, crs=crs)
    depends = list(SOURCES[grant.layer.name].depends_on)
    with connection.cursor() as cursor:
        cursor.execute(FRESH_SQL, [depends, key])
        row = cursor.fetchone()
    assert row is not None
    latest = int(row[3])  # read before rendering: an event racing the render makes the tile stale
    if row[0] is not None and row[4]:
        etag, data, seq = row[0], bytes(row[1]), row[2]
        if latest - seq > 100:  # keep the freshness scan short
            with connection.cursor() as cursor:
                cursor.execute("UPDATE maps_tilecache SET seq = %s WHERE key = %s AND seq = %s", [latest, key, seq])
        return Tile(data, etag, [], cached=True)
    seq = latest
    data, _ids = layer_tile(grant, z, x, y, affine=affine)
    etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO maps_tilecache (key, layer, seq, etag, data, built_at) VALUES (%s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, etag = EXCLUDED.etag, data = EXCLUDED.data, "
            "built_at = EXCLUDED.built_at",
            [key, grant.layer.name, seq, etag, data],
        )
    return Tile(data, etag, [], cached=False)


def tile_cache_clear() -> int:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM maps_tilecache")
        return int(cursor.rowcount)
