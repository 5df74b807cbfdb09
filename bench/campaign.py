"""Door-to-door campaign: visit marks from many phones at once, and how fast the wall sees them.

GridCommand: a campaign of 5,000 household targets; 20 workers post their marks concurrently
(``POST /api/v1/campaign-marks/``, token auth, keep-alive connections) to a real Daphne →
campaign_mark (the target row, the building's and the campaign's counters, two events) →
commit → wake → a wall screen subscribed to ``campaign_buildings`` and ``campaign_targets`` on
the same Daphne. Measured: the visit write (request sent → answer read) and the wall-progress
lag (request sent → the screen has the ``campaign.progress`` event of that mark).
Baseline, same run, same concurrency: a bare ``INSERT`` of one row per visit into a plain table
over 20 async psycopg connections (autocommit).

At the end the campaign's counters are checked against the number of marks (a bench that
counts wrong is not a bench). Prints p50/p95 of each and the ratio on the last line.

    .venv/bin/python bench/campaign.py            # 5,000 targets, every one marked
    .venv/bin/python bench/campaign.py --quick    # 5,000 targets, 1,000 marks (< 1 minute)

Uses its own database ``<name>_campaign`` on the same PostgreSQL (created and migrated on first run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import bench_database_url, daphne_start, database_ensure, psycopg_conninfo, screen_read, stop  # noqa: E402 - bench/ is the script folder
from latency import HttpPool, percentile  # noqa: E402 - the keep-alive client and the percentile of the latency bench

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

WORKERS = 20
BUILDINGS_X, BUILDINGS_Y, HOUSEHOLDS_PER_BUILDING = 25, 10, 20  # 250 buildings x 20 = 5,000 targets
ORIGIN = (117.000, 39.000)
STEP = 0.0004  # degrees between buildings (~34 m east-west, ~44 m north-south)
OUTCOMES = ("visited", "visited", "visited", "absent", "refused")


def setup(url: str) -> dict[str, Any]:
    """A fresh district of 250 buildings with 5,000 households in 4 grid cells, 20 workers of
    those cells and an operator (tokens), and an active campaign over all of it."""
    import psycopg

    database_ensure(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.test_settings")
    import django

    django.setup()
    from django.contrib.gis.geos import Polygon
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from command.models import Building, CampaignTarget, GridCell, Household, Team, Worker
    from command.services.accounts import user_ensure
    from command.services.campaigns import campaign_create
    from command.services.dataset import dataset_load, reference_data_ensure

    call_command("migrate", verbosity=0, interactive=False)
    reference_data_ensure()

    def box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
        poly = Polygon.from_bbox((x0, y0, x1, y1))
        poly.srid = 4326
        return poly

    width, height = BUILDINGS_X * STEP, BUILDINGS_Y * STEP
    big = GridCell(
        code="CAMP", name="bench", level=GridCell.Level.BIG, geom=box(*ORIGIN, ORIGIN[0] + width, ORIGIN[1] + height)
    )
    cells = [big]
    for i in range(2):
        for j in range(2):
            x0, y0 = ORIGIN[0] + i * width / 2, ORIGIN[1] + j * height / 2
            cells.append(
                GridCell(
                    code=f"CAMP-{i}{j}", name="bench", parent=big, geom=box(x0, y0, x0 + width / 2, y0 + height / 2)
                )
            )
    buildings = []
    households = []
    for i in range(BUILDINGS_X):
        for j in range(BUILDINGS_Y):
            x0, y0 = ORIGIN[0] + i * STEP + STEP / 4, ORIGIN[1] + j * STEP + STEP / 4
            building = Building(address=f"bench {i}-{j}", floors=6, footprint=box(x0, y0, x0 + STEP / 2, y0 + STEP / 2))
            buildings.append(building)
            households += [
                Household(building=building, unit=str(u + 1), resident_type="registered", members=1, head_name="x")
                for u in range(HOUSEHOLDS_PER_BUILDING)
            ]
    dataset_load(cells=cells, buildings=buildings, households=households, replace=True)
    team = Team.objects.first()
    tokens = []
    for n in range(WORKERS):
        user = user_ensure(
            username=f"bench-visitor-{n}", password=secrets.token_urlsafe(), role="grid_worker", team=team
        )
        Worker.objects.get(user=user).cells.set(GridCell.objects.filter(parent__code="CAMP"))
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    operator = user_ensure(username="bench-desk", password=secrets.token_urlsafe(), role="operator")
    campaign = campaign_create(
        actor_id=operator.pk, name="bench", kind="census", target_kind="households", cell_codes=["CAMP"]
    )
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_visit_baseline")
        conn.execute(
            "CREATE TABLE bench_visit_baseline (id bigserial PRIMARY KEY, target_id bigint NOT NULL,"
            " user_id int NOT NULL, client_id uuid NOT NULL, outcome text NOT NULL, marked_at timestamptz NOT NULL)"
        )
    return {
        "campaign": campaign.pk,
        "targets": list(CampaignTarget.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)),
        "tokens": tokens,
        "operator": Token.objects.get_or_create(user=operator)[0].key,
    }


async def measure_gridcommand(port: int, data: dict[str, Any], marks: int) -> dict[str, Any]:
    import websockets

    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    statuses: dict[int, int] = {}
    target_seq: dict[int, int] = {}  # target id -> seq of its campaign_target.updated event
    progress_at: dict[int, float] = {}  # seq of a campaign.progress event -> when the screen had it
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/live/",
        additional_headers={"Authorization": f"Token {data['operator']}"},
        compression=None,
        proxy=None,
        max_queue=None,
    )
    await ws.send(json.dumps({"type": "subscribe", "layers": ["campaign_buildings", "campaign_targets"]}))

    def on_message(message: dict[str, Any], now: float) -> None:
        if message.get("type") == "event":
            if message["kind"] == "campaign.progress":
                progress_at[message["seq"]] = now
            elif message["kind"] == "campaign_target.updated":
                target_seq[int(message["object_id"])] = message["seq"]
        elif message.get("type") == "error" or (message.get("type") == "resync" and message.get("reason") != "initial"):
            screen_problems.append(f"{message.get('type')} {message.get('reason', '')}".strip())

    # The screen acks as the wall's live.js does (every heartbeat and every 100 events): acking
    # only heartbeats let the server count it REALTIME_MAX_UNACKED_BYTES behind and close it.
    screen_problems: list[str] = []

    async def screen() -> None:
        await screen_read(ws, on_message, acks=True, ack_every=100)

    screen_task = asyncio.create_task(screen())
    await asyncio.sleep(0.5)
    targets = data["targets"][:marks]

    async def worker(n: int) -> None:
        pool = HttpPool(port, size=1)
        await pool.open()
        token = data["tokens"][n]
        for k, target in enumerate(targets[n::WORKERS]):
            body = {"client_id": str(uuid.uuid4()), "target": target, "outcome": OUTCOMES[(target + k) % len(OUTCOMES)]}
            sent[target] = time.perf_counter()
            statuses[target] = await pool.post_json("/api/v1/campaign-marks/", body, token)
            answered[target] = time.perf_counter()
        pool.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    elapsed = time.perf_counter() - start
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline and not all(
        t in target_seq and target_seq[t] + 1 in progress_at for t in targets
    ):
        await asyncio.sleep(0.05)
    await ws.close()
    screen_task.cancel()
    writes = [(answered[t] - sent[t]) * 1000 for t in targets]
    lags = [
        (progress_at[target_seq[t] + 1] - sent[t]) * 1000
        for t in targets
        if t in target_seq and target_seq[t] + 1 in progress_at
    ]
    return {
        "writes": writes,
        "lags": lags,
        "missing": len(targets) - len(lags),
        "screen": ", ".join(screen_problems) or "no resync after the first",
        "errors": sum(1 for s in statuses.values() if s != 201),
        "rate": len(targets) / elapsed,
    }


async def measure_baseline(conninfo: str, marks: int) -> dict[str, Any]:
    import psycopg

    latencies: list[float] = []

    async def worker(n: int) -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            for k in range(n, marks, WORKERS):
                started = time.perf_counter()
                await conn.execute(
                    "INSERT INTO bench_visit_baseline (target_id, user_id, client_id, outcome, marked_at) "
                    "VALUES (%s, %s, %s, %s, now())",
                    [k, n, uuid.uuid4(), OUTCOMES[k % len(OUTCOMES)]],
                )
                latencies.append((time.perf_counter() - started) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    return {"writes": latencies, "rate": marks / (time.perf_counter() - start)}


def counters_check(campaign_id: int, marks: int) -> str:
    from command.models import Campaign

    c = Campaign.objects.get(pk=campaign_id)
    ok = c.total == c.targets.count() and c.pending == c.total - marks and c.visited + c.absent + c.refused == marks
    return (
        f"counters {'match' if ok else 'DO NOT MATCH'} the marks: total {c.total}, visited {c.visited}, "
        f"absent {c.absent}, refused {c.refused}, pending {c.pending}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 of the 5,000 targets marked (under a minute)")
    parser.add_argument("--marks", type=int, default=None, help="how many targets to mark (default: all 5,000)")
    args = parser.parse_args()
    url = bench_database_url("campaign")
    os.environ["DATABASE_URL"] = url
    os.environ["CHANNEL_PREFIX"] = f"gcbench{os.getpid()}"
    data = setup(url)
    marks = args.marks or (1000 if args.quick else len(data["targets"]))
    print(
        f"bench/campaign.py: {len(data['targets'])} targets, {WORKERS} workers posting {marks} marks concurrently",
        flush=True,
    )
    process, port = daphne_start(
        url,
        name="bench-campaign",
        env={"CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"], "FIELD_API_RATE_INCIDENT_ACTIONS": "100000/s"},
    )
    try:
        ours = asyncio.run(measure_gridcommand(port, data, marks))
    finally:
        stop(process)
    base = asyncio.run(measure_baseline(psycopg_conninfo(url), marks))
    print(counters_check(data["campaign"], marks))
    w50, w95 = percentile(ours["writes"], 50), percentile(ours["writes"], 95)
    l50, l95 = percentile(ours["lags"], 50), percentile(ours["lags"], 95)
    b50, b95 = percentile(base["writes"], 50), percentile(base["writes"], 95)
    rate, errors, missing = ours["rate"], ours["errors"], ours["missing"]
    print(
        f"visit write (POST -> answer):  p50 {w50:7.1f} ms  p95 {w95:7.1f} ms  {rate:5.0f} marks/s ({errors} not 201)"
    )
    print(
        f"wall progress lag (POST -> wall): p50 {l50:7.1f} ms  p95 {l95:7.1f} ms"
        f"  ({missing} progress events missing; {ours['screen']})"
    )
    print(f"bare insert (baseline):        p50 {b50:7.1f} ms  p95 {b95:7.1f} ms  {base['rate']:6.0f} rows/s")
    print(f"wall lag p95 / bare insert p95: {l95 / b95:.2f}x")
    print(f"ratio visit write p95 / bare insert p95: {w95 / b95:.2f}x")
    return 0 if not ours["errors"] and not ours["missing"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
