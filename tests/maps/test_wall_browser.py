"""The control-room wall in headless Chromium against a real Daphne, PostGIS and Redis: a report
appears once, live, and events committed while the server was down appear once each after it
comes back; dispatch from the drawer reaches the worker's field app; an acknowledged alarm
clears on a second wall; the KPIs equal the database after a burst; nothing leaves 127.0.0.1;
screenshots at 1920×1080 and 3840×2160 land in test-output/wall/ (git-ignored) for a person."""

from __future__ import annotations

import json
import statistics
import urllib.request
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from django.utils import timezone
from rest_framework.authtoken.models import Token

from command.models import Category, Incident, Report, Worker
from command.services.incidents import incident_cancel
from command.services.reports import report_submit
from command.wall_selectors import day_start
from tests.realtime.conftest import session_cookie
from tests.support import BASE_DIR, DaphneServer, daphne_server, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

ENV = {"WHITENOISE_USE_FINDERS": "1", "PERIODIC_JOBS_SECONDS": "1"}  # the SLA job every second
OUTPUT = BASE_DIR / "test-output" / "wall"
READY = "() => window.GridWall && GridWall.ready && GridWall.status === 'live' && GridWall.stateLoads >= 1"


def token_of(user: User) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def api_post(server: DaphneServer, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json", "Accept-Language": "en"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201, 202), response.status
        result: dict[str, Any] = json.loads(response.read())
        return result


def report_body(category: str, lon: float, lat: float) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "category": category,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "note": "楼道堆物",
    }


@pytest.fixture
def people(grid: dict[str, Any], reference: dict[str, Category], make_user: Callable[..., User]) -> dict[str, Any]:
    """An operator (session + token) and a road worker on duty in A-01 (token); before ``chromium``."""
    operator = make_user("operator", username="wall-op")
    worker_user = make_user("grid_worker", username="wall-worker", team="road")
    worker = Worker.objects.get(user=worker_user)
    worker.cells.set([grid["A-01"]])
    Worker.objects.filter(pk=worker.pk).update(
        on_duty=True, last_position=Point(117.0004, 39.0004, srid=4326), last_position_at=timezone.now()
    )
    return {
        "operator": operator,
        "cookie": session_cookie(operator),
        "operator_token": token_of(operator),
        "worker": worker,
        "worker_token": token_of(worker_user),
        "reference": reference,
    }


def wall_page(
    chromium: Any, server: DaphneServer, cookie: str, *, size: tuple[int, int] = (1920, 1080), path: str = "/control/"
) -> Any:
    context = chromium.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.wall_errors = errors  # type: ignore[attr-defined]
    page.goto(server.url + path)
    page.wait_for_function(READY, timeout=20000)
    return page


def feed_count(page: Any, incident_id: int) -> int:
    return int(page.evaluate(f"document.querySelectorAll('#feed [data-incident-id=\"{incident_id}\"]').length"))


def submit(reference: dict[str, Category], category: str, lon: float, lat: float, **kw: Any) -> Report:
    return report_submit(
        reporter_id=None,
        client_id=uuid.uuid4(),
        category=reference[category],
        location=Point(lon, lat, srid=4326),
        note="测试",
        **kw,
    ).report


def test_a_report_appears_once_and_events_missed_during_a_restart_arrive_once(people, chromium) -> None:
    port = free_port()
    with daphne_server(extra_env=ENV, port=port) as server:
        page = wall_page(chromium, server, people["cookie"])
        # when: a phone posts a report through the API
        answer = api_post(
            server, "/api/v1/reports/", people["worker_token"], report_body("road_damage", 117.0006, 39.0005)
        )
        first = int(answer["incident"]["id"])
        # then: it is on the wall within seconds, without a reload: in the feed and on the map
        page.wait_for_function(
            f"() => document.querySelector('#feed [data-incident-id=\"{first}\"]') !== null", timeout=5000
        )
        page.wait_for_function(f"() => GridWall.markers['{first}'] !== undefined", timeout=5000)
    # when: the server goes away ... the wall says since when
    page.wait_for_function("() => !document.getElementById('offline').hidden", timeout=10000)
    banner = page.inner_text("#offline")
    # ... and two reports commit meanwhile
    missed = [submit(people["reference"], "sanitation", 117.0003 + 0.0002 * i, 39.0003).incident_id for i in range(2)]
    with daphne_server(extra_env=ENV, port=port):
        # then: the wall reconnects by itself, resumes, and shows each once; the banner goes
        for incident_id in missed:
            page.wait_for_function(
                f"() => document.querySelector('#feed [data-incident-id=\"{incident_id}\"]') !== null", timeout=20000
            )
        page.wait_for_function("() => document.getElementById('offline').hidden", timeout=5000)
        # the map's own stream (its bbox follows the view) reconnects on its own: wait for it too
        wanted = json.dumps([str(i) for i in missed])
        page.wait_for_function(f"() => {wanted}.every((i) => GridWall.markers[i] !== undefined)", timeout=20000)
        page.wait_for_timeout(1500)  # a doubled event would have arrived by now
        counts = [feed_count(page, i) for i in [first, *missed]]
        markers = page.evaluate("Object.keys(GridWall.markers)")
        feed_resyncs = page.evaluate("GridWall.feedResyncs")
        errors = page.wall_errors
        page.context.close()
    assert counts == [1, 1, 1]
    assert {str(i) for i in [first, *missed]} <= set(markers)
    assert "连接已中断" in banner
    assert feed_resyncs == 1, "a resume within retention replays the log; it does not reload"
    assert errors == []


def test_dispatch_reaches_the_field_app_and_an_acknowledged_alarm_clears_on_a_second_wall(people, chromium) -> None:
    worker: Worker = people["worker"]
    with daphne_server(extra_env=ENV) as server:
        wall_a = wall_page(chromium, server, people["cookie"])
        wall_b = wall_page(chromium, server, people["cookie"])
        # the worker's phone: the field app with its token
        phone_context = chromium.new_context(viewport={"width": 400, "height": 800})
        phone_context.add_init_script(f"localStorage.setItem('gc.field.token', {json.dumps(people['worker_token'])})")
        phone = phone_context.new_page()
        phone_log: list[str] = []
        phone.on("console", lambda m: phone_log.append(m.text))
        phone.on("pageerror", lambda exc: phone_log.append(str(exc)))
        phone.goto(server.url + "/field/")
        phone.wait_for_function("() => document.documentElement.dataset.live === 'live'", timeout=20000)
        # when: an emergency call comes in (priority 1: an alarm)
        incident_id = submit(people["reference"], "emergency_call", 117.0005, 39.0005).incident_id
        alarm = f'#alarm-list [data-alarm-id="{incident_id}"]'
        wall_a.wait_for_selector(alarm, timeout=5000)
        wall_b.wait_for_selector(alarm, timeout=5000)
        # ... the operator opens it from the feed and dispatches the nearest worker
        wall_a.click(f'#feed [data-incident-id="{incident_id}"]')
        button = f'#drawer-workers [data-worker-id="{worker.pk}"] [data-action=dispatch]'
        wall_a.wait_for_selector(button, timeout=5000)
        wall_a.click(button)
        # then: the phone has it, pushed (no refresh pressed)
        phone.wait_for_selector(f'#assignments [data-incident-id="{incident_id}"]', state="attached", timeout=5000)
        phone.wait_for_function("() => document.getElementById('pushed').textContent !== ''", timeout=5000)
        pushed = phone.text_content("#pushed") or ""
        # when: the operator acknowledges the alarm on wall A
        wall_a.click(f'[data-ack="{incident_id}"]')
        # then: it clears on wall B too
        wall_b.wait_for_selector(alarm, state="detached", timeout=5000)
        wall_b.wait_for_function("() => document.getElementById('alarms').hidden", timeout=5000)
        drawer_message = wall_a.inner_text("#drawer-message")
        errors = wall_a.wall_errors + wall_b.wall_errors
        for context in (wall_a.context, wall_b.context, phone_context):
            context.close()
    incident = Incident.objects.get(pk=incident_id)
    assert (incident.status, incident.worker_id) == ("dispatched", worker.pk)
    assert incident.alarm_acknowledged_by_id == people["operator"].pk
    assert str(incident_id) in pushed, phone_log
    assert drawer_message == "已完成。"
    assert errors == []


def _kpis_from_the_database() -> dict[str, Any]:
    """The KPIs computed here, independently of command.wall_selectors."""
    now = timezone.now()
    start = day_start(now)
    open_rows = Incident.objects.filter(status__in=("new", "dispatched", "accepted", "on_scene"))
    response = [
        (i.accepted_at - i.opened_at).total_seconds()
        for i in Incident.objects.filter(accepted_at__gte=start, accepted_at__lte=now)
    ]
    resolution = [
        (i.resolved_at - i.opened_at).total_seconds()
        for i in Incident.objects.filter(resolved_at__gte=start, resolved_at__lte=now)
    ]
    out: dict[str, Any] = {
        "open_total": open_rows.count(),
        "overdue": open_rows.filter(due_at__lt=now).count(),
        "reports_today": Report.objects.filter(received_at__gte=start).count(),
        "median_response_s": round(statistics.median(response)) if response else None,
        "median_resolution_s": round(statistics.median(resolution)) if resolution else None,
        "workers_on_duty": Worker.objects.filter(on_duty=True).count(),
    }
    for status in ("new", "dispatched", "accepted", "on_scene"):
        out[f"open_by_status.{status}"] = open_rows.filter(status=status).count()
    return {key: "" if value is None else str(value) for key, value in out.items()}


PAGE_KPIS = (
    "Object.fromEntries([...document.querySelectorAll('[data-kpi]')].map(n => [n.dataset.kpi, n.dataset.value]))"
)


def test_the_kpis_equal_the_database_after_a_burst(people, chromium) -> None:
    ref = people["reference"]
    op, wk = people["operator_token"], people["worker_token"]
    worker: Worker = people["worker"]
    with daphne_server(extra_env=ENV) as server:
        page = wall_page(chromium, server, people["cookie"])
        # when: a burst of reports, dispatches, steps and resolutions through the API ...
        ids = []
        for i, category in enumerate(["road_damage", "parking_dispute", "sanitation", "elevator_fault", "other"] * 2):
            body = report_body(category, 117.0002 + 0.00015 * i, 39.0002 + 0.00006 * i)
            ids.append(int(api_post(server, "/api/v1/reports/", wk, body)["incident"]["id"]))
        ids = list(dict.fromkeys(ids))
        for incident_id in ids[:4]:
            api_post(server, f"/api/v1/incidents/{incident_id}/dispatch/", op, {"worker_id": worker.pk})
        for incident_id in ids[:3]:
            api_post(server, f"/api/v1/incidents/{incident_id}/accept/", wk, {})
        api_post(server, f"/api/v1/incidents/{ids[0]}/arrive/", wk, {})
        api_post(server, f"/api/v1/incidents/{ids[0]}/resolve/", wk, {"note": "已清理"})
        api_post(server, f"/api/v1/incidents/{ids[1]}/resolve/", wk, {"note": "已处理"})
        api_post(server, f"/api/v1/incidents/{ids[-1]}/cancel/", op, {"reason": "重复上报"})
        # ... and an SLA overrun: a report from 1 h ago (falling object: 30 min SLA; a category of
        # its own, so it opens its own incident), announced by the SLA job
        late = submit(ref, "falling_object", 117.0015, 39.0008, received_at=timezone.now() - timedelta(hours=1))
        deadline_ok = False
        for _attempt in range(30):
            if Incident.objects.filter(pk=late.incident_id, overdue_at__isnull=False).exists():
                deadline_ok = True
                break
            page.wait_for_timeout(500)
        # then: once the events have landed, the page shows exactly the database's numbers
        expected = _kpis_from_the_database()
        wanted = json.dumps(expected)
        page.wait_for_function(
            f"() => {{ const shown = {PAGE_KPIS}, wanted = {wanted};"
            " return Object.keys(wanted).every(k => shown[k] === wanted[k]); }",
            timeout=10000,
        )
        shown = page.evaluate(PAGE_KPIS)
        errors = page.wall_errors
        page.context.close()
    assert deadline_ok, "the SLA job announced the overrun"
    assert {k: shown[k] for k in expected} == expected
    assert int(expected["overdue"]) >= 1 and int(expected["open_by_status.accepted"]) == 1
    assert errors == []


@pytest.fixture
def demo(transactional_db: None, make_user: Callable[..., User]) -> dict[str, Any]:
    """The demo village (fixtures/) and an operator; before ``chromium``."""
    from fixtures.loader import village_load
    from fixtures.village import village_generate

    village_load(village_generate(now=timezone.now()))
    operator = make_user("operator", username="wall-demo-op")
    return {"cookie": session_cookie(operator)}


def test_air_gapped_wall_at_both_sizes_and_desk_mode_with_screenshots(demo, chromium) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    shots: list[Path] = []
    with daphne_server(extra_env=ENV) as server:
        for name, size, path in (
            ("wall-1920x1080", (1920, 1080), "/control/"),
            ("wall-3840x2160", (3840, 2160), "/control/"),
            ("desk-1920x1080", (1920, 1080), "/control/?mode=desk"),
        ):
            context = chromium.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
            context.add_cookies([{"name": "sessionid", "value": demo["cookie"], "url": server.url}])
            page = context.new_page()

            def route(r: Any) -> None:
                if urlparse(r.request.url).hostname == "127.0.0.1":
                    r.continue_()
                else:
                    problems.append(f"left the server: {r.request.url}")
                    r.abort()

            page.route("**/*", route)
            page.on("requestfailed", lambda req: problems.append(f"failed: {req.url} {req.failure}"))
            page.on(
                "response", lambda resp: problems.append(f"{resp.status}: {resp.url}") if resp.status >= 400 else None
            )
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.goto(server.url + path)
            page.wait_for_function(READY, timeout=30000)
            page.wait_for_load_state("networkidle")
            if "desk" in name:
                page.wait_for_selector("#desk-rows tr", timeout=10000)
                page.click("#desk-rows tr")
                page.wait_for_selector("#drawer-timeline li", timeout=10000)
            else:
                page.wait_for_function(
                    "() => document.querySelectorAll('#chart-hourly canvas').length > 0", timeout=10000
                )
            shot = OUTPUT / f"{name}.png"
            page.screenshot(path=str(shot))
            shots.append(shot)
            context.close()
    assert problems == []
    for shot in shots:
        assert shot.stat().st_size > 50_000, shot  # a drawn page, not a blank one


def test_the_live_bbox_follows_the_view_in_gcj02_mode(people, chromium) -> None:
    # given: a GCJ-02 basemap: features drawn ~500 m east of where they are stored
    env = {**ENV, "BASEMAP_CRS": "gcj02", "BASEMAP_URL": "/no-tiles/{z}/{x}/{y}.png"}
    with daphne_server(extra_env=env) as server:
        page = wall_page(chromium, server, people["cookie"])
        page.route("**/no-tiles/**", lambda r: r.fulfill(status=204, body=b""))
        # when: the operator zooms right in on A-02's corner (a view ~100 m wide)
        page.evaluate(
            "(() => { const c = GridGcj02(117.0018, 39.0008); GridWallMap.map.setView([c[1], c[0]], 20); })()"
        )
        page.wait_for_function("() => GridWall.mapResyncs >= 2", timeout=10000)
        # ... and a report commits there, and another one 300 m west (out of view)
        inside = submit(people["reference"], "sanitation", 117.0018, 39.0008).incident_id
        outside = submit(people["reference"], "sanitation", 116.9983, 39.0008).incident_id
        page.wait_for_function(f"() => GridWall.markers['{inside}'] !== undefined", timeout=5000)
        page.wait_for_timeout(1000)
        markers = page.evaluate("Object.keys(GridWall.markers)")
        drawn_at = page.evaluate(
            f"(() => {{ const l = GridWall.markers['{inside}'].getLatLng(); return [l.lng, l.lat]; }})()"
        )
        page.context.close()
    # then: the map's stream holds what is in view, drawn where the basemap has it
    assert str(inside) in markers and str(outside) not in markers
    from maps.gcj02 import wgs84_to_gcj02

    expected = wgs84_to_gcj02(117.0018, 39.0008)
    assert abs(drawn_at[0] - expected[0]) < 1e-6 and abs(drawn_at[1] - expected[1]) < 1e-6


# The colour the cells layer's own tile canvas holds at a point (lon, lat): the vector tiles of
# the current zoom only, read back from the canvas they were drawn on (un-premultiplied RGBA;
# markers and other layers are not in it). null while the cells are not drawn as tiles there.
CELL_PIXEL = """([lon, lat]) => {
  const entry = GridLayerLoader.get('cells'), map = GridWallMap.map;
  if (!entry || entry.mode !== 'tiles' || !entry.layer) return null;
  const p = map.latLngToContainerPoint([lat, lon]), box = map.getContainer().getBoundingClientRect();
  const x = box.left + p.x, y = box.top + p.y;
  for (const tile of Object.values(entry.layer._tiles)) {
    if (!tile.current || tile.coords.z !== entry.layer._tileZoom) continue;
    const c = tile.el, r = c.getBoundingClientRect();
    if (x < r.left || x >= r.right || y < r.top || y >= r.bottom) continue;
    const px = Math.floor(((x - r.left) * c.width) / r.width), py = Math.floor(((y - r.top) * c.height) / r.height);
    return Array.from(c.getContext('2d').getImageData(px, py, 1, 1).data);
  }
  return null;
}"""
A01_MIDDLE, A02_MIDDLE = (117.0005, 39.0005), (117.0015, 39.0005)  # tests/conftest.py: grid


def test_cells_drawn_as_vector_tiles_are_shaded_by_open_incident_load_and_follow_it_live(people, chromium) -> None:
    """The big-layer path: with more cells than a page draws as GeoJSON the wall gets them as
    vector tiles, one canvas per tile, restyled per feature (``shadeCells``). The pixels drawn
    for a cell follow its open incidents: warm and denser the more it has, the plain cell
    colour (blue) with none; tiles drawn later (a zoom) carry the shades too."""
    ref = people["reference"]
    # given: every layer above 0 features comes as vector tiles (MAP_INLINE_MAX_FEATURES=0)
    env = {**ENV, "MAP_INLINE_MAX_FEATURES": "0"}
    # ... two open incidents in A-01 (two categories: not grouped into one), none in A-02
    loaded = [
        submit(ref, "road_damage", 117.0003, 39.0003).incident_id,
        submit(ref, "sanitation", 117.0007, 39.0007).incident_id,
    ]
    with daphne_server(extra_env=env) as server:
        page = wall_page(chromium, server, people["cookie"])
        page.wait_for_function("() => GridLayerLoader.get('cells') && GridLayerLoader.get('cells').mode === 'tiles'")

        def pixels_once(predicate: str, timeout: float = 10000) -> tuple[list[int], list[int]]:
            """Wait until the two cells' pixels [r, g, b, a] satisfy ``predicate(a01, a02)``."""
            page.wait_for_function(
                f"""([a, b]) => {{ const pixel = {CELL_PIXEL}; const p1 = pixel(a), p2 = pixel(b);
                  return p1 !== null && p2 !== null && ({predicate})(p1, p2); }}""",
                arg=[list(A01_MIDDLE), list(A02_MIDDLE)],
                timeout=timeout,
            )
            return (
                page.evaluate(CELL_PIXEL, list(A01_MIDDLE)),
                page.evaluate(CELL_PIXEL, list(A02_MIDDLE)),
            )

        # then: A-01 (2 open) is drawn warm, A-02 (none) keeps the cells' own blue
        warm_cold = pixels_once("(p1, p2) => p1[0] > p1[2] && p2[2] > p2[0]")
        # when: a phone reports in A-02 (1 open: half of A-01's load)
        api_post(server, "/api/v1/reports/", people["worker_token"], report_body("elevator_fault", *A02_MIDDLE))
        # then: A-02 turns warm too, lighter than A-01 (a smaller share of the largest load)
        both_warm = pixels_once("(p1, p2) => p2[0] > p2[2] && p1[3] > p2[3]")
        # when: the operator cancels A-01's two incidents
        for incident_id in loaded:
            api_post(server, f"/api/v1/incidents/{incident_id}/cancel/", people["operator_token"], {"reason": "测试"})
        # then: A-01 is back to blue, and A-02 (now the largest load) is drawn denser than before
        cold_warm = pixels_once(f"(p1, p2) => p1[2] > p1[0] && p2[0] > p2[2] && p2[3] > {both_warm[1][3]}")
        # when: the view zooms in (new tiles, drawn from scratch) ... then: they carry the same shades
        page.evaluate("(() => { const m = GridWallMap.map; m.setZoom(m.getZoom() + 1, {animate: false}); })()")
        zoomed = pixels_once(f"(p1, p2) => p1[2] > p1[0] && p2[0] > p2[2] && p2[3] > {both_warm[1][3]}")
        errors = page.wall_errors
        page.context.close()
    # the pixels themselves (measured: A-01 loaded [229, 21, 28, 109], A-02 empty [51, 133, 255, 25]):
    # a loaded cell is drawn much more opaque than an empty one
    assert warm_cold[0][3] > 2 * warm_cold[1][3], warm_cold
    assert cold_warm[1][3] > 2 * cold_warm[0][3], cold_warm
    assert zoomed == cold_warm, "the new zoom's tiles are drawn with the same shades"
    assert errors == []


# The incident cluster's grids (markercluster's DistanceGrid, one per zoom, for markers on their
# own and for clusters): rows, cells, the objects in them, and the rows and cells left empty.
CLUSTER_GRIDS = """() => {
  const c = GridWallMap.cluster, out = {rows: 0, empty_rows: 0, cells: 0, empty_cells: 0, objects: 0, points: 0};
  for (const grids of [c._gridUnclustered, c._gridClusters]) for (const z in grids) {
    const g = grids[z];
    for (const y in g._grid) {
      const row = g._grid[y];
      out.rows++;
      if (Object.keys(row).length === 0) out.empty_rows++;
      for (const x in row) { out.cells++; if (row[x].length === 0) out.empty_cells++; out.objects += row[x].length; }
    }
    out.points += Object.keys(g._objectPoint).length;
  }
  out.markers = Object.keys(GridWall.markers).length;
  return out;
}"""


def test_incidents_that_come_and_go_leave_nothing_behind_in_the_map(people, chromium) -> None:
    """A wall runs for days, and every incident closed takes its marker off the map: the marker
    cluster's grids hold the markers on the map and nothing else. (markercluster 1.5.3 left a row,
    and often an empty cell, in its grids for each marker removed: ~1,600 rows in ten minutes of
    bench/wall.py; maps/static/maps/markercluster-fixes.js.)"""
    ref = people["reference"]
    with daphne_server(extra_env=ENV) as server:
        page = wall_page(chromium, server, people["cookie"])
        page.wait_for_function("() => GridWall.mapLoaded === true", timeout=10000)
        before = page.evaluate(CLUSTER_GRIDS)
        # when: twelve incidents open (four categories at three points ~80 m apart: none is
        # grouped into another) ...
        ids = {
            submit(ref, category, lon, 39.0005).incident_id
            for lon in (117.0003, 117.0010, 117.0017)
            for category in ("road_damage", "parking_dispute", "sanitation", "other")
        }
        page.wait_for_function(
            f"() => Object.keys(GridWall.markers).length === {before['markers'] + len(ids)}", timeout=10000
        )
        during = page.evaluate(CLUSTER_GRIDS)
        # ... and are cancelled
        for incident_id in ids:
            incident_cancel(incident_id=incident_id, actor=people["operator"], reason="测试")
        page.wait_for_function(f"() => Object.keys(GridWall.markers).length === {before['markers']}", timeout=10000)
        after = page.evaluate(CLUSTER_GRIDS)
        errors = page.wall_errors
        page.context.close()
    assert len(ids) == 12 and during["objects"] > before["objects"]
    # then: the grids are as they were before the incidents came: no row or cell left behind
    assert after == before, (before, during, after)
    assert after["empty_rows"] == 0 and after["empty_cells"] == 0
    assert errors == []
