"""Report ingest throughput: GridCommand against a bare SQL baseline, in the same run.

GridCommand: 16 concurrent clients (keep-alive HTTP/1.1, token auth) ``POST /api/v1/reports/``
JSON to one real Daphne process → report_submit (grid cell by ST_Covers, nearest building,
routing, incident grouping, two events) → commit → wake on the channel layer.
Baseline: 16 concurrent async psycopg connections, each
``INSERT ... SELECT ... ST_Contains`` (the cell) ``+ pg_notify`` per report.

Both send the same reports (random points in a 10 x 10 grid of 0.001° cells, with 400
buildings, 11 categories). Prints reports/s of each and the ratio (app / baseline) on the last
line. Goal: at least 200 reports/s on 2 cores and at least 0.25 of the baseline.

    .venv/bin/python bench/ingest.py            # 3000 reports per side
    .venv/bin/python bench/ingest.py --quick    # 600 reports per side (< 1 minute)

Uses its own database ``<name>_bench_ingest`` on the same PostgreSQL (created, migrated and
emptied of reports by every run). Starts the private PostgreSQL and Redis if they are down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import bench_database_url, daphne_start, database_ensure, psycopg_conninfo, stop  # noqa: E402 - bench/ is the script folder

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

CLIENTS = 16
GRID_ORIGIN = (117.000, 39.000)
GRID_CELLS = 10  # 10 x 10 cells of 0.001 degrees
CELL_DEG = 0.001
BASELINE_TABLE = "bench_ingest_baseline"


def setup_database(url: str) -> list[str]:
    """Create, migrate and fill the bench database; return one API token per client."""
    import psycopg

    database_ensure(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.test_settings")
    import django

    django.setup()
    from django.contrib.gis.geos import Polygon
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from command.models import Building, GridCell, Team
    from command.services.accounts import user_ensure
    from command.services.dataset import dataset_load, reference_data_ensure

    call_command("migrate", verbosity=0, interactive=False)
    reference_data_ensure()
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE command_reportphoto, command_report, command_incident, command_event, "
            "command_locationping RESTART IDENTITY CASCADE"
        )
        conn.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        conn.execute(
            f"CREATE TABLE {BASELINE_TABLE} (id bigserial PRIMARY KEY, client_id uuid UNIQUE NOT NULL, "
            "category text NOT NULL, location geometry(Point, 4326) NOT NULL, grid_cell_id bigint, "
            "note text NOT NULL, received_at timestamptz NOT NULL)"
        )
    if not GridCell.objects.filter(code="BI-00-00").exists():
        x0, y0 = GRID_ORIGIN
        cells = []
        buildings = []
        for i in range(GRID_CELLS):
            for j in range(GRID_CELLS):
                poly = Polygon.from_bbox(
                    (x0 + i * CELL_DEG, y0 + j * CELL_DEG, x0 + (i + 1) * CELL_DEG, y0 + (j + 1) * CELL_DEG)
                )
                poly.srid = 4326
                cells.append(GridCell(code=f"BI-{i:02d}-{j:02d}", name=f"bench {i},{j}", geom=poly))
                for k in range(4):  # four 10 m buildings per cell
                    bx = x0 + i * CELL_DEG + 0.0002 + 0.0004 * (k % 2)
                    by = y0 + j * CELL_DEG + 0.0002 + 0.0004 * (k // 2)
                    footprint = Polygon.from_bbox((bx, by, bx + 0.00012, by + 0.00009))
                    footprint.srid = 4326
                    buildings.append(Building(address=f"bench {i},{j},{k}", footprint=footprint))
        dataset_load(cells=cells, buildings=buildings)
    teams = list(Team.objects.filter(is_field_team=True))
    tokens = []
    for n in range(CLIENTS):
        user = user_ensure(
            username=f"bench-ingest-{n}",
            password=secrets.token_urlsafe(),
            role="grid_worker",
            team=teams[n % len(teams)],
        )
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return tokens


def make_reports(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    categories = [
        "road_damage",
        "sanitation",
        "elevator_fault",
        "parking_dispute",
        "neighbour_dispute",
        "other",
        "fire_hazard",
        "falling_object",
        "traffic_accident",
        "gas_alarm",
        "emergency_call",
    ]
    x0, y0 = GRID_ORIGIN
    span = GRID_CELLS * CELL_DEG
    reports = []
    for _ in range(count):
        # 5 % land just outside the grid ("outside the grid" path).
        pad = 0.0005 if rng.random() < 0.05 else 0.0
        reports.append(
            {
                "client_id": str(uuid.uuid4()),
                "category": rng.choice(categories),
                "location": {
                    "type": "Point",
                    "coordinates": [
                        round(x0 - pad + rng.random() * (span + 2 * pad), 7),
                        round(y0 - pad + rng.random() * (span + 2 * pad), 7),
                    ],
                },
                "accuracy": round(rng.uniform(3, 30), 1),
                "note": "bench",
                "client_time": "2026-11-28T10:00:00+08:00",
            }
        )
    return reports


# --- GridCommand side -------------------------------------------------------------------------------


def start_daphne(url: str) -> tuple[subprocess.Popen[bytes], int]:
    return daphne_start(
        url, name="bench-ingest", env={"CHANNEL_PREFIX": f"gcbenchingest{os.getpid()}", "DB_POOL_MAX": "20"}
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_client(port: int, token: str, queue: asyncio.Queue[dict[str, Any]], codes: dict[int, int]) -> None:
    """A minimal keep-alive HTTP/1.1 client: as little client-side overhead as possible."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                report = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = json.dumps(report).encode()
            writer.write(
                b"POST /api/v1/reports/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Authorization: Token {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            codes[status] = codes.get(status, 0) + 1
    finally:
        writer.close()


async def run_app(ports: list[int], tokens: list[str], reports: list[dict[str, Any]]) -> tuple[float, dict[int, int]]:
    """The clients share one queue of reports; client n talks to server n mod len(ports) (what a
    round-robin proxy in front of several Daphne processes does)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for r in reports:
        queue.put_nowait(r)
    codes: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(
        *(http_client(ports[n % len(ports)], tokens[n % len(tokens)], queue, codes) for n in range(CLIENTS))
    )
    return time.perf_counter() - started, codes


# --- the baseline -------------------------------------------------------------------------------------

BASELINE_SQL = f"""
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g),
ins AS (
  INSERT INTO {BASELINE_TABLE} (client_id, category, location, grid_cell_id, note, received_at)
  SELECT %(client_id)s, %(category)s, p.g,
         (SELECT c.id FROM command_gridcell c WHERE c.level = 'cell' AND ST_Contains(c.geom, p.g) LIMIT 1),
         %(note)s, now()
  FROM p
  RETURNING id, grid_cell_id
)
SELECT pg_notify('bench_ingest', json_build_object('id', id, 'cell', grid_cell_id)::text) FROM ins
"""


async def baseline_client(conn: Any, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        try:
            r = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        lon, lat = r["location"]["coordinates"]
        await conn.execute(
            BASELINE_SQL,
            {"lon": lon, "lat": lat, "client_id": r["client_id"], "category": r["category"], "note": r["note"]},
        )


async def run_baseline(info: str, reports: list[dict[str, Any]]) -> float:
    """The clients' connections are opened before the clock starts, as the app's pool is."""
    import psycopg

    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for r in reports:
        queue.put_nowait(r)
    conns = [await psycopg.AsyncConnection.connect(info, autocommit=True) for _ in range(CLIENTS)]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(baseline_client(conn, queue) for conn in conns))
        return time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


def main() -> None:
    global CLIENTS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="600 reports per side instead of 3000")
    parser.add_argument("--reports", type=int, default=None, help="reports per side")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients (default 16)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Daphne processes (the scale-out of DESIGN.md); clients are spread round-robin over them",
    )
    args = parser.parse_args()
    count = args.reports or (600 if args.quick else 3000)
    CLIENTS = args.clients

    from command import localstack

    if "command.settings" in sys.modules:
        raise SystemExit("command.settings was imported before the bench chose its database")
    if not os.environ.get("DATABASE_URL"):
        subprocess.run([sys.executable, "-m", "command.localstack", "start"], cwd=BASE_DIR, check=True)
    del localstack
    url = bench_database_url("bench_ingest")
    # Before anything imports command.settings, which reads DATABASE_URL once.
    os.environ["DATABASE_URL"] = url
    tokens = setup_database(url)
    info = psycopg_conninfo(url)

    # Same workload shape on both sides, fresh ids on each.
    app_reports = make_reports(count, seed=1)
    base_reports = make_reports(count, seed=1)
    for r in base_reports:
        r["client_id"] = str(uuid.uuid4())

    servers = [start_daphne(url) for _ in range(args.workers)]
    ports = [port for _process, port in servers]
    try:
        asyncio.run(run_app(ports, tokens, make_reports(32 * len(ports), seed=2)))  # warm up: imports, pool
        cpu_before = sum(cpu_seconds(p.pid) for p, _port in servers)
        app_seconds, codes = asyncio.run(run_app(ports, tokens, app_reports))
        app_cpu_ms = (sum(cpu_seconds(p.pid) for p, _port in servers) - cpu_before) / count * 1000
    finally:
        for process, _port in servers:
            stop(process)
    asyncio.run(run_baseline(info, make_reports(32, seed=3)))  # warm up
    base_seconds = asyncio.run(run_baseline(info, base_reports))

    import psycopg

    with psycopg.connect(info) as conn:
        ids = [r["client_id"] for r in app_reports]
        stored, in_cell = conn.execute(
            "SELECT count(*), count(grid_cell_id) FROM command_report WHERE client_id = ANY(%s::uuid[])", [ids]
        ).fetchone() or (0, 0)
        base_stored, base_in_cell = conn.execute(
            f"SELECT count(*), count(grid_cell_id) FROM {BASELINE_TABLE} WHERE client_id = ANY(%s::uuid[])",
            [[r["client_id"] for r in base_reports]],
        ).fetchone() or (0, 0)
    if codes.get(201, 0) != count or stored != count or base_stored != count:
        raise SystemExit(f"not every report was stored: http {codes}, app rows {stored}, baseline rows {base_stored}")

    app_rate = count / app_seconds
    base_rate = count / base_seconds
    print(
        f"reports per side: {count}, concurrent clients: {CLIENTS}, Daphne processes: {args.workers}, "
        f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}"
    )
    print(f"gridcommand POST /api/v1/reports/: {app_rate:.1f} reports/s ({in_cell} of {count} in a cell)")
    print(f"gridcommand Daphne CPU per report: {app_cpu_ms:.2f} ms (PostgreSQL and Redis not included)")
    print(f"baseline INSERT ... ST_Contains + pg_notify: {base_rate:.1f} reports/s ({base_in_cell} in a cell)")
    met = app_rate >= 200 and app_rate / base_rate >= 0.25
    print(f"goal: >= 200 reports/s and ratio >= 0.25: {'met' if met else 'NOT met'}")
    print(f"ratio gridcommand/baseline: {app_rate / base_rate:.3f}")


if __name__ == "__main__":
    main()
