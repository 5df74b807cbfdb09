"""The field app's second tab in real headless Chromium on a real Daphne: a grid worker sees the
open incident of their team, accepts it and arrives; going on duty shares the phone's position,
and a move of the phone reaches the server as a location ping."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point

from command.models import Incident, LocationPing, Worker
from command.services.reports import report_submit
from tests.field_api.test_pwa_offline import outside_the_loop, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def worker_and_incident(live_daphne, make_user, grid, reference) -> tuple[User, Incident]:
    # Made before ``chromium`` starts its event loop (see outside_the_loop).
    user: User = make_user("grid_worker", username="zhao", team="road", password="pw-for-tests-1")
    Worker.objects.get(user=user).cells.set([grid["A-01"]])
    result = report_submit(
        reporter_id=None,
        client_id=uuid.uuid4(),
        category=reference["road_damage"],
        location=Point(117.0004, 39.0004, srid=4326),
        note="井盖缺失",
    )
    Worker.objects.filter(user=user).update(on_duty=False)  # routed to them; now off duty
    return user, result.report.incident


def test_assignments_duty_and_pings(live_daphne, worker_and_incident, chromium):
    user, incident = worker_and_incident
    context = chromium.new_context(
        viewport={"width": 360, "height": 740},
        locale="zh-CN",
        geolocation={"longitude": 117.0005, "latitude": 39.0005, "accuracy": 8},
        permissions=["geolocation"],
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        page.goto(f"{live_daphne.url}/field/")
        page.fill("input[name=username]", "zhao")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#app:not([hidden])")
        # when: the assignments tab
        page.click("[data-tab=assignments]")
        item = page.wait_for_selector(f"#assignments li[data-incident-id='{incident.pk}']")
        # then: the team's open incident, with its distance from the phone
        assert re.search(r"\d+ 米", item.text_content() or "")
        # when: accept, then arrive
        item.query_selector("button").click()
        wait_for(lambda: outside_the_loop(lambda: Incident.objects.get(pk=incident.pk).status) == "accepted")
        page.wait_for_selector(f"#assignments li[data-incident-id='{incident.pk}'] button")
        page.locator(f"#assignments li[data-incident-id='{incident.pk}'] button").first.click()
        wait_for(lambda: outside_the_loop(lambda: Incident.objects.get(pk=incident.pk).status) == "on_scene")
        stamped = outside_the_loop(lambda: Incident.objects.get(pk=incident.pk))
        assert stamped.accepted_at and stamped.arrived_at and stamped.worker.user_id == user.pk
        # when: on duty
        page.check("#duty")
        # then: on duty on the server, and the position shared at once
        worker = wait_for(
            lambda: outside_the_loop(
                lambda: Worker.objects.filter(user=user, on_duty=True, last_position__isnull=False).first()
            )
        )
        assert abs(worker.last_position.x - 117.0005) < 1e-6
        # when: the phone moves (more than the ping interval later)
        page.evaluate("() => { const now = Date.now; Date.now = () => now() + 20000; }")  # 20 s on
        context.set_geolocation({"longitude": 117.0016, "latitude": 39.0007, "accuracy": 5})
        # then: the new position arrives as a ping
        moved = wait_for(
            lambda: outside_the_loop(
                lambda: (
                    Worker.objects.filter(user=user, last_position__isnull=False)
                    .exclude(last_position=Point(117.0005, 39.0005, srid=4326))
                    .first()
                )
            )
        )
        assert moved.last_position.x > 117.001
        assert outside_the_loop(lambda: LocationPing.objects.filter(worker__user=user).count()) >= 2
    finally:
        context.close()


def test_signed_in_to_the_site_the_field_app_needs_no_second_login(live_daphne, worker_and_incident, chromium):
    context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    try:
        # given: signed in through the site's login page
        page.goto(f"{live_daphne.url}/accounts/login/")
        page.fill("input[name=username]", "zhao")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("form [type=submit]")
        page.wait_for_load_state()
        # when: the field app opens
        page.goto(f"{live_daphne.url}/field/")
        # then: the app, not its login form
        page.wait_for_selector("#app:not([hidden])")
        assert page.locator("#login").is_hidden()
        assert page.evaluate("localStorage.getItem('gc.field.token')")
    finally:
        context.close()
