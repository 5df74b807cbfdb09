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
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import bench_database_url, cpu_seconds, daphne_start, free_port, rss_kb, stop  # noqa: E402

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

CONNECT_BATCH = 25
HEARTBEAT_SECONDS = 3


# --- the baseline server (a separate process: python bench/idle.py --baseline-server PORT) ------


async def baseline_server(port: int) -> None:
    import websockets

    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            async for _message in ws:  # acks
                pass
        finally:
            clients.discard(ws)

    async def heartbeats() -> None:
        seq = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            seq += 1
            websockets.broadcast(clients, json.dumps({"type": "heartbeat", "seq": seq}))

    async with websockets.serve(handler, "127.0.0.1", port, compression=None):
        task = asyncio.create_task(heartbeats())
        print("ready", flush=True)
        await asyncio.Future()
        task.cancel()


# --- clients ----------------------------------------------------------------------------------


async def _client(ws: Any) -> None:
    try:
        async for text in ws:
            message = json.loads(text)
            if message.get("type") == "heartbeat":
                await ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))
    except Exception:  # noqa: S110 - closed at the end
        pass


async def hold(url: str, headers: dict[str, str], n: int, pid: int, idle_seconds: float, subscribe: bool) -> dict:
    import websockets
    from websockets.exceptions import InvalidMessage, InvalidStatus

    before = rss_kb(pid)
    clients: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    retries = 0

    async def open_one() -> Any:
        # Daphne closes a handshake its application has not accepted within 5 s: under a burst of
        # connects a screen tries again, as GridLive does
        nonlocal retries
        for attempt in range(5):
            try:
                return await websockets.connect(
                    url, additional_headers=headers, compression=None, proxy=None, open_timeout=60
                )
            except (OSError, InvalidMessage, InvalidStatus):
                retries += 1
                await asyncio.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"could not connect to {url}")

    for start in range(0, n, CONNECT_BATCH):
        batch = await asyncio.gather(*(open_one() for _ in range(min(CONNECT_BATCH, n - start))))
        for ws in batch:
            if subscribe:
                await ws.send(json.dumps({"type": "subscribe", "layers": ["incidents", "reports"]}))
            tasks.append(asyncio.create_task(_client(ws)))
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


def setup(url: str) -> str:
    from latency import setup_database

    return setup_database(url)["operator_token"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="600 sockets, 6 s idle")
    parser.add_argument("--sockets", default="2000,5000")
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        asyncio.run(baseline_server(args.baseline_server))
        return 0
    levels = [600] if args.quick else [int(n) for n in args.sockets.split(",")]
    idle_seconds = 6.0 if args.quick else args.idle_seconds

    url = bench_database_url("bench")
    os.environ["DATABASE_URL"] = url
    os.environ["CHANNEL_PREFIX"] = f"gcbench{os.getpid()}"
    token = setup(url)
    print(f"bench/idle.py: {', '.join(map(str, levels))} idle sockets, {idle_seconds:.0f} s idle each", flush=True)
    rows: list[tuple[str, dict]] = []
    for n in levels:
        # fresh servers per level: memory per connection is measured from an empty process
        base_port = free_port()
        baseline = subprocess.Popen(
            [sys.executable, __file__, "--baseline-server", str(base_port)], stdout=subprocess.PIPE, cwd=BASE_DIR
        )
        daphne = None
        try:
            assert baseline.stdout is not None
            if baseline.stdout.readline().strip() != b"ready":
                raise SystemExit("baseline server did not start")
            rows.append(
                (
                    "baseline (websockets)",
                    asyncio.run(hold(f"ws://127.0.0.1:{base_port}", {}, n, baseline.pid, idle_seconds, False)),
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
                            {"Authorization": f"Token {token}"},
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
