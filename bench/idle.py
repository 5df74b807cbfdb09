"""Idle screens: memory per connection and idle CPU of Daphne holding thousands of authenticated,
subscribed websockets with heartbeats, beside a raw ``websockets`` server holding as many, in the
same run.

GridCommand: N clients open ``/ws/live/`` with a token, subscribe to two layers, and ack every
heartbeat (every ``REALTIME_HEARTBEAT_SECONDS``, 3 s), as screens do; nothing else happens.
Baseline: a raw ``websockets`` server (a separate process) that keeps the same number of clients
and sends each of them a small heartbeat every 3 s, which they ack. Memory per connection =
(resident memory with N clients - before them) / N; idle CPU = the server process's CPU time over
``--idle-seconds`` with all N connected, as a share of one core.

    .venv/bin/python bench/idle.py            # 2,000 and 5,000 sockets
    .venv/bin/python bench/idle.py --quick    # 600 sockets, 6 s idle (< 1 minute)

Goals: memory per connection <= 1.5x the raw server's; idle CPU < 10 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import (  # noqa: E402 - bench/ is the script folder
    baseline_start,
    cpu_seconds,
    daphne_start,
    rss_kb,
    screen_connect,
    screen_read,
    stop,
)

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

CONNECT_BATCH = 25
HEARTBEAT_SECONDS = 3


def _ignore(_message: dict[str, Any], _now: float) -> None:
    pass


async def hold(url: str, token: str | None, n: int, pid: int, idle_seconds: float, subscribe: bool) -> dict:
    before = rss_kb(pid)
    clients: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    retries = 0

    def retried() -> None:
        nonlocal retries
        retries += 1

    layers = ["incidents", "reports"] if subscribe else None
    for start in range(0, n, CONNECT_BATCH):
        batch = await asyncio.gather(
            *(
                screen_connect(url, token=token, layers=layers, attempts=5, retried=retried)
                for _ in range(min(CONNECT_BATCH, n - start))
            )
        )
        tasks += [asyncio.create_task(screen_read(ws, _ignore, acks=True)) for ws in batch]
        clients.extend(batch)
    connected = time.perf_counter() - started
    await asyncio.sleep(HEARTBEAT_SECONDS + 1)  # every client subscribed and heard one heartbeat
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(idle_seconds)
    cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
    after = rss_kb(pid)
    open_now = sum(1 for ws in clients if ws.close_code is None)
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    for task in tasks:
        task.cancel()
    return {
        "n": n,
        "kb_per_connection": (after - before) / n,
        "cpu": cpu,
        "open": open_now,
        "connect_seconds": connected,
        "rss_mb": after / 1024,
        "retries": retries,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="600 sockets, 6 s idle")
    parser.add_argument("--sockets", default="2000,5000")
    parser.add_argument("--idle-seconds", type=float, default=20)
    args = parser.parse_args()
    levels = [600] if args.quick else [int(n) for n in args.sockets.split(",")]
    idle_seconds = 6.0 if args.quick else args.idle_seconds

    from latency import bench_prepare

    url, tokens = bench_prepare()
    token = tokens["operator_token"]
    print(f"bench/idle.py: {', '.join(map(str, levels))} idle sockets, {idle_seconds:.0f} s idle each", flush=True)
    rows: list[tuple[str, dict]] = []
    for n in levels:
        # fresh servers per level: memory per connection is measured from an empty process
        baseline, base_port = baseline_start(heartbeat_seconds=HEARTBEAT_SECONDS)
        daphne = None
        try:
            rows.append(
                (
                    "baseline (websockets)",
                    asyncio.run(hold(f"ws://127.0.0.1:{base_port}", None, n, baseline.pid, idle_seconds, False)),
                )
            )
            daphne, port = daphne_start(
                url, name="bench-idle", env={"CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"], "LOG_LEVEL": "WARNING"}
            )
            time.sleep(1)
            rows.append(
                (
                    "GridCommand (Daphne)",
                    asyncio.run(
                        hold(
                            f"ws://127.0.0.1:{port}/ws/live/",
                            token,
                            n,
                            daphne.pid,
                            idle_seconds,
                            True,
                        )
                    ),
                )
            )
        finally:
            stop(baseline)
            if daphne is not None:
                stop(daphne)

    print()
    print(
        f"{'sockets':>7}  {'server':<22} {'kB/conn':>8} {'idle CPU':>9} {'open':>6} {'RSS MB':>7} "
        f"{'connect s':>10} {'retries':>8}"
    )
    ratios: list[str] = []
    base: dict | None = None
    failed = False
    for label, row in rows:
        print(
            f"{row['n']:>7}  {label:<22} {row['kb_per_connection']:8.1f} {row['cpu'] * 100:8.1f}% "
            f"{row['open']:>6} {row['rss_mb']:7.0f} {row['connect_seconds']:10.1f} {row['retries']:>8}"
        )
        failed = failed or row["open"] != row["n"]
        if label.startswith("baseline"):
            base = row
        elif base is not None:
            ratios.append(
                f"{row['n']}: {row['kb_per_connection'] / base['kb_per_connection']:.2f}x memory/conn, "
                f"idle CPU {row['cpu'] * 100:.1f}% of a core"
            )
    print()
    print("goals: memory per connection <= 1.5x the raw server's; idle CPU < 10 % of a core")
    print(f"RATIO idle sockets, GridCommand / raw websockets: {'; '.join(ratios)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
