"""Alarm-to-screen latency beside report-to-screen latency, in the same run.

GridCommand, two paths, interleaved one for one at a steady rate, on one real Daphne with N
websocket screens (an operator's token, subscribed to incidents and reports):

- **alarm**: a home alarm's signed webhook ``POST /api/v1/alarms/webhook/`` (HMAC check, replay
  store, report at the household's building, incident, device event: ``gc_alarm_receive``, on
  the lean path, field_api/residents/fast.py) → screens;
- **report** (the baseline): a phone's ``POST /api/v1/reports/`` (its lean path) → screens.

Both are sent by the same keep-alive pool, timed the same way, interleaved in the same run;
``--no-fast-paths`` serves both through Django instead.

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

from benchlib import (  # noqa: E402 - bench/ is the script folder
    HttpPool,
    Screens,
    bench_database_url,
    daphne_start,
    paced,
    percentile,
    report_body,
    report_key,
    screen_connect,
    stop,
)
from latency import setup_database  # noqa: E402 - the bench database, its grid and logins

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


async def measure(
    port: int, tokens: dict[str, str], devices: list[tuple[int, str, str]], rate: float, count: int, screens: int
) -> tuple[dict[str, list[float]], list[str], int]:
    """Alarms and reports alternating at ``rate``, on one keep-alive pool; each timed the same way,
    from just before its request to each screen having its ``report.created``."""
    from command.services.alarms import alarm_signature

    pool = HttpPool(port, size=8)
    await pool.open()
    rng = random.Random(11)

    async def screen() -> object:
        url = f"ws://127.0.0.1:{port}/ws/live/"
        return await screen_connect(url, token=tokens["operator_token"], layers=["incidents", "reports"])

    opened = await Screens.open(screen, screens, report_key)
    sent: dict[str, dict[str, float]] = {"alarm": {}, "report": {}}  # path -> key -> before the request
    errors: list[str] = []

    async def alarm(i: int) -> None:
        device_id, code, secret = devices[i % len(devices)]
        body = json.dumps({"type": "alarm", "n": i, "battery": 90}).encode()
        stamp = str(int(time.time()))
        signature = alarm_signature(secret, stamp, body)
        # the report's client id: the service's (command/services/alarms.py: _report_params)
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"gridcommand:alarm:{device_id}:{signature}").hex
        headers = {"X-GC-Device": code, "X-GC-Timestamp": stamp, "X-GC-Signature": f"sha256={signature}"}
        sent["alarm"][key] = time.perf_counter()
        status = await pool.post("/api/v1/alarms/webhook/", body, headers)
        if status != 201:
            errors.append(f"alarm HTTP {status}")

    async def report(i: int) -> None:
        key = uuid.uuid4().hex
        data = json.dumps(report_body(rng, key)).encode()
        headers = {"Authorization": f"Token {tokens['worker_token']}"}
        sent["report"][key] = time.perf_counter()
        status = await pool.post("/api/v1/reports/", data, headers)
        if status != 201:
            errors.append(f"report HTTP {status}")

    await paced(rate, count, lambda i: alarm(i) if i % 2 == 0 else report(i))
    lost = await opened.wait([*sent["alarm"], *sent["report"]])
    await opened.close()
    pool.close()
    return {path: opened.latencies_ms(keys) for path, keys in sent.items()}, errors, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run: 8 s")
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--rate", type=float, default=4.0, help="writes per second, alarms and reports alternating")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--no-fast-paths",
        action="store_true",
        help="serve both through Django (GRIDCOMMAND_FAST_PATHS=0): the lean paths switched off",
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
    process, port = daphne_start(
        url,
        name="bench-alarm",
        env={
            "CHANNEL_LAYER_BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"],
        },
    )
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
