"""Soak: a steady load held for a while — memory growth, Redis memory and errors — beside a raw
``websockets`` + ``pg_notify`` server under the same load for the same time, in the same run.

GridCommand: phones POST reports at ``--rate`` (5/s) to a real Daphne for ``--duration`` seconds
while ``--sockets`` (200) screens hold ``/ws/live/`` (operators, two layers, acking as screens
do). Every 5 s the Daphne process's resident memory is sampled; Redis' ``used_memory`` is read
at the start and the end. Errors: a report not answered 201, a screen missing a report, a
screen closed by the server. Baseline: bench/latency.py's pg_notify + ``websockets`` broadcast
server with as many clients and the same write rate and duration.

    .venv/bin/python bench/soak.py                    # 300 s per pipeline
    .venv/bin/python bench/soak.py --duration 3600    # an hour
    .venv/bin/python bench/soak.py --quick            # 20 s per pipeline, 100 sockets (< 1 minute)

The last line: resident memory end/start of GridCommand over the baseline's (1.00x: it grows no
more than a bare server), with the errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
    HttpPool,
    baseline_start,
    baseline_write,
    daphne_start,
    psycopg_conninfo,
    rss_kb,
    screen_connect,
    screen_read,
    stop,
)

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

SAMPLE_SECONDS = 5.0


@dataclass
class Soak:
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    received: list[set[str]] = field(default_factory=list)
    closed: int = 0

    def missing(self) -> int:
        return sum(1 for seen in self.received for key in self.sent if key not in seen)


async def _screen(ws: Any, seen: set[str], extract: Any, acks: bool, soak: Soak) -> None:
    def arrived(message: dict[str, Any], _now: float) -> None:
        key = extract(message)
        if key is not None:
            seen.add(key)

    await screen_read(ws, arrived, acks=acks, ack_every=50)
    soak.closed += 1  # cancelled at the end of the run otherwise


async def run(
    *, connect: Any, write: Any, extract: Any, acks: bool, pid: int, sockets: int, rate: float, duration: float
) -> Soak:
    soak = Soak()
    connections = []
    tasks = []
    for start in range(0, sockets, 50):
        batch = await asyncio.gather(*(connect() for _ in range(min(50, sockets - start))))
        for ws in batch:
            seen: set[str] = set()
            soak.received.append(seen)
            connections.append(ws)
            tasks.append(asyncio.create_task(_screen(ws, seen, extract, acks, soak)))
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    next_sample = started
    writes: list[asyncio.Task[None]] = []

    async def one(key: str) -> None:
        try:
            await write(key)
            soak.sent.append(key)
        except Exception as exc:
            soak.errors.append(f"{type(exc).__name__}: {exc}")

    i = 0
    while (now := time.perf_counter()) - started < duration:
        if now >= next_sample:
            soak.rss_mb.append((now - started, rss_kb(pid) / 1024))
            next_sample += SAMPLE_SECONDS
        delay = started + i / rate - now
        if delay > 0:
            await asyncio.sleep(min(delay, max(next_sample - now, 0.001)))
            continue
        writes.append(asyncio.create_task(one(uuid.uuid4().hex)))
        i += 1
    await asyncio.gather(*writes)
    deadline = time.perf_counter() + 10
    while soak.missing() and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    soak.rss_mb.append((time.perf_counter() - started, rss_kb(pid) / 1024))
    closed_before = soak.closed
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    soak.closed = closed_before
    return soak


async def soak_gridcommand(port: int, tokens: dict[str, str], pid: int, args: argparse.Namespace) -> Soak:
    from latency import _report_body, _report_key

    pool = HttpPool(port, size=4)
    await pool.open()
    rng = random.Random(17)

    async def connect() -> Any:
        return await screen_connect(
            f"ws://127.0.0.1:{port}/ws/live/", token=tokens["operator_token"], layers=["incidents", "reports"]
        )

    async def write(key: str) -> None:
        status = await pool.post_json("/api/v1/reports/", _report_body(rng, key), tokens["worker_token"])
        if status != 201:
            raise RuntimeError(f"HTTP {status}")

    try:
        return await run(
            connect=connect,
            write=write,
            extract=_report_key,
            acks=True,
            pid=pid,
            sockets=args.sockets,
            rate=args.rate,
            duration=args.duration,
        )
    finally:
        pool.close()


async def soak_baseline(port: int, conninfo: str, pid: int, args: argparse.Namespace) -> Soak:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(conninfo)
    lock = asyncio.Lock()

    async def connect() -> Any:
        return await screen_connect(f"ws://127.0.0.1:{port}")

    async def write(key: str) -> None:
        async with lock:
            await baseline_write(conn, json.dumps({"key": key, "note": "soak"}))

    try:
        return await run(
            connect=connect,
            write=write,
            extract=lambda m: str(m.get("key")) if "key" in m else None,
            acks=False,
            pid=pid,
            sockets=args.sockets,
            rate=args.rate,
            duration=args.duration,
        )
    finally:
        await conn.close()


def redis_used_mb() -> float:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    return float(client.info("memory")["used_memory"]) / (1024 * 1024)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 s per pipeline, 100 sockets")
    parser.add_argument("--duration", type=float, default=300, help="seconds per pipeline")
    parser.add_argument("--rate", type=float, default=5.0, help="reports per second")
    parser.add_argument("--sockets", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.sockets = 20.0, 100

    from latency import bench_prepare

    url, tokens = bench_prepare()
    conninfo = psycopg_conninfo(url)
    print(
        f"bench/soak.py: {args.duration:.0f} s per pipeline at {args.rate}/s with {args.sockets} sockets",
        flush=True,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        baseline, base_port = baseline_start(conninfo=conninfo)
        processes.append(baseline)
        base = asyncio.run(soak_baseline(base_port, conninfo, baseline.pid, args))
        daphne, port = daphne_start(
            url, name="bench-soak", env={"CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"], "LOG_LEVEL": "WARNING"}
        )
        processes.append(daphne)
        redis_before = redis_used_mb()
        ours = asyncio.run(soak_gridcommand(port, tokens, daphne.pid, args))
        redis_after = redis_used_mb()
    finally:
        for process in processes:
            stop(process)

    def growth(soak: Soak) -> tuple[float, float, float]:
        # from the first sample after warm-up (a tenth of the run) to the last
        warm = [mb for t, mb in soak.rss_mb if t >= args.duration / 10] or [soak.rss_mb[-1][1]]
        start, end = warm[0], soak.rss_mb[-1][1]
        return start, end, end / start

    print()
    print(
        f"{'server':<24} {'RSS start MB':>12} {'RSS end MB':>11} {'end/start':>10} "
        f"{'sent':>6} {'errors':>7} {'missing':>8} {'closed':>7}"
    )
    failed = False
    for label, soak in (("baseline (websockets)", base), ("GridCommand (Daphne)", ours)):
        start, end, ratio = growth(soak)
        print(
            f"{label:<24} {start:12.1f} {end:11.1f} {ratio:10.3f} {len(soak.sent):>6} {len(soak.errors):>7} "
            f"{soak.missing():>8} {soak.closed:>7}"
        )
        failed = failed or bool(soak.errors) or soak.missing() > 0 or soak.closed > 0
    print(f"Redis used_memory: {redis_before:.1f} MB before, {redis_after:.1f} MB after the GridCommand run")
    print()
    ratio = growth(ours)[2] / growth(base)[2]
    errors = len(ours.errors) + ours.missing() + ours.closed
    print(
        f"RATIO RSS end/start over {args.duration:.0f} s, GridCommand / raw websockets: {ratio:.3f}x "
        f"(+{growth(ours)[1] - growth(ours)[0]:.1f} MB vs +{growth(base)[1] - growth(base)[0]:.1f} MB); "
        f"Redis {redis_after - redis_before:+.1f} MB; errors {errors}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
