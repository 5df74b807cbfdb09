"""Broadcast to many screens: GridCommand against a raw ``websockets`` broadcast, in the same run.

N websocket clients (100 / 500 / 1,000) hold ``/ws/live/`` as operators subscribed to a layer
they are permitted (``--layer``: ``incidents`` by default, a wall's layer; ``reports`` carries
personal data for operators, so each screen also writes the access log once per heartbeat);
reports are written one at a time through ``report_submit`` in this process (commit, wake
through Redis, Daphne's hub, each consumer's filter and redaction).
The baseline writes a row and ``pg_notify`` in one transaction; a separate process LISTENing
broadcasts it with ``websockets.broadcast`` to the same number of clients (benchlib's baseline
server), with frames as long as GridCommand's event frame in the same run, and the same
heartbeats (every 3 s, acked by its clients as the screens ack GridCommand's). Broadcast
completion = from just before the write until the LAST of the N clients has the message
parsed; p50/p95 over the broadcasts. Also measured through nginx across 2 Daphne processes
(command/cluster.py, the shape of ``make cluster``).

    .venv/bin/python bench/fanout.py             # 100, 500, 1000 clients, 30 broadcasts each
    .venv/bin/python bench/fanout.py --quick     # 150 clients, 5 broadcasts (< 1 minute)

Goal: p95 within 3x of the baseline at 1,000 clients (a straightforward Channels consumer,
a group per screen, measured ~10x here). Uses the database ``<name>_bench`` like latency.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import (  # noqa: E402 - bench/ is the script folder
    baseline_start,
    baseline_write,
    daphne_start,
    free_port,
    percentile,
    psycopg_conninfo,
    screen_read,
    screens_connect,
    stop,
)

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

HEARTBEAT_SECONDS = 3  # REALTIME_HEARTBEAT_SECONDS' default: the baseline's heartbeat too


class Receivers:
    """Reads every client; records when each one had each key."""

    def __init__(self, clients: list[Any], extract: Any, acks: bool) -> None:
        self.clients = clients
        self.got: dict[str, list[float]] = {}
        self.extract, self.acks = extract, acks
        self.size = 0  # the length of the last keyed message: the baseline's frames are made as long
        self.tasks = [asyncio.create_task(screen_read(ws, self._arrived, acks=acks)) for ws in clients]

    def _arrived(self, message: dict[str, Any], now: float) -> None:
        key = self.extract(message)
        if key is not None:
            self.got.setdefault(key, []).append(now)
            self.size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.clients), return_exceptions=True)
        for task in self.tasks:
            task.cancel()


async def measure(
    clients: list[Any], extract: Any, acks: bool, write: Any, broadcasts: int
) -> tuple[list[float], int, int]:
    """Completion times (ms) of ``broadcasts`` writes, one at a time; how many deliveries were lost;
    the length of a broadcast frame."""
    receivers = Receivers(clients, extract, acks)
    await asyncio.sleep(1.0)  # subscriptions settle
    times: list[float] = []
    lost = 0
    try:
        for _ in range(broadcasts):
            sent = time.perf_counter()
            key = await write()
            deadline = sent + 15
            while len(receivers.got.get(key, ())) < len(clients) and time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
            got = receivers.got.get(key, [])
            lost += len(clients) - len(got)
            if got:
                times.append((max(got) - sent) * 1000)
            await asyncio.sleep(0.05)
    finally:
        await receivers.close()
    return times, lost, receivers.size


def _event_key(message: dict[str, Any]) -> str | None:
    return str(message["seq"]) if message.get("type") == "event" else None


async def run_gridcommand(
    ports: list[int], token: str, n: int, broadcasts: int, layer: str
) -> tuple[list[float], int, int]:
    from django.contrib.auth import get_user_model
    from django.contrib.gis.geos import Point
    from django.db import connection

    from command.models import Category, Event
    from command.services.reports import report_submit

    def lookups() -> tuple[Category, int]:
        try:
            worker = get_user_model().objects.values_list("pk", flat=True).get(username="bench-worker")
            return Category.objects.get(code="other"), worker
        finally:
            connection.close()

    category, worker_id = await asyncio.to_thread(lookups)

    def submit() -> str:
        """The report, and the seq of its event on ``layer`` (the key the screens see)."""
        try:
            report = report_submit(
                reporter_id=worker_id,
                client_id=uuid.uuid4(),
                category=category,
                location=Point(117.003, 39.003, srid=4326),
                note="fanout",
            ).report
            object_id = str(report.pk if layer == "reports" else report.incident_id)
            return str(
                Event.objects.filter(layer=layer, object_id=object_id).order_by("-seq").values_list("seq", flat=True)[0]
            )
        finally:
            connection.close()

    async def write() -> str:
        return await asyncio.to_thread(submit)

    urls = [f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/live/" for i in range(n)]
    clients = await screens_connect(urls, token=token, layers=[layer])
    return await measure(clients, _event_key, True, write, broadcasts)


async def run_baseline(port: int, conninfo: str, n: int, broadcasts: int, size: int) -> tuple[list[float], int, int]:
    """The same broadcasts from the bare server: frames padded to ``size`` bytes (GridCommand's
    event frame in this run), heartbeats at the same interval, acked by the clients as screens do."""
    import psycopg

    conn = await psycopg.AsyncConnection.connect(conninfo)

    async def write() -> str:
        key = uuid.uuid4().hex
        message = {"type": "event", "key": key, "pad": ""}
        message["pad"] = "x" * max(0, size - len(json.dumps(message, separators=(",", ":"))))
        await baseline_write(conn, json.dumps(message, separators=(",", ":")))
        return key

    clients = await screens_connect([f"ws://127.0.0.1:{port}"] * n)
    try:
        return await measure(clients, lambda m: m.get("key"), True, write, broadcasts)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="150 clients, 5 broadcasts")
    parser.add_argument("--clients", default="100,500,1000")
    parser.add_argument("--broadcasts", type=int, default=30)
    parser.add_argument("--layer", default="incidents", choices=["incidents", "reports"])
    args = parser.parse_args()
    levels = [150] if args.quick else [int(c) for c in args.clients.split(",")]
    broadcasts = 5 if args.quick else args.broadcasts

    from latency import bench_prepare

    url, tokens = bench_prepare()
    conninfo = psycopg_conninfo(url)
    from command.cluster import ClusterSpec, cluster_running
    from command.localstack import LOCAL

    print(
        f"bench/fanout.py: {', '.join(map(str, levels))} clients on the {args.layer} layer, "
        f"{broadcasts} broadcasts each",
        flush=True,
    )
    processes: list[subprocess.Popen[bytes]] = []
    rows: list[tuple[int, str, list[float], int, int]] = []
    env = {"CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"], "LOG_LEVEL": "WARNING", "DB_POOL_MIN": "1"}
    try:
        baseline, base_port = baseline_start(conninfo=conninfo, heartbeat_seconds=HEARTBEAT_SECONDS)
        processes.append(baseline)
        daphne, port = daphne_start(url, name="bench-fanout", env=env)
        processes.append(daphne)
        for n in levels:
            ours = asyncio.run(run_gridcommand([port], tokens["operator_token"], n, broadcasts, args.layer))
            base = asyncio.run(run_baseline(base_port, conninfo, n, broadcasts, ours[2]))
            rows += [(n, "baseline (websockets)", *base), (n, "GridCommand, 1 Daphne", *ours)]
        stop(daphne)
        processes.remove(daphne)
        spec = ClusterSpec(
            processes=2,
            port=free_port(),
            backends=[free_port(), free_port()],
            workdir=str(LOCAL / f"bench-fanout-{os.getpid()}"),
            env={
                **env,
                "DJANGO_SETTINGS_MODULE": "command.test_settings",
                "DATABASE_URL": url,
                "FIELD_API_RATE_REPORTS": "100000/s",
            },
        )
        with cluster_running(spec, remove=True):
            n = levels[-1]
            proxied = asyncio.run(run_gridcommand([spec.port], tokens["operator_token"], n, broadcasts, args.layer))
            rows.append((n, "GridCommand, nginx + 2 Daphne", *proxied))
    finally:
        for process in processes:
            stop(process)

    print()
    print(f"{'clients':>7}  {'pipeline':<30} {'p50 ms':>8} {'p95 ms':>8} {'p95 ratio':>10} {'lost':>6} {'frame B':>8}")
    base95: dict[int, float] = {}
    ratios: dict[tuple[int, str], float] = {}
    failed = False
    for n, label, times, lost, size in rows:
        p50, p95 = percentile(times, 50), percentile(times, 95)
        if label.startswith("baseline"):
            base95[n] = p95
            ratio = ""
        else:
            ratios[(n, label)] = p95 / base95[n]
            ratio = f"{ratios[(n, label)]:9.2f}x"
        failed = failed or lost > 0
        print(f"{n:>7}  {label:<30} {p50:8.1f} {p95:8.1f} {ratio:>10} {lost:>6} {size:>8}")
    print()
    print("broadcast completion: from the write until the last client has the message; goal p95 <= 3x at 1,000")
    top = levels[-1]
    one = ratios[(top, "GridCommand, 1 Daphne")]
    two = ratios[(top, "GridCommand, nginx + 2 Daphne")]
    print(
        f"RATIO broadcast completion p95 at {top} clients / raw websockets: "
        f"{one:.2f}x (1 Daphne), {two:.2f}x (nginx + 2)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
