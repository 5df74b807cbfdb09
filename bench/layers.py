"""Map-layer benchmark: the GeoJSON-by-bbox endpoint and the vector-tile endpoint, each beside
the bare SQL measured in the same run on the same database.

    .venv/bin/python bench/layers.py [--quick] [--database-url postgres://...]

Uses the scale data set in its own database (default ``gc_bench`` on the private cluster); the
first run creates it (``migrate`` + ``seed --buildings 50000 --incidents 200000``, a few minutes),
later runs reuse it.

It starts its own Daphne on that database, signs in with an API token of a bench operator, and
prints, per feature count and per tile zoom, the endpoint time, the bare-SQL time and their ratio.
The last line carries the two headline ratios.

Beside the tile endpoint it measures a floor: a second Daphne serving ``tile_floor_app`` below,
which answers the same tile with the same SQL on the same async driver and nothing else (no
viewer, policy, cache or headers). Its ratio to the bare SQL is what Daphne and one hop more
cost on this machine, before any of the endpoint's own work.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def default_bench_url() -> str:
    from command import localstack

    url = localstack.default_database_url()
    return url.replace("/gridcommand?", "/gc_bench?")


SCALE_BUILDINGS, SCALE_INCIDENTS = 50000, 200000


def ensure_bench_database(database_url: str) -> None:
    """Create the bench database and load the scale data set into it when missing (one-time,
    ~4 minutes here; later runs reuse it). The demo database is never touched."""
    import psycopg

    from command.settings import database_from_url

    db = database_from_url(database_url)
    conninfo: dict[str, Any] = {"dbname": db["NAME"], "user": db["USER"] or None, "host": db["HOST"] or None}
    if db["PORT"]:
        conninfo["port"] = db["PORT"]
    conninfo = {k: v for k, v in conninfo.items() if v is not None}
    try:
        with psycopg.connect(**conninfo) as conn:
            row = conn.execute("SELECT to_regclass('command_building') IS NOT NULL").fetchone()
            count = conn.execute("SELECT count(*) FROM command_building").fetchone() if row and row[0] else (0,)
    except psycopg.OperationalError:
        print(f"bench: creating database {db['NAME']}", flush=True)
        with psycopg.connect(**{**conninfo, "dbname": "postgres"}, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
        count = (0,)
    if count and count[0] >= SCALE_BUILDINGS:
        return
    env = {**os.environ, "DATABASE_URL": database_url, "GRIDCOMMAND_TESTING": "1", "DJANGO_SECURE": "0"}
    manage = [sys.executable, "manage.py"]
    print("bench: loading the scale data set (one-time, a few minutes)", flush=True)
    subprocess.run([*manage, "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
    subprocess.run(
        [*manage, "seed", "--buildings", str(SCALE_BUILDINGS), "--incidents", str(SCALE_INCIDENTS)],
        cwd=BASE_DIR,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
    os.environ.setdefault("DJANGO_SECURE", "0")
    os.environ["DB_POOL_MAX"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
    import django

    django.setup()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daphne(
    database_url: str, port: int, target: str = "command.asgi:application", cwd: Path = BASE_DIR
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "command.settings",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production",
        "DJANGO_SECURE": "0",
        "CHANNEL_PREFIX": f"gcbench{os.getpid()}",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MIN": "2",
        "DB_POOL_MAX": "20",  # the bench process itself runs without a pool
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), target],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("daphne did not start")


_floor_conn: Any = None


async def tile_floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor of the tile endpoint: ``GET /maps/tiles/<layer>/<z>/<x>/<y>.pbf`` answered with
    ``tile_sql``'s bytes for the layer's public fields, run on one async psycopg connection with
    client-side binding (the endpoint's render driver); ``/healthz`` answers 200. Nothing else."""
    global _floor_conn
    if scope["type"] != "http":
        return
    if _floor_conn is None:
        import django

        django.setup()
        import psycopg

        from command.db_async import conninfo

        _floor_conn = await psycopg.AsyncConnection.connect(**conninfo(), autocommit=True)
    from psycopg import AsyncClientCursor

    from command.layer_queries import tile_sql
    from command.layers import LAYERS, LayerGrant

    body = b"ok"
    if scope["path"] != "/healthz":
        name, z, x, y = scope["path"].removeprefix("/maps/tiles/").removesuffix(".pbf").split("/")
        layer = LAYERS[name]
        sql, params = tile_sql(LayerGrant(layer, layer.public_fields, False), int(z), int(x), int(y))
        async with AsyncClientCursor(_floor_conn) as cursor:
            await cursor.execute(sql, params)
            row = await cursor.fetchone()
        body = bytes(row[0]) if row and row[0] is not None else b""
    headers = [(b"content-type", b"application/vnd.mapbox-vector-tile"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bench_token() -> str:
    from django.conf import settings
    from rest_framework.authtoken.models import Token

    from command.services.accounts import user_ensure

    if settings.DATABASES["default"]["NAME"] == "gridcommand":
        raise SystemExit("bench/layers.py refuses to create its login in the demo database")
    password = secrets.token_urlsafe()
    user = user_ensure(username="bench-layers", password=password, role="operator")
    token, _created = Token.objects.get_or_create(user=user)
    return str(token.key)


def bbox_for(count: int, extent: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A square around the data's centre holding at least ``count`` buildings."""
    from django.db import connection

    cx, cy = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    lo, hi = 0.0, max(extent[2] - extent[0], extent[3] - extent[1])
    for _ in range(25):
        mid = (lo + hi) / 2
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM command_building WHERE footprint && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
                [cx - mid / 2, cy - mid / 2, cx + mid / 2, cy + mid / 2],
            )
            n = cursor.fetchone()[0]
        if n >= count:
            hi = mid
        else:
            lo = mid
    return cx - hi / 2, cy - hi / 2, cx + hi / 2, cy + hi / 2


def interleaved(fns: tuple[Any, ...], samples: int) -> tuple[list[float], list[Any]]:
    """Median time of each function, sampled in turn (bare, ours, endpoint, bare, ...) so that
    load from other processes on the machine falls on all of them alike."""
    results = [fn() for fn in fns]  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(samples):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], results


def bench_geojson(port: int, token: str, samples: int) -> float:
    from django.db import connection

    from command.layer_queries import FeatureQuery, feature_collection_sql, layer_extent
    from command.layers import LAYERS, LayerGrant

    extent = layer_extent("buildings")
    assert extent, "no buildings: seed the bench database first"
    layer = LAYERS["buildings"]
    grant = LayerGrant(layer, layer.public_fields, False)
    props = ", ".join(f"'{f}', t.{f}" for f in grant.fields)
    ratio = 0.0
    http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for count in (500, 5000, 20000):
        bbox = bbox_for(count, extent)
        bare_sql = (
            "SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(json_build_object("
            "'type', 'Feature', 'id', t.id, 'geometry', ST_AsGeoJSON(t.footprint, 7)::json, "
            f"'properties', json_build_object({props}))))::text "
            "FROM (SELECT * FROM command_building WHERE footprint && ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
            "AND ST_Intersects(footprint, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) ORDER BY id LIMIT %s) t"
        )

        def bare(bare_sql: str = bare_sql, bbox: tuple = bbox, count: int = count) -> int:
            with connection.cursor() as cursor:
                cursor.execute(bare_sql, [*bbox, *bbox, count])
                return len(cursor.fetchone()[0])

        ours_sql, ours_params = feature_collection_sql(grant, FeatureQuery(bbox=bbox, limit=count))

        def ours(sql: str = ours_sql, params: dict = ours_params) -> int:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return len(cursor.fetchone()[0])

        path = "/maps/layers/buildings.geojson?bbox={},{},{},{}&limit={}".format(*bbox, count)

        def endpoint(path: str = path) -> int:
            http_conn.request("GET", path, headers={"Authorization": f"Token {token}"})
            response = http_conn.getresponse()
            body = response.read()
            assert response.status == 200, body[:300]
            return len(body)

        (t_bare, t_ours, t_endpoint), sizes = interleaved((bare, ours, endpoint), samples)
        size_endpoint = sizes[2]
        ratio = t_endpoint / t_bare
        print(
            f"geojson buildings n={count:>6}: bare json_agg {t_bare * 1000:8.1f} ms | endpoint SQL "
            f"{t_ours * 1000:8.1f} ms | HTTP endpoint {t_endpoint * 1000:8.1f} ms | "
            f"{size_endpoint / 1e6:6.2f} MB | ratio endpoint/bare {ratio:.2f}x"
        )
    return ratio


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 1 << z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def pick_tiles(total: int) -> list[tuple[int, int, int]]:
    """``total`` tiles at z12-z16 under randomly drawn incidents (dense areas weigh as they do
    for users): every such tile of z12-z14 (the district spans only a few), the rest split
    between z15 and z16."""
    from django.db import connection

    rng = random.Random(42)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_X(location), ST_Y(location) FROM command_incident "
            "TABLESAMPLE SYSTEM (5) REPEATABLE (42) ORDER BY id LIMIT 5000"
        )
        points = cursor.fetchall()
    rng.shuffle(points)
    tiles: list[tuple[int, int, int]] = []
    for z in (12, 13, 14):
        tiles += sorted({(z, *tile_of(lon, lat, z)) for lon, lat in points})
    for z in (15, 16):
        quota = (total - len(tiles)) // 2 if z == 15 else total - len(tiles)  # z16 takes what z15 lacks
        seen: set[tuple[int, int, int]] = set()
        for lon, lat in points:
            if len(seen) >= quota:
                break
            seen.add((z, *tile_of(lon, lat, z)))
        tiles += sorted(seen)
    return tiles


def bench_tiles(
    port: int, floor_port: int, token: str, layer_name: str, tiles: list[tuple[int, int, int]]
) -> tuple[float, float]:
    from django.db import connection

    from command.layer_queries import tile_sql
    from command.layers import LAYERS, LayerGrant
    from maps.tiles import tile_cache_clear

    layer = LAYERS[layer_name]
    grant = LayerGrant(layer, layer.public_fields, False)
    tile_cache_clear()
    http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    floor_conn = http.client.HTTPConnection("127.0.0.1", floor_port, timeout=120)
    bare_t: list[float] = []
    floor_t: list[float] = []
    cold_t: list[float] = []
    warm_t: list[float] = []
    sizes: list[int] = []
    for z, x, y in tiles:
        sql, params = tile_sql(grant, z, x, y)
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            data = bytes(cursor.fetchone()[0])
        bare_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        floor_conn.request("GET", f"/maps/tiles/{layer_name}/{z}/{x}/{y}.pbf")
        floor_response = floor_conn.getresponse()
        floor_body = floor_response.read()
        floor_t.append(time.perf_counter() - t0)
        assert floor_response.status == 200 and abs(len(floor_body) - len(data)) <= 0.05 * max(len(data), 1)
        for bucket in (cold_t, warm_t):
            t0 = time.perf_counter()
            http_conn.request(
                "GET", f"/maps/tiles/{layer_name}/{z}/{x}/{y}.pbf", headers={"Authorization": f"Token {token}"}
            )
            response = http_conn.getresponse()
            body = response.read()
            bucket.append(time.perf_counter() - t0)
            assert response.status == 200, body[:300]
        # the same rows; ST_AsMVT's bytes may differ by row order (parallel scans), not by content
        assert abs(len(body) - len(data)) <= 0.05 * max(len(data), 1), (z, x, y, len(body), len(data))
        sizes.append(len(body))
    p50 = statistics.median

    def line(label: str, idx: list[int]) -> str:
        bare, floor, cold = (p50([t[i] for i in idx]) for t in (bare_t, floor_t, cold_t))
        return (
            f"tiles {layer_name} {label}: {len(idx):3d} tiles | p50 bare ST_AsMVT {bare * 1000:7.1f} ms"
            f" | floor {floor * 1000:7.1f} ms | endpoint (cache miss) {cold * 1000:7.1f} ms"
            f" | cached {p50([warm_t[i] for i in idx]) * 1000:6.1f} ms"
            f" | avg {statistics.mean([sizes[i] for i in idx]) / 1024:6.1f} KB"
            f" | max {max(sizes[i] for i in idx) / 1024:6.1f} KB"
            f" | ratio {cold / bare:.2f}x (floor {floor / bare:.2f}x)"
        )

    for z in range(12, 17):
        idx = [i for i, t in enumerate(tiles) if t[0] == z]
        if idx:
            print(line(f"z{z}", idx))
    print(line("all", list(range(len(tiles)))))
    return p50(cold_t) / p50(bare_t), p50(floor_t) / p50(bare_t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "command.localstack", "start"], cwd=BASE_DIR, check=True)
    os.environ.setdefault("GRIDCOMMAND_TESTING", "1")  # the settings need no secret key for this
    os.environ.setdefault("DJANGO_SECURE", "0")
    database_url = args.database_url or default_bench_url()
    # before anything imports the settings: they read DATABASE_URL once, and the bench login
    # must go to the bench database, never to the demo one
    os.environ["DATABASE_URL"] = database_url
    ensure_bench_database(database_url)
    setup_django(database_url)
    token = bench_token()
    port = free_port()
    daphne = start_daphne(database_url, port)
    floor_port = free_port()
    floor = start_daphne(database_url, floor_port, "layers:tile_floor_app", BASE_DIR / "bench")
    try:
        samples = 3 if args.quick else 9
        every = 5 if args.quick else 1  # --quick: every 5th of the same 300 tiles, same zoom mix
        geojson_ratio = bench_geojson(port, token, samples)
        tiles = pick_tiles(300)[::every]
        tile_ratio, floor_ratio = bench_tiles(port, floor_port, token, "incidents", tiles)
        bench_tiles(port, floor_port, token, "buildings", tiles)
    finally:
        for process in (daphne, floor):
            process.terminate()
            process.wait(10)
    print(
        f"RATIO geojson@20000 endpoint/bare json_agg = {geojson_ratio:.2f}x (goal <= 1.3); "
        f"incident tiles p50 endpoint/bare ST_AsMVT = {tile_ratio:.2f}x (goal <= 1.15; "
        f"Daphne + the SQL alone: {floor_ratio:.2f}x)"
    )


if __name__ == "__main__":
    main()
