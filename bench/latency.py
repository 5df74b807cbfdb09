"""Report-to-screen latency: GridCommand against a bare baseline, in the same run.

GridCommand: ``POST /api/v1/reports/`` (token auth) on a real Daphne → report_submit → commit →
wake through the channel layer → the same Daphne's ``/ws/live/`` consumers → N websocket screens.
Baseline: async psycopg ``INSERT`` + ``pg_notify`` → a LISTENing process → raw ``websockets``
broadcast to the same N clients.

Latency is measured from just before the write is sent to when a screen has the message parsed,
for every (report, screen) pair, at a steady rate and in a burst. Prints p50/p95 of both and
the ratio; the goal is p95 within 3x of the baseline.

    .venv/bin/python bench/latency.py            # 20 screens, 5/s for 30 s, 50/s for 4 s, both layers
    .venv/bin/python bench/latency.py --quick    # shorter, the configured channel layer only

Uses its own database ``<name>_bench`` on the same PostgreSQL (created and migrated on first run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import (  # noqa: E402 - bench/ is the script folder
    GRID_BBOX,
    HttpPool,
    Screens,
    baseline_start,
    baseline_write,
    bench_database_url,
    daphne_start,
    database_ensure,
    paced,
    percentile,
    psycopg_conninfo,
    report_body,
    report_key,
    screen_connect,
    stop,
)

__all__ = ["HttpPool", "percentile"]  # bench/campaign.py and bench/alarm.py take them from here

# The bench runs with the test settings (plain HTTP on 127.0.0.1, no production secret needed).
os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
BASELINE = "baseline (pg_notify+ws)"


# --- set-up ---------------------------------------------------------------------------------------


def bench_prepare() -> tuple[str, dict[str, str]]:
    """The run's set-up shared by the real-time benches: the bench database (its URL set as
    ``DATABASE_URL`` before anything reads the settings), a channel prefix of this run's own
    (its wakes reach its Daphnes, no one else's), and the logins' tokens."""
    url = bench_database_url("bench")
    os.environ["DATABASE_URL"] = url
    os.environ["CHANNEL_PREFIX"] = f"gcbench{os.getpid()}"
    return url, setup_database(url)


def setup_database(url: str) -> dict[str, str]:
    """Create and migrate the bench database; return the logins' credentials."""
    import psycopg

    database_ensure(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.test_settings")
    import django

    django.setup()
    from django.contrib.gis.geos import Polygon
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from command.models import GridCell
    from command.services.accounts import user_ensure
    from command.services.dataset import reference_data_ensure
    from command.services.places import grid_cell_save

    call_command("migrate", verbosity=0, interactive=False)
    reference_data_ensure()
    if not GridCell.objects.filter(code="BENCH").exists():
        big = Polygon.from_bbox(GRID_BBOX)
        big.srid = 4326
        grid_cell_save(code="BENCH", name="bench", geom=big, level=GridCell.Level.BIG)
    from command.models import Team

    worker = user_ensure(
        username="bench-worker", password=secrets.token_urlsafe(), role="grid_worker", team=Team.objects.first()
    )
    operator = user_ensure(username="bench-operator", password=secrets.token_urlsafe(), role="operator")
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
    return {
        "worker_token": Token.objects.get_or_create(user=worker)[0].key,
        "operator_token": Token.objects.get_or_create(user=operator)[0].key,
    }


def start_daphne(url: str, backend: str) -> tuple[subprocess.Popen[bytes], int]:
    return daphne_start(
        url,
        name="bench-latency",
        env={"CHANNEL_LAYER_BACKEND": backend, "CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"]},
    )


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Run:
    sent_at: dict[str, float] = field(default_factory=dict)  # key -> perf_counter before the write
    answered: dict[str, float] = field(default_factory=dict)  # key -> write acknowledged (HTTP answer/commit)
    received: list[dict[str, float]] = field(default_factory=list)  # per screen: key -> perf_counter
    errors: list[str] = field(default_factory=list)

    def latencies_ms(self) -> list[float]:
        return [
            (t - self.sent_at[key]) * 1000
            for screen in self.received
            for key, t in screen.items()
            if key in self.sent_at
        ]

    def missing(self) -> int:
        return sum(1 for screen in self.received for key in self.sent_at if key not in screen)


async def run_scenario(
    *, rate: float, count: int, connect_screens: Any, write: Any, extract: Any, acks: bool, screens: int
) -> Run:
    run = Run()
    opened = await Screens.open(connect_screens, screens, extract, acks=acks)
    run.received = opened.sinks

    async def one(_i: int) -> None:
        key = uuid.uuid4().hex
        run.sent_at[key] = time.perf_counter()
        try:
            await write(key)
            run.answered[key] = time.perf_counter()
        except Exception as exc:
            run.errors.append(f"{type(exc).__name__}: {exc}")

    await paced(rate, count, one)
    await opened.wait(run.sent_at)
    await opened.close()
    return run


# The names bench/soak.py takes from here (bench/benchlib.py holds them).
_report_body, _report_key = report_body, report_key


def _screen_connector(port: int, token: str) -> Any:
    async def connect() -> Any:
        return await screen_connect(f"ws://127.0.0.1:{port}/ws/live/", token=token, layers=["incidents", "reports"])

    return connect


async def measure_http(
    port: int, tokens: dict[str, str], rate: float, count: int, screens: int, screens_port: int | None = None
) -> Run:
    """Phones POST to /api/v1/reports/ on Daphne; operators' screens on the same Daphne (or on
    ``screens_port``, a second Daphne process, as behind a proxy at scale)."""
    import random

    pool = HttpPool(port, size=8)
    await pool.open()
    rng = random.Random(7)

    async def write(key: str) -> None:
        status = await pool.post_json("/api/v1/reports/", _report_body(rng, key), tokens["worker_token"])
        if status != 201:
            raise RuntimeError(f"HTTP {status}")

    try:
        return await run_scenario(
            rate=rate,
            count=count,
            connect_screens=_screen_connector(screens_port or port, tokens["operator_token"]),
            write=write,
            extract=_report_key,
            acks=True,
            screens=screens,
        )
    finally:
        pool.close()


async def measure_service(port: int, tokens: dict[str, str], rate: float, count: int, screens: int) -> Run:
    """The same reports through report_submit in this process (no HTTP): service, commit, wake,
    Redis, Daphne, screens. The difference to measure_http is the HTTP request path."""
    import random

    from django.contrib.auth import get_user_model
    from django.contrib.gis.geos import Point
    from django.db import connection

    from command.models import Category
    from command.services.reports import report_submit

    rng = random.Random(7)

    def lookups() -> tuple[dict[str, Category], int]:
        try:
            worker = get_user_model().objects.values_list("pk", flat=True).get(username="bench-worker")
            return {c.code: c for c in Category.objects.all()}, worker
        finally:
            connection.close()

    categories, worker_id = await asyncio.to_thread(lookups)

    def submit(body: dict[str, Any]) -> None:
        try:
            report_submit(
                reporter_id=worker_id,
                client_id=uuid.UUID(body["client_id"]),
                category=categories[body["category"]],
                location=Point(body["location"]["coordinates"][0], body["location"]["coordinates"][1], srid=4326),
                accuracy_m=body["accuracy"],
                note=body["note"],
            )
        finally:
            connection.close()  # back to the pool

    async def write(key: str) -> None:
        await asyncio.to_thread(submit, _report_body(rng, key))

    return await run_scenario(
        rate=rate,
        count=count,
        connect_screens=_screen_connector(port, tokens["operator_token"]),
        write=write,
        extract=_report_key,
        acks=True,
        screens=screens,
    )


async def measure_baseline(port: int, conninfo: str, rate: float, count: int, screens: int) -> Run:
    import psycopg

    connections = [await psycopg.AsyncConnection.connect(conninfo) for _ in range(8)]
    idle: asyncio.Queue[Any] = asyncio.Queue()
    for conn in connections:
        idle.put_nowait(conn)

    async def connect() -> Any:
        return await screen_connect(f"ws://127.0.0.1:{port}")

    async def write(key: str) -> None:
        conn = await idle.get()
        try:
            await baseline_write(conn, json.dumps({"key": key, "note": "bench"}))
        finally:
            idle.put_nowait(conn)

    try:
        return await run_scenario(
            rate=rate,
            count=count,
            connect_screens=connect,
            write=write,
            extract=lambda message: str(message["key"]),
            acks=False,
            screens=screens,
        )
    finally:
        for conn in connections:
            await conn.close()


def summary(run: Run) -> tuple[float, float, float]:
    values = run.latencies_ms()
    return percentile(values, 50), percentile(values, 95), percentile(values, 99)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (CI smoke): 5/s for 6 s, 50/s for 2 s")
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--burst-seconds", type=float, default=4)
    parser.add_argument(
        "--layers",
        default=None,
        help="channel layers to measure, comma-separated: pubsub,core (default: both; --quick: the configured one)",
    )
    args = parser.parse_args()

    steady_seconds, burst_seconds = (6.0, 2.0) if args.quick else (args.steady_seconds, args.burst_seconds)
    scenarios = [
        ("warm-up", 20.0, 20),
        ("steady 5/s", 5.0, round(5 * steady_seconds)),
        ("burst 50/s", 50.0, round(50 * burst_seconds)),
    ]
    url, tokens = bench_prepare()
    from django.conf import settings

    configured = next((n for n, b in LAYER_BACKENDS.items() if b == settings.CHANNEL_LAYER_BACKEND), "pubsub")
    if args.layers:
        layers = [name.strip() for name in args.layers.split(",")]
    else:
        layers = [configured] if args.quick else list(LAYER_BACKENDS)
    conninfo = psycopg_conninfo(url)

    print(
        f"bench/latency.py: {args.screens} screens; "
        + ", ".join(f"{n}: {c} reports" for n, _r, c in scenarios[1:])
        + f"; channel layers: {', '.join(layers)}",
        flush=True,
    )
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, Run]] = {}
    try:
        baseline, base_port = baseline_start(conninfo=conninfo)
        processes.append(baseline)
        daphnes: dict[str, int] = {}
        for layer in layers:
            process, port = start_daphne(url, LAYER_BACKENDS[layer])
            processes.append(process)
            daphnes[layer] = port
        # A second Daphne for the screens: HTTP and websockets on their own processes (cores).
        process, screens_port = start_daphne(url, LAYER_BACKENDS[configured])
        processes.append(process)
        # Scenario by scenario, every pipeline back to back: the machine's load is alike for all.
        for name, rate, count in scenarios:
            row = results[name] = {}
            row[BASELINE] = asyncio.run(measure_baseline(base_port, conninfo, rate, count, args.screens))
            for layer, port in daphnes.items():
                row[f"HTTP ({layer})"] = asyncio.run(measure_http(port, tokens, rate, count, args.screens))
                if layer == configured:
                    row[f"HTTP, 2 Daphnes ({layer})"] = asyncio.run(
                        measure_http(port, tokens, rate, count, args.screens, screens_port=screens_port)
                    )
                    row[f"service ({layer})"] = asyncio.run(measure_service(port, tokens, rate, count, args.screens))
    finally:
        for process in processes:
            stop(process)

    print()
    print(f"{'scenario':<12} {'pipeline':<26} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95 ratio':>10} {'lost':>5}")
    failed = False
    headline: list[str] = []
    for name, _rate, _count in scenarios[1:]:
        runs = results[name]
        base95 = summary(runs[BASELINE])[1]
        scenario, headed = name, False
        for label, run in runs.items():
            p50, p95, p99 = summary(run)
            if label.startswith("HTTP (") and not headed:  # the first: the configured channel layer
                headline.append(f"{scenario} {p95 / base95:.2f}x")
                headed = True
            ratio = "" if label.startswith("baseline") else f"{p95 / base95:9.1f}x"
            print(f"{name:<12} {label:<26} {p50:8.1f} {p95:8.1f} {p99:8.1f} {ratio:>10} {run.missing():5d}")
            if not label.startswith("baseline"):
                answered = [(run.answered[k] - run.sent_at[k]) * 1000 for k in run.answered]
                what = "  201 answered after" if label.startswith("HTTP") else "  committed after"
                print(
                    f"{'':<12} {what:<26} {percentile(answered, 50):8.1f} "
                    f"{percentile(answered, 95):8.1f} {percentile(answered, 99):8.1f}"
                )
            if run.errors or run.missing():
                failed = True
                print(f"{'':<12}   errors: {len(run.errors)} {run.errors[:3]}; lost: {run.missing()}")
            name = ""
    print()
    print(
        "report-to-screen latency over every (report, screen) pair; goal: HTTP p95 within 3x of the baseline.\n"
        "HTTP: POST /api/v1/reports/ on Daphne, screens on the same process; 2 Daphnes: screens on a second\n"
        "Daphne process (the wake crosses Redis); service: report_submit in this process (no HTTP);\n"
        "'201 answered after' / 'committed after': when the phone got its answer / report_submit returned\n"
        "(the screens often have the report before that)."
    )
    print(f"RATIO report-to-screen p95, HTTP on one Daphne / bare baseline: {', '.join(headline)} (goal <= 3x)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
