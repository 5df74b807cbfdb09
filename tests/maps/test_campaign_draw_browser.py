"""Starting a door-to-door campaign from the desk in real headless Chromium on a real Daphne:
the operator picks a grid cell by clicking it on the map, then draws an area instead (its
corners clicked on the map) with a household filter; the campaign's targets are the filtered
households of the buildings inside the drawn area only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from command.models import Campaign
from tests.field_api.test_pwa_offline import outside_the_loop
from tests.registry_support import Registry
from tests.support import site_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def desk(live_daphne, registry: Registry, make_user) -> User:
    return make_user("operator", username="desk", password="pw-for-tests-1")


def test_an_operator_draws_an_area_and_starts_a_campaign(live_daphne, registry: Registry, desk: User, chromium):
    page = chromium.new_context(viewport={"width": 1280, "height": 1000}, locale="en-US").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    site_login(page, live_daphne.url, "/maps/campaigns/", "desk")
    page.wait_for_function("() => document.querySelector('#campaign-map').dataset.ready === '1'")
    # given: a click on A-02 on the map picks it in the form
    page.click("path.gc-cell-A-02")
    assert page.is_checked("input[name=cells][value='A-02']")
    # when: the operator draws instead (the pick is dropped): a box over the west half of A-01
    # (A-01 is 117.000-117.001 x 39.000-39.001; 西楼 stands at 117.0001-117.0003 x 39.0004-39.0006,
    # 东楼 at 117.0006-117.0008: outside the box)
    page.click("#draw-start")
    assert not page.is_checked("input[name=cells][value='A-02']")
    box = page.locator("path.gc-cell-A-01").bounding_box()
    assert box is not None
    for fx, fy in ((0.05, 0.3), (0.45, 0.3), (0.45, 0.7), (0.05, 0.7)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.wait_for_function("() => document.querySelector('#campaign-map').dataset.corners === '4'")
    page.click("#draw-finish")
    page.wait_for_function("() => document.querySelector('#campaign-map').dataset.area === 'drawn'")
    # and the filter: households with someone elderly living alone; then start it
    page.fill("input[name=name]", "西楼独居老人走访")
    page.select_option("select[name=target_kind]", "households")
    page.check("input[name=vulnerable][value=elderly_alone]")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_url("**/maps/campaigns/*/progress/")
    # then: one target, 周奶奶's household in 西楼 (not 王老汉's in 东楼 nor 陈老太's in A-02)
    campaign = outside_the_loop(lambda: Campaign.objects.get(name="西楼独居老人走访"))
    targets = outside_the_loop(lambda: list(campaign.targets.values_list("household_id", flat=True)))
    assert targets == [registry.households["west/1"].pk]
    assert campaign.filters["cells"] == [] and campaign.area.contains(registry.a01_west.footprint.point_on_surface)
    assert not errors, errors
