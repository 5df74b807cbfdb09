"""The control-room wall in headless Chromium against a real Daphne: time to interactive on the
scale data, JS heap over a long run at 5 events/s, and report-to-pixel latency beside the
report-to-websocket latency of the same reports.

- **time to interactive**: from navigation to the wall live, its numbers, feed and the map's
  open incidents loaded (``GridWall``: status live, one state load, one map snapshot). Baseline,
  same run: a bare page loading the same vendored libraries (Leaflet, ECharts, live.js) from the
  same server. Goal: < 3 s.
- **report-to-pixel vs report-to-websocket**: 100 reports (5/s) posted through the API; a raw
  websocket client (the REST token) records when each one's ``incident.created`` arrives, the
  page records when its feed row has been painted (two animation frames after the row is added).
  Goal: the page adds < 50 ms at p95 over the websocket.
- **heap**: the wall open for N minutes while events arrive at 5/s (a report every 0.6 s, 2
  events, and the cancellation of an incident opened ~20 reports earlier, 1 event: the open set
  stays level, as on a real wall). JS heap after a forced GC at the start and at the end. Goal:
  grows < 10 %.

    .venv/bin/python bench/wall.py            # scale data (50,000 buildings, 200,000 incidents), 10-minute heap run
    .venv/bin/python bench/wall.py --quick    # a small district, 20 reports, a 15-second heap run: under a minute

The scale data is the one ``bench/layers.py`` loads (database ``gc_bench``, created on first
use, a few minutes); ``--quick`` uses ``gc_wall_quick`` (2,000 buildings, 5,000 incidents;
loaded on first use). The last line is the ratio report-to-pixel p95 / report-to-websocket p95.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchlib import daphne_start, database_ensure, psycopg_conninfo, stop  # noqa: E402 - bench/ is the script folder
from layers import SCALE_BUILDINGS, SCALE_INCIDENTS, default_bench_url, ensure_bench_database  # noqa: E402

os.environ.setdefault("GRIDCOMMAND_TESTING", "1")
os.environ.setdefault("DJANGO_SECURE", "0")

QUICK_BUILDINGS, QUICK_INCIDENTS = 2000, 5000
CATEGORIES = ("road_damage", "sanitation", "parking_dispute", "other", "neighbour_dispute", "elevator_fault")
PIXEL_PROBE = """
window.__pix = {};
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    const id = n.dataset && n.dataset.incidentId;
    if (id && !(id in window.__pix)) {
      window.__pix[id] = -1;
      requestAnimationFrame(() => requestAnimationFrame(() => {
        window.__pix[id] = performance.timeOrigin + performance.now();
      }));
    }
  }
}).observe(document.getElementById('feed'), {childList: true});
"""


def quick_database_url() -> str:
    return default_bench_url().replace("/gc_bench?", "/gc_wall_quick?")


def ensure_quick_database(url: str) -> None:
    """Like layers.ensure_bench_database, at a size a --quick run loads in seconds (once)."""
    import psycopg

    database_ensure(url)
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        row = conn.execute("SELECT to_regclass('command_building') IS NOT NULL").fetchone()
        count = conn.execute("SELECT count(*) FROM command_building").fetchone() if row and row[0] else (0,)
    if count and count[0] >= QUICK_BUILDINGS:
        return
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "seed", "--buildings", str(QUICK_BUILDINGS), "--incidents", str(QUICK_INCIDENTS)],
        cwd=BASE_DIR,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def prepare(url: str) -> dict[str, Any]:
    """Migrate (the bench database may predate the wall's migration), make the logins; return
    the operator's session cookie, the tokens and the district's extent."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
    os.environ["DATABASE_URL"] = url
    os.environ["DB_POOL_MAX"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.test_settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from command.layer_queries import layer_extent
    from command.models import Team
    from command.services.accounts import user_ensure

    operator = user_ensure(username="bench-wall-op", password=uuid.uuid4().hex, role="operator")
    reporter = user_ensure(
        username="bench-wall-reporter",
        password=uuid.uuid4().hex,
        role="grid_worker",
        team=Team.objects.get(code="road"),
    )
    client = Client()
    client.force_login(User.objects.get(pk=operator.pk))
    extent = layer_extent("cells") or layer_extent("buildings")
    assert extent is not None, "the bench database has no district"
    return {
        "cookie": client.cookies["sessionid"].value,
        "operator_token": Token.objects.get_or_create(user=operator)[0].key,
        "reporter_token": Token.objects.get_or_create(user=reporter)[0].key,
        "extent": extent,
    }


def post(base: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own server
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server
        result: dict[str, Any] = json.loads(response.read())
        return result


class Reporter:
    """Posts reports at spread-out points (each opens its own incident) and cancels old ones."""

    def __init__(self, base: str, setup: dict[str, Any]) -> None:
        self.base, self.setup = base, setup
        self.rng = random.Random(7)
        self.opened: list[int] = []

    def report(self) -> tuple[float, int, bool]:
        x0, y0, x1, y1 = self.setup["extent"]
        body = {
            "client_id": str(uuid.uuid4()),
            "category": self.rng.choice(CATEGORIES),
            "location": {"type": "Point", "coordinates": [self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)]},
            "note": "bench",
        }
        t0 = time.time() * 1000
        answer = post(self.base, "/api/v1/reports/", self.setup["reporter_token"], body)
        incident = answer["incident"]
        fresh = incident.get("report_count", 1) == 1
        self.opened.append(int(incident["id"]))
        return t0, int(incident["id"]), fresh

    def cancel_old(self, keep: int = 20) -> None:
        if len(self.opened) > keep:
            incident_id = self.opened.pop(0)
            # already closed: a later report was grouped into one that was cancelled
            with contextlib.suppress(urllib.error.HTTPError):
                post(
                    self.base,
                    f"/api/v1/incidents/{incident_id}/cancel/",
                    self.setup["operator_token"],
                    {"reason": "bench"},
                )


class SocketTimes(threading.Thread):
    """A raw websocket client (REST token): when each incident.created arrived (epoch ms)."""

    def __init__(self, ws_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.ws_url, self.token = ws_url, token
        self.created: dict[str, float] = {}
        self.ready = threading.Event()
        self.stopped = False

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        headers = {"Authorization": f"Token {self.token}"}
        with contextlib.suppress(ConnectionClosed), connect(self.ws_url, additional_headers=headers, proxy=None) as ws:
            ws.send(json.dumps({"type": "subscribe", "layers": ["incidents"], "bbox": None}))
            while not self.stopped:
                try:
                    raw = ws.recv(timeout=1)
                except TimeoutError:
                    continue
                now = time.time() * 1000
                message = json.loads(raw)
                if message["type"] == "subscribed":
                    self.ready.set()
                elif message["type"] == "event" and message["kind"] == "incident.created":
                    self.created.setdefault(message["object_id"], now)
                if message["type"] in ("event", "heartbeat"):
                    ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small district, 20 reports, a 15 s heap run")
    parser.add_argument("--minutes", type=float, default=None, help="length of the heap run (default 10; quick 0.25)")
    parser.add_argument("--reports", type=int, default=None, help="reports for the latency run (default 100; quick 20)")
    args = parser.parse_args()
    minutes = args.minutes if args.minutes is not None else (0.25 if args.quick else 10)
    reports = args.reports if args.reports is not None else (20 if args.quick else 100)
    loads = 2 if args.quick else 3
    url = quick_database_url() if args.quick else default_bench_url()
    os.environ["DATABASE_URL"] = url  # before anything imports the settings
    if args.quick:
        ensure_quick_database(url)
        size = f"{QUICK_BUILDINGS:,} buildings, {QUICK_INCIDENTS:,} incidents"
    else:
        ensure_bench_database(url)
        size = f"{SCALE_BUILDINGS:,} buildings, {SCALE_INCIDENTS:,} incidents"
    setup = prepare(url)
    process, port = daphne_start(
        url, name="wall", env={"PERIODIC_JOBS_SECONDS": "0", "FIELD_API_RATE_INCIDENT_ACTIONS": "100000/s"}
    )
    base = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    # Debian's Chromium with the project's flags (tests/support.py; imported by name so the type
    # check of bench/ does not take in the test helpers)
    chromium_launch_kwargs = importlib.import_module("tests.support").chromium_launch_kwargs

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(**chromium_launch_kwargs())
            # --- baseline: the same libraries from the same server, no data --------------------
            bare = []
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(base + "/healthz")
                t = page.evaluate(
                    """(base) => new Promise((done) => {
                      const t0 = performance.now(); let left = 3;
                      for (const src of ['/static/vendor/leaflet/leaflet.js', '/static/vendor/echarts/echarts.min.js',
                                         '/static/realtime/live.js']) {
                        const s = document.createElement('script'); s.src = base + src + '?' + Math.random();
                        s.onload = () => { if (--left === 0) { L.map(document.body).setView([39, 117], 15);
                          echarts.init(document.body.appendChild(document.createElement('div')));
                          done(performance.now() - t0); } };
                        document.head.appendChild(s);
                      }
                    })""",
                    base,
                )
                bare.append(float(t))
                page.close()
            # --- the wall: time to interactive ------------------------------------------------
            ttis = []
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1920, "height": 1080})
                context.add_cookies([{"name": "sessionid", "value": setup["cookie"], "url": base}])
                page = context.new_page()
                page.add_init_script(
                    "window.__t0 = performance.now(); addEventListener('DOMContentLoaded', () => {"
                    " const check = () => { const W = window.GridWall; if (W && W.ready && W.status === 'live' &&"
                    " W.stateLoads >= 1 && W.mapResyncs >= 1 && W.mapLoaded) { window.__tti = performance.now(); }"
                    " else { requestAnimationFrame(check); } }; check(); });"
                )
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))  # noqa: B023 - read before the next loop
                page.goto(base + "/control/")
                try:
                    page.wait_for_function("window.__tti !== undefined", timeout=60_000)
                except Exception:
                    state = page.evaluate(
                        "JSON.stringify(window.GridWall && {ready: GridWall.ready, status: GridWall.status,"
                        " stateLoads: GridWall.stateLoads, mapResyncs: GridWall.mapResyncs,"
                        " mapLoaded: GridWall.mapLoaded})"
                    )
                    raise SystemExit(f"the wall did not become interactive: {page.url} {state} {errors}") from None
                ttis.append(float(page.evaluate("window.__tti")))
                markers = int(page.evaluate("Object.keys(GridWall.markers).length"))
                context.close()
            # --- latency: report -> websocket, report -> pixel --------------------------------
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            context.add_cookies([{"name": "sessionid", "value": setup["cookie"], "url": base}])
            page = context.new_page()
            page.goto(base + "/control/")
            page.wait_for_function("window.GridWall && GridWall.ready && GridWall.status === 'live'", timeout=120_000)
            page.evaluate(PIXEL_PROBE)
            sockets = SocketTimes(f"ws://127.0.0.1:{port}/ws/live/", setup["operator_token"])
            sockets.start()
            sockets.ready.wait(10)
            reporter = Reporter(base, setup)
            sent: list[tuple[float, int]] = []
            for _ in range(reports):
                t0, incident_id, fresh = reporter.report()
                if fresh:
                    sent.append((t0, incident_id))
                time.sleep(0.2)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                pix = page.evaluate("window.__pix")
                if all(pix.get(str(i), -1) > 0 and str(i) in sockets.created for _t, i in sent):
                    break
                time.sleep(0.2)
            pix = page.evaluate("window.__pix")
            to_ws = [sockets.created[str(i)] - t0 for t0, i in sent if str(i) in sockets.created]
            to_pixel = [pix[str(i)] - t0 for t0, i in sent if pix.get(str(i), -1) > 0]
            added = [
                pix[str(i)] - sockets.created[str(i)]
                for _t, i in sent
                if pix.get(str(i), -1) > 0 and str(i) in sockets.created
            ]
            missing = len(sent) - len(to_pixel)
            # --- heap over a run at 5 events/s ------------------------------------------------
            cdp = context.new_cdp_session(page)

            def heap() -> float:
                cdp.send("HeapProfiler.collectGarbage")
                return float(cdp.send("Runtime.getHeapUsage")["usedSize"])

            for _ in range(10 if args.quick else 30):  # warm up: the open set reaches its level
                reporter.report()
                reporter.cancel_old()
                time.sleep(0.6)
            heap_start = heap()
            end = time.monotonic() + minutes * 60
            events = 0
            while time.monotonic() < end:
                tick = time.monotonic()
                reporter.report()
                reporter.cancel_old()
                events += 3
                time.sleep(max(0.0, 0.6 - (time.monotonic() - tick)))
            time.sleep(3)
            heap_end = heap()
            sockets.stopped = True
            context.close()
            browser.close()
    finally:
        stop(process)
    tti, bare_ms = statistics.median(ttis), statistics.median(bare)
    growth = 100 * (heap_end - heap_start) / heap_start
    ws95, px95 = pct(to_ws, 0.95), pct(to_pixel, 0.95)
    print(f"wall bench on {size} ({'quick' if args.quick else 'full'} run)")
    print(
        f"time to interactive: median {tti:.0f} ms of {len(ttis)} loads ({markers} open incidents on the map); "
        f"bare libraries {bare_ms:.0f} ms; goal < 3000 ms: {'met' if tti < 3000 else 'NOT met'}"
    )
    print(f"report-to-websocket: p50 {pct(to_ws, 0.5):.1f} ms, p95 {ws95:.1f} ms ({len(to_ws)} reports)")
    print(
        f"report-to-pixel:     p50 {pct(to_pixel, 0.5):.1f} ms, p95 {px95:.1f} ms "
        f"({len(to_pixel)} reports, {missing} not drawn)"
    )
    print(
        f"page adds: p50 {pct(added, 0.5):.1f} ms, p95 {pct(added, 0.95):.1f} ms; goal < 50 ms at p95: "
        f"{'met' if pct(added, 0.95) < 50 else 'NOT met'}"
    )
    print(
        f"JS heap: {heap_start / 1e6:.1f} MB -> {heap_end / 1e6:.1f} MB over {minutes:.1f} min, {events} events "
        f"({events / (minutes * 60):.1f}/s): {growth:+.1f} %; goal < 10 %: {'met' if growth < 10 else 'NOT met'}"
    )
    print(f"ratio report-to-pixel p95 / report-to-websocket p95: {px95 / ws95:.2f}x")


if __name__ == "__main__":
    main()
