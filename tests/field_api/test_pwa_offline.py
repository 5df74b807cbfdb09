"""The field app in real headless Chromium on a real Daphne: a report with a photo made while
offline waits on the phone, is delivered once when the phone is back online, and is in the
database once."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from django.contrib.auth.models import User
from django.db import connection

from command.models import Report, ReportPhoto, Worker
from tests.field_api.conftest import image_bytes
from tests.support import daphne_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
T = TypeVar("T")


def wait_for(predicate, timeout: float = 20.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def outside_the_loop(fn: Callable[[], T]) -> T:
    """Playwright's sync API runs an event loop in this thread, and the ORM refuses to run
    inside one: read the database from a plain thread (its own connection)."""

    def run() -> T:
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(30)


@pytest.fixture
def field_worker(live_daphne, make_user, grid) -> User:
    # Created before ``chromium`` starts its event loop (see outside_the_loop).
    user: User = make_user("grid_worker", username="wang", team="road", password="pw-for-tests-1")
    Worker.objects.get(user=user).cells.set([grid["A-01"]])
    return user


def test_offline_report_with_photo_is_delivered_once(live_daphne, field_worker, grid, chromium, tmp_path):
    # given: a road worker of A-01, and a phone standing in A-01 with GPS
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(image_bytes(size=(320, 240)))
    context = chromium.new_context(
        viewport={"width": 360, "height": 740},
        locale="zh-CN",
        geolocation={"longitude": 117.0005, "latitude": 39.0005, "accuracy": 8},
        permissions=["geolocation"],
        service_workers="allow",
    )
    page = context.new_page()
    try:
        page.goto(f"{live_daphne.url}/field/")
        page.fill("input[name=username]", "wang")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#app:not([hidden])")
        page.wait_for_function("navigator.serviceWorker.ready.then(() => true)")
        # when: offline, a report with a photo
        context.set_offline(True)
        page.wait_for_function("!navigator.onLine")
        page.click("#start-report")
        page.click("label.cat:has(input[value=road_damage])")
        page.wait_for_function("document.querySelector('#fix-text').textContent.includes('39.000500')")
        page.set_input_files("#photos", str(photo))
        page.fill("#note", "路面坑洼")
        page.click("#send")
        # then: it waits on the phone, nothing reached the server
        item = page.wait_for_selector("#outbox li[data-state=queued]")
        client_id = item.get_attribute("data-client-id")
        time.sleep(1.5)
        assert page.locator("#outbox li[data-state=queued]").count() == 1
        assert not outside_the_loop(lambda: Report.objects.exists())
        # when: back online
        context.set_offline(False)
        page.wait_for_selector("#outbox li[data-state=delivered]", timeout=20000)
        receipt = page.text_content("#outbox li[data-state=delivered] .receipt")
        # then: delivered once, in the database once, with its photo
        report = outside_the_loop(lambda: Report.objects.get(client_id=client_id))
        assert f"#{report.pk}" in (receipt or "")
        assert outside_the_loop(lambda: ReportPhoto.objects.filter(report=report).count()) == 1
        assert report.grid_cell_id == grid["A-01"].pk
        assert abs(report.location.x - 117.0005) < 1e-6 and report.accuracy_m == 8
        # a reload (from the service worker's shell) keeps the delivered receipt and sends nothing again
        page.reload()
        page.wait_for_selector("#outbox li[data-state=delivered]")
        time.sleep(1.0)
        assert outside_the_loop(lambda: Report.objects.count()) == 1
        assert page.locator("#outbox li").count() == 1
    finally:
        context.close()


@pytest.fixture
def daphne_with_static(transactional_db):
    # Static files from the apps' folders (as collectstatic would provide them in production).
    with daphne_server(extra_env={"WHITENOISE_USE_FINDERS": "1"}) as server:
        yield server


@pytest.fixture
def map_worker(daphne_with_static, make_user, grid) -> User:
    user: User = make_user("grid_worker", username="li", team="road", password="pw-for-tests-1")
    Worker.objects.get(user=user).cells.set([grid["A-01"]])
    return user


def test_dragging_the_pin_moves_the_report(daphne_with_static, map_worker, chromium):
    # given: the field app with the pin map (Leaflet from our own static files)
    server = daphne_with_static
    context = chromium.new_context(
        viewport={"width": 360, "height": 740},
        geolocation={"longitude": 117.0005, "latitude": 39.0005, "accuracy": 20},
        permissions=["geolocation"],
    )
    page = context.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    try:
        page.goto(f"{server.url}/field/")
        page.fill("input[name=username]", "li")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#app:not([hidden])")
        page.click("#start-report")
        page.click("label.cat:has(input[value=sanitation])")
        marker = page.wait_for_selector("#pin-map .leaflet-marker-icon")
        # when: drag the pin ~40 px east (at zoom 18 about 24 m at this latitude), scrolled to it
        # as a person would (the tab bar takes more of a small screen since the door-to-door tabs)
        page.evaluate("document.querySelector('#pin-map').scrollIntoView({block: 'center'})")
        box = marker.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] - 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 20, y, steps=4)
        page.mouse.move(x + 40, y, steps=4)
        page.mouse.up()
        page.click("#send")
        page.wait_for_selector("#outbox li[data-state=delivered]", timeout=20000)
        client_id = page.get_attribute("#outbox li[data-state=delivered]", "data-client-id")
        # then: the report stands east of the GPS fix, and no request left our server
        report = outside_the_loop(lambda: Report.objects.get(client_id=client_id))
        assert 117.0006 < report.location.x < 117.0012
        assert abs(report.location.y - 39.0005) < 0.00005
        assert outside == []
    finally:
        context.close()
