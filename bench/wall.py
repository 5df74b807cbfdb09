"""The control-room wall in headless Chromium against a real Daphne: time to interactive on the
scale data, JS heap over a long run at 5 events/s, and report-to-pixel latency beside the
report-to-websocket latency of the same reports.

- **time to interactive**: from navigation to the wall live, its numbers, feed and the map's
  open incidents loaded (``GridWall``: status live, one state load, one map snapshot). Baseline,
  same run: a bare page loading the same vendored libraries (Leaflet, ECharts, live.js) from the
  same server. Goal: < 3 s.
- **report-to-pixel vs report-to-websocket**: on a settled wall (its charts' library loaded, no
  request completed for a second), 100 reports (5/s) posted through the API; a raw
  websocket client (the REST token) records when each one's ``incident.created`` arrives, the
  page when the report is on its pixels: the later of its feed row and its map marker (or the
  cluster icon it joined), each two animation frames after it was added. Goal: the page adds
  < 50 ms at p95 over the websocket.
- **heap**: the wall open for N minutes while events arrive at 5/s (a report every 0.6 s, 2
  events, and the cancellation of an incident opened ~20 reports earlier, 1 event: the open set
  stays level, as on a real wall). JS heap after a forced GC at the start, each minute and at
  the end. Goal: grows < 10 %. The wall of this run is a page of its own in a Chromium of its
  own, as on a real wall (``BareWall``): no probe of the latency run is in it, and DevTools only
  reads its heap (Playwright turns on DevTools' network agent, which keeps every request and
  frame in the page's heap). The start is taken after a warm-up at the same rate (30 reports,
  then ``--warmup-minutes``, default 2; quick: 20 reports): in its first minutes the page's heap
  takes on V8's optimised code and fills browser buffers that stop at a fixed size
  (layout-shift and resource-timing entries), which is not what an unattended wall keeps
  growing by. The growth from 18 s after the page settled (quick: 12 s) is printed too, and (not
  in --quick) what heap snapshots at the start, half-way and the end say it grew by: V8's
  compiled code, and everything else (``--snapshots``: by object type, to stderr). At the
  end the run cancels the incidents it opened and left open, so the next run meets the same
  open set on the map.

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
import shutil
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
window.__pix = {}; window.__mpix = {};
(() => {
  // when a thing first happened to an incident, two animation frames later: painted
  const mark = (store, id) => {
    if (id === undefined || id === null || (id in store)) return;
    store[id] = -1;
    const painted = () => { store[id] = performance.timeOrigin + performance.now(); };
    requestAnimationFrame(() => requestAnimationFrame(painted));
  };
  // the feed row
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) mark(window.__pix, n.dataset && n.dataset.incidentId);
  }).observe(document.getElementById('feed'), {childList: true});
  // the map: its marker (or the cluster icon it joins) is placed when it is added to the
  // cluster group, in the same task (markercluster refreshes the icons it changes at once)
  const c = window.GridWallMap && GridWallMap.cluster;
  if (!c) return;
  const one = c.addLayer, many = c.addLayers;
  const mapped = (m) => mark(window.__mpix, m && m.feature ? String(m.feature.id) : undefined);
  c.addLayer = function (m) { const r = one.apply(this, arguments); mapped(m); return r; };
  c.addLayers = function (ms) {
    const r = many.apply(this, arguments);
    (Array.isArray(ms) ? ms : [ms]).forEach(mapped);
    return r;
  };
})();
"""

# Time to interactive, and its parts (Performance API): the navigation's timings, first paint,
# when each of the wall's conditions first held, and the main thread's long tasks.
TTI_PROBE = """
window.__marks = {}; window.__long = 0;
(() => {
  const mark = (k) => { if (!(k in window.__marks)) window.__marks[k] = performance.now(); };
  const check = () => {
    const W = window.GridWall;
    if (W && W.ready) mark('script');
    if (W && W.status === 'live') mark('live');
    if (W && W.stateLoads >= 1) mark('state');
    if (W && W.mapLoaded) mark('map');
    if (W && W.ready && W.status === 'live' && W.stateLoads >= 1 && W.mapResyncs >= 1 && W.mapLoaded) {
      window.__tti = performance.now();
    } else { requestAnimationFrame(check); }
  };
  addEventListener('DOMContentLoaded', check);
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__long += e.duration; })
      .observe({type: 'longtask', buffered: true});
  } catch (e) { /* no long task timing */ }
})();
"""
TTI_PARTS = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return Object.assign({html_first_byte: n.responseStart, html_end: n.responseEnd,
    dom_content_loaded: n.domContentLoadedEventEnd, first_paint: fcp ? fcp.startTime : -1,
    long_tasks: window.__long, tti: window.__tti}, window.__marks);
}"""
# When the page's own sockets hear of each incident (before the page's handlers run: this
# listener is added first), and the long tasks of the latency run.
SOCKET_PROBE = """
window.__heard = {}; window.__long = 0;
(() => {
  const Native = window.WebSocket;
  function Probed(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener('message', (m) => {
      const t = performance.timeOrigin + performance.now();
      if (typeof m.data !== 'string' || m.data.indexOf('incident.created') < 0) return;
      const d = JSON.parse(m.data);
      if (d.kind === 'incident.created' && !(d.object_id in window.__heard)) window.__heard[d.object_id] = t;
    });
    return ws;
  }
  Probed.prototype = Native.prototype;
  Object.assign(Probed, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Probed;
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__long += e.duration; })
      .observe({type: 'longtask'});
  } catch (e) { /* no long task timing */ }
})();
"""

# Settled: no request of the page has completed for a second (resource timing entries; at most
# 30 s). Playwright's "networkidle" never came on some runs of the wall.
SETTLED = """() => new Promise((done) => {
  let seen = performance.getEntriesByType('resource').length, left = 30;
  const timer = setInterval(() => {
    const now = performance.getEntriesByType('resource').length;
    if (now === seen || --left === 0) { clearInterval(timer); done(now); }
    seen = now;
  }, 1000);
})"""


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
    """Migrate when the bench database is behind the code (it may predate the wall's
    migrations), make the logins; return the operator's session cookie, the tokens and the
    district's extent. In this process: a ``manage.py migrate`` subprocess cost ~5 s of a
    ``--quick`` run even with nothing to apply."""
    os.environ["DATABASE_URL"] = url
    os.environ["DB_POOL_MAX"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.test_settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", verbosity=0)
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
        # other points each run: a report within 50 m and 30 minutes of an open incident of its
        # category joins it (no incident.created), and the incidents of a run shortly before,
        # at the same seeded points, made a second run measure none
        self.rng = random.Random(uuid.uuid4().int)
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


class BareWall:
    """The wall in a Chromium of its own, without Playwright: a real wall's browser. Playwright
    turns DevTools' Network domain on in every page it drives, and the network agent keeps a
    record of every request and websocket frame in the page's heap (173 kB in six minutes of
    the heap run). Here DevTools is used only to read the heap (Runtime, HeapProfiler) and to
    give the page its login cookie."""

    def __init__(self, base: str, cookie: str, executable: str, args: list[str]) -> None:
        import tempfile

        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="gc-wall-")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                *args,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "--window-size=1920,1080",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the bare Chromium did not start")
            time.sleep(0.1)
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t["type"] == "page")
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, proxy=None, open_timeout=30)
        )
        self.next_id = 0
        self.chunks: list[str] = []
        self.send("Network.setCookie", {"name": "sessionid", "value": cookie, "url": base})
        self.send("Page.navigate", {"url": base + "/control/"})

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.ws.recv(timeout=300))
            if message.get("method") == "HeapProfiler.addHeapSnapshotChunk":
                self.chunks.append(message["params"]["chunk"])
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise SystemExit(f"the bare wall did not reach {expression!r}")
            time.sleep(0.2)

    def heap(self) -> float:
        """The JS heap in use after a full garbage collection."""
        self.send("HeapProfiler.collectGarbage")
        return float(self.send("Runtime.getHeapUsage")["usedSize"])

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """A heap snapshot summed by (node type, name): {key: (count, bytes)}."""
        self.chunks = []
        self.send("HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
        return snapshot_summary(json.loads("".join(self.chunks)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stack.close()
        stop(self.process)
        for _attempt in range(20):  # its helper processes may still be writing into the profile
            try:
                shutil.rmtree(self.profile)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.25)
        shutil.rmtree(self.profile, ignore_errors=True)


def snapshot_summary(snapshot: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Count and self size of a V8 heap snapshot's nodes by type and name (names cut at 60)."""
    meta = snapshot["snapshot"]["meta"]
    fields: list[str] = meta["node_fields"]
    types: list[str] = meta["node_types"][0]
    width, t_at, n_at, s_at = len(fields), fields.index("type"), fields.index("name"), fields.index("self_size")
    nodes, strings = snapshot["nodes"], snapshot["strings"]
    out: dict[str, tuple[int, int]] = {}
    for i in range(0, len(nodes), width):
        kind = types[nodes[i + t_at]]
        name = strings[nodes[i + n_at]] if kind in ("object", "native", "code", "hidden", "closure", "array") else ""
        key = f"{kind}:{name[:60]}"
        count, size = out.get(key, (0, 0))
        out[key] = (count + 1, size + nodes[i + s_at])
    return out


def snapshot_deltas(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[tuple[str, int, int]]:
    """(type:name, count, bytes) grown between two snapshot summaries."""
    zero = (0, 0)
    return [
        (k, after.get(k, zero)[0] - before.get(k, zero)[0], after.get(k, zero)[1] - before.get(k, zero)[1])
        for k in set(before) | set(after)
    ]


def code_split(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> str:
    """The growth between two snapshot summaries: V8's compiled code and its metadata (bytecode,
    optimised code, deoptimisation data, feedback), and everything else."""
    rows = snapshot_deltas(before, after)
    code = sum(size for key, _count, size in rows if key.startswith("code:"))
    rest = sum(size for key, _count, size in rows if not key.startswith("code:"))
    return f"V8's compiled code {code / 1000:+.0f} kB, everything else {rest / 1000:+.0f} kB"


def snapshot_diff(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], top: int = 25) -> None:
    """What the heap grew by between two snapshots, biggest first, to stderr."""
    rows = snapshot_deltas(before, after)
    total = sum(r[2] for r in rows)
    print(f"heap snapshots: {total / 1000:+.0f} kB between the first and the last", file=sys.stderr)
    for key, count, size in sorted(rows, key=lambda r: -abs(r[2]))[:top]:
        print(f"  {size / 1000:+8.1f} kB {count:+7d}  {key}", file=sys.stderr)


def profile_print(profile: dict[str, Any], top: int = 20) -> None:
    """The functions the page's main thread spent most time in (self time), from a CDP profile."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    self_us: dict[int, float] = {}
    for node_id, delta in zip(profile.get("samples", []), [*deltas[1:], 0], strict=False):
        self_us[node_id] = self_us.get(node_id, 0) + delta
    by_function: dict[str, float] = {}
    for node_id, us in self_us.items():
        frame = nodes[node_id]["callFrame"]
        name = f"{frame['functionName'] or '(anonymous)'} {frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber'] + 1}"
        by_function[name] = by_function.get(name, 0) + us
    total = sum(by_function.values()) or 1
    print(f"profile of the latency run: {total / 1000:.0f} ms sampled", file=sys.stderr)
    for name, us in sorted(by_function.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {us / 1000:8.1f} ms {100 * us / total:5.1f} %  {name}", file=sys.stderr)


def trace_print(trace: dict[str, Any], top: int = 15) -> None:
    """Time of the renderer's main thread by trace event (layout, paint, script...), nested
    events counted in their own line too."""
    events = trace.get("traceEvents", [])
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    totals: dict[str, float] = {}
    for e in events:
        if (e.get("pid"), e.get("tid")) in main and e.get("ph") == "X" and "dur" in e:
            totals[e["name"]] = totals.get(e["name"], 0) + e["dur"]
    print("trace of the latency run, renderer main thread:", file=sys.stderr)
    for name, us in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {us / 1000:8.1f} ms  {name}", file=sys.stderr)


def pixel_of(marks: dict[str, dict[str, float]], incident_id: int) -> float:
    """When an incident was on the wall's pixels: the later of its feed row and its map marker
    (PIXEL_PROBE; -1 while either is still to be painted)."""
    feed, on_map = marks["feed"].get(str(incident_id), -1), marks["map"].get(str(incident_id), -1)
    return max(feed, on_map) if feed > 0 and on_map > 0 else -1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small district, 20 reports, a 15 s heap run")
    parser.add_argument("--minutes", type=float, default=None, help="length of the heap run (default 10; quick 0.25)")
    parser.add_argument("--reports", type=int, default=None, help="reports for the latency run (default 100; quick 20)")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=None,
        help="minutes at 5 events/s before the heap run's first reading, after 30 reports (quick 20): 2, quick 0",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print where the page's main thread spends the latency run (CDP)"
    )
    parser.add_argument(
        "--snapshots", action="store_true", help="heap snapshots at the heap run's start and end: what it grew by"
    )
    parser.add_argument("--trace", default=None, help="with --profile: write the latency run's Chrome trace here")
    args = parser.parse_args()
    started = time.monotonic()

    def phase(name: str) -> None:
        print(f"bench: {name} at {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)

    minutes = args.minutes if args.minutes is not None else (0.25 if args.quick else 10)
    warmup_minutes = args.warmup_minutes if args.warmup_minutes is not None else (0.0 if args.quick else 2.0)
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
    phase("data ready")
    setup = prepare(url)
    phase("prepared")
    process, port = daphne_start(
        url, name="wall", env={"PERIODIC_JOBS_SECONDS": "0", "FIELD_API_RATE_INCIDENT_ACTIONS": "100000/s"}
    )
    base = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    # Debian's Chromium with the project's flags (tests/support.py; imported by name so the type
    # check of bench/ does not take in the test helpers)
    chromium_launch_kwargs = importlib.import_module("tests.support").chromium_launch_kwargs

    wall: BareWall | None = None
    try:
        with sync_playwright() as p:
            phase("daphne up")
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
            phase("baseline")
            # --- the wall: time to interactive ------------------------------------------------
            ttis: list[float] = []
            parts: list[dict[str, float]] = []
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1920, "height": 1080})
                context.add_cookies([{"name": "sessionid", "value": setup["cookie"], "url": base}])
                page = context.new_page()
                page.add_init_script(TTI_PROBE)
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))  # noqa: B023 - read before the next loop
                page.goto(base + "/control/")
                try:
                    page.wait_for_function("() => window.__tti !== undefined", timeout=60_000)
                except Exception:
                    state = page.evaluate(
                        "JSON.stringify(window.GridWall && {ready: GridWall.ready, status: GridWall.status,"
                        " stateLoads: GridWall.stateLoads, mapResyncs: GridWall.mapResyncs,"
                        " mapLoaded: GridWall.mapLoaded})"
                    )
                    raise SystemExit(f"the wall did not become interactive: {page.url} {state} {errors}") from None
                ttis.append(float(page.evaluate("window.__tti")))
                parts.append(page.evaluate(TTI_PARTS))
                markers = int(page.evaluate("Object.keys(GridWall.markers).length"))
                context.close()
            phase("time to interactive")
            # --- latency: report -> websocket, report -> pixel --------------------------------
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            context.add_cookies([{"name": "sessionid", "value": setup["cookie"], "url": base}])
            page = context.new_page()
            page.add_init_script(SOCKET_PROBE)
            page.goto(base + "/control/")
            page.wait_for_function(
                "() => window.GridWall && GridWall.ready && GridWall.status === 'live' && GridWall.mapLoaded",
                timeout=120_000,
            )
            # a wall that has settled: its map layers and the charts' library are loaded after the
            # first data (wall.js: later()). Measured from "live" on, the first reports met the
            # page still starting (1 MB of ECharts to compile, the layers' GeoJSON and tiles).
            page.wait_for_function("() => window.echarts !== undefined", timeout=60_000)
            page.evaluate(SETTLED)
            page.evaluate(PIXEL_PROBE)
            page.evaluate("window.__long = 0")
            sockets = SocketTimes(f"ws://127.0.0.1:{port}/ws/live/", setup["operator_token"])
            sockets.start()
            sockets.ready.wait(10)
            reporter = Reporter(base, setup)
            profiler = context.new_cdp_session(page) if args.profile else None
            if profiler is not None:
                profiler.send("Profiler.enable")
                profiler.send("Profiler.setSamplingInterval", {"interval": 200})
                profiler.send("Profiler.start")
                browser.start_tracing(
                    page=page, categories=["devtools.timeline", "disabled-by-default-devtools.timeline"]
                )
            sent: list[tuple[float, int]] = []
            for _ in range(reports):
                t0, incident_id, fresh = reporter.report()
                if fresh:
                    sent.append((t0, incident_id))
                time.sleep(0.2)
            painted = "() => ({feed: window.__pix, map: window.__mpix})"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                marks = page.evaluate(painted)
                if all(pixel_of(marks, i) > 0 and str(i) in sockets.created for _t, i in sent):
                    break
                time.sleep(0.2)
            marks = page.evaluate(painted)
            if profiler is not None:
                profile_print(profiler.send("Profiler.stop")["profile"])
                trace = browser.stop_tracing()
                if args.trace:
                    Path(args.trace).write_bytes(trace)
                trace_print(json.loads(trace))
            # the pixel: the later of the feed row and the map marker (or its cluster's icon)
            pix = {str(i): pixel_of(marks, i) for _t, i in sent}
            to_ws = [sockets.created[str(i)] - t0 for t0, i in sent if str(i) in sockets.created]
            to_pixel = [pix[str(i)] - t0 for t0, i in sent if pix[str(i)] > 0]
            added = [
                pix[str(i)] - sockets.created[str(i)] for _t, i in sent if pix[str(i)] > 0 and str(i) in sockets.created
            ]
            missing = len(sent) - len(to_pixel)
            heard = page.evaluate("window.__heard")
            to_page = [
                heard[str(i)] - sockets.created[str(i)]
                for _t, i in sent
                if str(i) in heard and str(i) in sockets.created
            ]
            in_page = [pix[str(i)] - heard[str(i)] for _t, i in sent if pix[str(i)] > 0 and str(i) in heard]
            # each part alone, after the page's own socket heard it
            feed_part, map_part = (
                [marks[k][str(i)] - heard[str(i)] for _t, i in sent if marks[k].get(str(i), -1) > 0 and str(i) in heard]
                for k in ("feed", "map")
            )
            long_ms = float(page.evaluate("window.__long"))
            sockets.stopped = True
            context.close()  # the latency run's page and its probes go
            phase("latency")
            # --- heap over a run at 5 events/s, in a Chromium of the wall's own ---------------
            launch = chromium_launch_kwargs()
            wall = BareWall(base, setup["cookie"], str(launch["executable_path"]), list(launch["args"]))
            wall.wait_for(
                "window.GridWall && GridWall.ready && GridWall.status === 'live' && GridWall.mapLoaded === true", 120
            )
            wall.wait_for("window.echarts !== undefined", 60)  # settled, as the latency run's page
            wall.evaluate(f"({SETTLED})()")
            settled_at = time.monotonic()
            heap = wall.heap
            for _ in range(20 if args.quick else 30):  # warm up: the open set reaches its level
                reporter.report()
                reporter.cancel_old()
                time.sleep(0.6)
            heap_early = heap()  # the old start: 18 s after the page settled (quick: 12 s)
            early_after = time.monotonic() - settled_at
            warm_end = time.monotonic() + warmup_minutes * 60
            while time.monotonic() < warm_end:  # compiled code and the capped buffers settle
                tick = time.monotonic()
                reporter.report()
                reporter.cancel_old()
                time.sleep(max(0.0, 0.6 - (time.monotonic() - tick)))
            heap_start = heap()
            # what grows, by heap snapshots (not in --quick: a snapshot of the scale wall takes seconds)
            first = wall.snapshot() if args.snapshots or not args.quick else None
            middle: dict[str, tuple[int, int]] | None = None
            end = time.monotonic() + minutes * 60
            events = 0
            heap_minutes: list[float] = []  # a reading each minute of the run: levelling off, or a slope
            next_reading = time.monotonic() + 60
            while time.monotonic() < end:
                tick = time.monotonic()
                reporter.report()
                reporter.cancel_old()
                events += 3
                if tick >= next_reading and time.monotonic() + 30 < end:
                    heap_minutes.append(heap())
                    if first is not None and len(heap_minutes) == int(minutes / 2):
                        middle = wall.snapshot()
                    next_reading += 60
                time.sleep(max(0.0, 0.6 - (time.monotonic() - tick)))
            time.sleep(1 if args.quick else 3)  # the last events land
            heap_end = heap()
            grew: list[str] = []
            if first is not None:
                last = wall.snapshot()
                grew.append("start -> end: " + code_split(first, last))
                if middle is not None:
                    grew.append("half-way -> end: " + code_split(middle, last))
                if args.snapshots:
                    print("the whole heap run:", file=sys.stderr)
                    snapshot_diff(first, last)
                    if middle is not None:
                        print("its second half:", file=sys.stderr)
                        snapshot_diff(middle, last)
            wall.close()
            wall = None
            phase("heap")
            # the run's incidents still open are cancelled: the next run meets the same open set
            # (each run left ~100 more on the wall's map, 98 -> 500 in five runs)
            while reporter.opened:
                reporter.cancel_old(keep=0)
            browser.close()
    finally:
        if wall is not None:
            wall.close()  # its Chromium too when the run stops half-way
        stop(process)
    if not to_ws or not to_pixel:
        raise SystemExit(f"no report of the latency run was measured ({len(sent)} opened an incident)")
    tti, bare_ms = statistics.median(ttis), statistics.median(bare)
    growth = 100 * (heap_end - heap_start) / heap_start
    ws95, px95 = pct(to_ws, 0.95), pct(to_pixel, 0.95)
    print(f"wall bench on {size} ({'quick' if args.quick else 'full'} run)")
    print(
        f"time to interactive: median {tti:.0f} ms of {len(ttis)} loads ({markers} open incidents on the map); "
        f"bare libraries {bare_ms:.0f} ms; goal < 3000 ms: {'met' if tti < 3000 else 'NOT met'}"
    )
    keys = ("html_first_byte", "html_end", "dom_content_loaded", "first_paint", "script", "live", "state", "map")
    breakdown = ", ".join(
        f"{k} {statistics.median(p.get(k, -1) for p in parts):.0f}" for k in keys if all(k in p for p in parts)
    )
    long_tti = statistics.median(p["long_tasks"] for p in parts)
    print(f"  parts (ms after navigation, medians): {breakdown}; long tasks {long_tti:.0f} ms")
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
        f"  of which: the page's socket after the raw client p50 {pct(to_page, 0.5):.1f} ms, "
        f"p95 {pct(to_page, 0.95):.1f} ms; socket to painted (both) p50 {pct(in_page, 0.5):.1f} ms, "
        f"p95 {pct(in_page, 0.95):.1f} ms; long tasks {long_ms:.0f} ms"
    )
    if feed_part and map_part:
        print(
            f"  socket to painted feed row p50 {pct(feed_part, 0.5):.1f} ms, p95 {pct(feed_part, 0.95):.1f} ms; "
            f"to painted map marker p50 {pct(map_part, 0.5):.1f} ms, p95 {pct(map_part, 0.95):.1f} ms"
        )
    print(
        f"JS heap: {heap_start / 1e6:.1f} MB -> {heap_end / 1e6:.1f} MB over {minutes:.1f} min, {events} events "
        f"({events / (minutes * 60):.1f}/s), after a {warmup_minutes:.1f}-minute warm-up: {growth:+.1f} %; "
        f"goal < 10 %: {'met' if growth < 10 else 'NOT met'}"
    )
    print(
        f"  from {early_after:.0f} s after the page settled: {heap_early / 1e6:.1f} MB -> {heap_end / 1e6:.1f} MB, "
        f"{100 * (heap_end - heap_early) / heap_early:+.1f} %"
    )
    if grew:
        print("  heap snapshots, " + "; ".join(grew))
    if heap_minutes:
        print("  each minute (MB): " + " ".join(f"{h / 1e6:.2f}" for h in [heap_start, *heap_minutes, heap_end]))
    print(f"ratio report-to-pixel p95 / report-to-websocket p95: {px95 / ws95:.2f}x")


if __name__ == "__main__":
    main()
