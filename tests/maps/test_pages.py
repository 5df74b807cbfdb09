"""Map pages: one folium builder, every asset from our static files, the policy decides the
layers; headless Chromium loads the page with every non-local request blocked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from django.test import Client

from maps.pages import map_build, map_page_html
from tests.maps.conftest import Village

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


@pytest.mark.django_db
def test_pages_require_login(village: Village) -> None:
    for path in ("/control/", "/police/", "/maps/print/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["wall", "police", "print"])
def test_no_asset_leaves_the_server(village: Village, make_user: Callable, kind: str) -> None:
    html = map_page_html(user=make_user("operator"), kind=kind, title="t")
    assert not EXTERNAL.findall(html)
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert "cdn" not in html.lower()
    # markercluster comes with our fix to it, after it (maps/static/maps/markercluster-fixes.js)
    cluster, fixes = (
        html.find("/static/vendor/markercluster/leaflet.markercluster.js"),
        html.find("/static/maps/markercluster-fixes.js"),
    )
    assert 0 < cluster < fixes, kind


def shows(html: str, text: str) -> bool:
    """``text`` is on the page, as is or JSON-escaped (folium writes GeoJSON with \\uXXXX)."""
    return text in html or json.dumps(text)[1:-1] in html


@pytest.mark.django_db
def test_police_page_draws_no_household_and_no_personal_data(village: Village, login: Callable) -> None:
    police_html = login("police").get("/maps/police/", follow=True).content.decode()
    worker_html = login("grid_worker").get("/maps/print/").content.decode()
    assert shows(worker_html, "住户") and shows(worker_html, "路口1")
    assert not shows(police_html, "住户") and not shows(police_html, "张三")
    assert "13800000001" not in police_html and "head_name" not in police_html
    assert shows(police_html, "路口1")  # the cameras are there


@pytest.mark.django_db
def test_basemap_setting_and_gcj02_shift(village: Village, make_user: Callable, settings) -> None:
    user = make_user("operator")
    assert "tileLayer" not in map_page_html(user=user, kind="print", title="t")
    settings.BASEMAP_URL = "/basemap/{z}/{x}/{y}.png"
    settings.BASEMAP_CRS = "gcj02"
    html = map_page_html(user=user, kind="wall", title="t")
    assert "/basemap/{z}/{x}/{y}.png" in html and "GridGcj02" in html
    # C1 sits at 117.0005, 39.0005 in storage; on a GCJ-02 basemap it is drawn ~0.006 degrees east
    assert "117.0005," not in html
    m = map_build(user=user, kind="print")
    assert m.location[1] > 117.005


@pytest.fixture
def wall_user(make_user: Callable) -> None:
    # before ``chromium``: Playwright's sync API runs an event loop, and the ORM refuses to run inside one
    make_user("admin", username="wall", password="pw-for-tests-1")  # the police view takes use_police_map


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_draws_the_village_with_the_network_blocked(village: Village, wall_user: None, chromium) -> None:
    from urllib.parse import urlparse

    from tests.support import daphne_server

    failed: list[str] = []
    blocked: list[str] = []
    with daphne_server(extra_env={"WHITENOISE_USE_FINDERS": "1"}) as server:
        context = chromium.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()

        def route(r) -> None:
            if urlparse(r.request.url).hostname == "127.0.0.1":
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("requestfailed", lambda req: failed.append(f"{req.url} {req.failure}"))
        bad_status: list[str] = []
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda resp: bad_status.append(resp.url) if resp.status >= 400 else None)
        page.goto(f"{server.url}/accounts/login/?next=/police/")
        page.fill("input[name=username]", "wall")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("[type=submit]")
        page.wait_for_url("**/police/")
        page.wait_for_function("() => document.querySelectorAll('path.leaflet-interactive').length >= 4", timeout=20000)
        page.wait_for_load_state("networkidle")
        paths = page.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
        clusters = page.eval_on_selector_all(".marker-cluster", "els => els.length")
        incidents = page.evaluate("window.GridMapIncidents ? window.GridMapIncidents.count() : -1")
        zoom = page.evaluate("Object.values(window).find(v => v instanceof L.Map).getZoom()")
        # a live event (as realtime/live.js delivers it) adds a marker; a closing one removes it
        event = (
            "{seq: 99, kind: 'incident.created', layer: 'incidents', object_id: '9999', created_at: '', "
            "payload: {id: '9999', geometry: {type: 'Point', coordinates: [117.0012, 39.0005]}, "
            "properties: {id: 9999, status: STATUS}}}"
        )
        page.evaluate(f"window.GridMapIncidents.apply({event.replace('STATUS', repr('new'))})")
        after_new = page.evaluate("window.GridMapIncidents.count()")
        page.evaluate(f"window.GridMapIncidents.apply({event.replace('STATUS', repr('closed'))})")
        after_closed = page.evaluate("window.GridMapIncidents.count()")
        controls = page.eval_on_selector_all(".leaflet-control-layers, .leaflet-control-scale", "els => els.length")
        context.close()
    assert failed == [] and blocked == [] and bad_status == [] and errors == []
    # 3 cells + 2 buildings + 2 cones + 2 cameras + the hotspot, and the clustered incidents
    assert paths >= 9
    # the open ones: six hot, the old one, and the one from the report
    assert incidents == 8, (incidents, clusters, zoom)
    assert (after_new, after_closed) == (9, 8)
    assert controls == 2


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_draws_large_layers_from_vector_tiles(village: Village, wall_user: None, chromium) -> None:
    from urllib.parse import urlparse

    from tests.support import daphne_server

    tile_status: list[int] = []
    errors: list[str] = []
    # every layer above 0 features counts as "large" here, so all come as vector tiles
    env = {"WHITENOISE_USE_FINDERS": "1", "MAP_INLINE_MAX_FEATURES": "0"}
    with daphne_server(extra_env=env) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.route(
            "**/*",
            lambda r: r.continue_() if urlparse(r.request.url).hostname == "127.0.0.1" else r.abort(),
        )
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda resp: tile_status.append(resp.status) if "/maps/tiles/" in resp.url else None)
        page.goto(f"{server.url}/accounts/login/?next=/maps/print/")
        page.fill("input[name=username]", "wall")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("[type=submit]")
        page.wait_for_url("**/maps/print/")
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => document.querySelectorAll('svg.leaflet-tile path').length >= 5", timeout=20000)
        drawn = page.eval_on_selector_all("svg.leaflet-tile path", "els => els.length")
        context.close()
    assert errors == []
    assert tile_status and set(tile_status) <= {200, 304}
    assert drawn >= 5  # cells, buildings, cones, cameras from tiles


@pytest.fixture
def demo_village(transactional_db: None, make_user: Callable) -> dict[str, int]:
    """The demo village of ``manage.py seed`` (fixtures/), and a wall login; before ``chromium``."""
    from django.utils import timezone

    from fixtures.loader import village_load
    from fixtures.village import village_generate

    counts = village_load(village_generate(now=timezone.now()))
    make_user("operator", username="wall-demo", password="pw-for-tests-1")
    return counts


@pytest.mark.browser
def test_chromium_draws_the_demo_village(demo_village: dict[str, int], chromium) -> None:
    from urllib.parse import urlparse

    from tests.support import daphne_server

    problems: list[str] = []
    with daphne_server(extra_env={"WHITENOISE_USE_FINDERS": "1"}) as server:
        context = chromium.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()

        def route(r) -> None:
            if urlparse(r.request.url).hostname == "127.0.0.1":
                r.continue_()
            else:
                problems.append(f"left the server: {r.request.url}")
                r.abort()

        page.route("**/*", route)
        page.on("requestfailed", lambda req: problems.append(f"failed: {req.url} {req.failure}"))
        page.on("response", lambda resp: problems.append(f"{resp.status}: {resp.url}") if resp.status >= 400 else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.goto(f"{server.url}/accounts/login/?next=/control/")
        page.fill("input[name=username]", "wall-demo")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("[type=submit]")
        page.wait_for_url("**/control/")
        page.wait_for_load_state("networkidle")
        layers = page.eval_on_selector_all(".leaflet-control-layers-overlays label", "els => els.map(e => e.innerText)")
        paths = page.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
        legend = page.inner_text(".gc-legend")
        context.close()
    assert problems == []
    assert "摄像头" in legend and "住户" in legend  # an operator sees households
    assert paths >= demo_village["cells"] + demo_village["cameras"]
    assert any("网格" in name for name in layers) and any("摄像头" in name for name in layers)
    assert any("事件" in name for name in layers)


@pytest.mark.django_db
def test_a_page_with_empty_layers_renders(grid, make_user: Callable) -> None:
    # given grid cells and nothing else: no cameras, no incidents, no hotspots
    html = map_page_html(user=make_user("police"), kind="police", title="t")
    # then the page is drawn all the same
    assert "A-01" in html
