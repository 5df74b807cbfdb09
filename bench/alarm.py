"""Alarm-to-screen latency beside report-to-screen latency, in the same run.

GridCommand, two paths, interleaved one for one at a steady rate, on one real Daphne with N
websocket screens (an operator's token, subscribed to incidents and reports):

- **alarm**: a home alarm's signed webhook ``POST /api/v1/alarms/webhook/`` (HMAC check, replay
  store, report service at the household's building, incident, device event) → screens;
- **report** (the baseline): a phone's ``POST /api/v1/reports/`` (the lean path) → screens.

Latency is from just before the request is sent to when a screen has the ``report.created``
event parsed, for every (write, screen) pair. Prints p50/p95 of both; the last line is the
p95 ratio alarm / report (goal <= 1.2x).

    .venv/bin/python bench/alarm.py            # 10 screens, 4 writes/s for 30 s
    .venv/bin/python bench/alarm.py --quick    # 8 s

Uses its own database ``<name>_bench_alarm`` on the same PostgreSQL (created and migrated on first run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import bench_database_url, stop  # noqa: E402 - bench/ is the script folder
from latency import (  # noqa: E402
    HttpPool,
    _report_body,
    _report_key,
    _screen_connector,
    _screen_loop,
    percentile,
    setup_database,
    start_daphne,
)

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")
DEVICES = 20


def setup_devices() -> list[tuple[int, str, str]]:
    """A building with one household in the bench grid, and DEVICES SOS buttons registered to it:
    (device id, code, secret). Secrets are rotated on every run (they are shown only once)."""
    from django.contrib.gis.geos import Polygon

    from command.models import AlarmDevice, Building, Household
    from command.services.alarms import alarm_device_register, alarm_device_rotate_secret
    from command.services.places import building_save

    building = Building.objects.filter(address="bench alarm building").first()
    if building is None:
        footprint = Polygon.from_bbox((117.0042, 39.0032, 117.0044, 39.0034))
        footprint.srid = 4326
        building = building_save(footprint=footprint, address="bench alarm building")
    household, _ = Household.objects.get_or_create(
        building=building, unit="1-101", defaults={"resident_type": "registered", "head_name": "bench", "members": 1}
    )
    devices = []
    for i in range(DEVICES):
        code = f"BENCH-SOS-{i:02d}"
        existing = AlarmDevice.objects.filter(code=code).first()
        if existing is None:
            device, secret = alarm_device_register(
                actor=None, code=code, kind="sos", household_id=household.pk, heartbeat_seconds=3600
            )
        else:
            device, secret = alarm_device_rotate_secret(actor=None, device_id=existing.pk)
        devices.append((device.pk, code, secret))
    return devices


class RawPool(HttpPool):
    async def post(self, path: str, data: bytes, headers: dict[str, str]) -> int:
        reader, writer = await self.idle.get()
        try:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                ).encode()
                + data
            )
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            return int(status_line.split()[1])
        finally:
            self.idle.put_nowait((reader, writer))


async def measure(
    port: int, tokens: dict[str, str], devices: list[tuple[int, str, str]], rate: float, count: int, screens: int
) -> tuple[dict[str, list[float]], list[str], int]:
    import websockets

    from command.services.alarms import alarm_signature

    pool = RawPool(port, size=8)
    await pool.open()
    rng = random.Random(11)
    connect = _screen_connector(port, tokens["operator_token"])
    sinks: list[dict[str, float]] = []
    connections, tasks = [], []
    for _ in range(screens):
        ws = await connect(websockets)
        sink: dict[str, float] = {}
        sinks.append(sink)
        connections.append(ws)
        tasks.append(asyncio.create_task(_screen_loop(ws, sink, _report_key, True)))
    await asyncio.sleep(0.5)
    sent: dict[str, tuple[str, float]] = {}  # key -> (path, perf_counter before the request)
    errors: list[str] = []

    async def alarm(i: int) -> None:
        device_id, code, secret = devices[i % len(devices)]
        body = json.dumps({"type": "alarm", "n": i, "battery": 90}).encode()
        stamp = str(int(time.time()))
        signature = alarm_signature(secret, stamp, body)
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"gridcommand:alarm:{device_id}:{signature}").hex
        sent[key] = ("alarm", time.perf_counter())
        status = await pool.post(
            "/api/v1/alarms/webhook/",
            body,
            {"X-GC-Device": code, "X-GC-Timestamp": stamp, "X-GC-Signature": f"sha256={signature}"},
        )
        if status != 201:
            errors.append(f"alarm HTTP {status}")

    async def report(i: int) -> None:
        key = uuid.uuid4().hex
        data = json.dumps(_report_body(rng, key)).encode()
        sent[key] = ("report", time.perf_counter())
        status = await pool.post("/api/v1/reports/", data, {"Authorization": f"Token {tokens['worker_token']}"})
        if status != 201:
            errors.append(f"report HTTP {status}")

    start = time.perf_counter()
    writes = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writes.append(asyncio.create_task(alarm(i) if i % 2 == 0 else report(i)))
    await asyncio.gather(*writes)

    def missing() -> int:
        return sum(1 for sink in sinks for key in sent if key not in sink)

    deadline = time.perf_counter() + 15
    while missing() and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for ws in connections:
        await ws.close()
    for task in tasks:
        task.cancel()
    pool.close()
    latencies: dict[str, list[float]] = {"alarm": [], "report": []}
    for sink in sinks:
        for key, (path, at) in sent.items():
            if key in sink:
                latencies[path].append((sink[key] - at) * 1000)
    return latencies, errors, missing()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run: 8 s")
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--rate", type=float, default=4.0, help="writes per second, alarms and reports alternating")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--no-fast-paths",
        action="store_true",
        help="serve the phone's report through Django too (GRIDCOMMAND_FAST_PATHS=0), as the alarm is",
    )
    args = parser.parse_args()
    seconds = 8.0 if args.quick else args.seconds
    url = bench_database_url("bench_alarm")
    os.environ["DATABASE_URL"] = url  # before anything imports the settings
    os.environ["CHANNEL_PREFIX"] = f"gcbench{os.getpid()}"
    tokens = setup_database(url)
    devices = setup_devices()
    from django.db import connections

    connections.close_all()
    if args.no_fast_paths:
        os.environ["GRIDCOMMAND_FAST_PATHS"] = "0"  # inherited by the Daphne process
    process, port = start_daphne(url, "channels_redis.pubsub.RedisPubSubChannelLayer")
    try:
        count = int(args.rate * seconds)
        asyncio.run(measure(port, tokens, devices, 10.0, 20, args.screens))  # warm-up, not counted
        print(f"{count} writes, alarms and reports alternating, at {args.rate}/s; {args.screens} screens")
        latencies, errors, lost = asyncio.run(measure(port, tokens, devices, args.rate, count, args.screens))
    finally:
        stop(process)
    print(f"{'path':<36} {'p50 ms':>8} {'p95 ms':>8} {'n':>6}")
    labels = {"alarm": "alarm webhook -> screen", "report": "field report (baseline) -> screen"}
    for path in ("alarm", "report"):
        values = latencies[path]
        print(f"{labels[path]:<36} {percentile(values, 50):8.1f} {percentile(values, 95):8.1f} {len(values):6d}")
    if errors or lost:
        print(f"errors: {len(errors)} {errors[:3]}; lost: {lost}")
    ratio = percentile(latencies["alarm"], 95) / percentile(latencies["report"], 95)
    print(f"RATIO alarm-to-screen p95 / report-to-screen p95: {ratio:.2f}x (goal <= 1.2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
