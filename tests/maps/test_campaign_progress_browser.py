"""The campaign progress panel in real headless Chromium on a real Daphne: an operator's panel
shows the overall percentage and per-building colours moving as a grid worker marks targets
from the field app — online, and offline (queued on the phone, delivered and counted once when
it is back online)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from command.models import Campaign, CampaignMark
from command.services.campaigns import campaign_create
from tests.field_api.test_pwa_offline import outside_the_loop
from tests.registry_support import Registry
from tests.support import field_app_login, site_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def census(live_daphne, registry: Registry, worker_a01: User, make_user) -> Campaign:
    # Created before ``chromium`` starts its event loop. 9 households: 6 in A-01, 3 in A-02.
    make_user("operator", username="desk", password="pw-for-tests-1")
    worker_a01.set_password("pw-for-tests-1")
    worker_a01.save()
    return campaign_create(actor_id=None, name="入户普查", kind="census", target_kind="households", cell_codes=["A"])


def test_wall_progress_moves_as_visits_are_posted_from_the_field_app(live_daphne, census: Campaign, chromium) -> None:
    wall = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN").new_page()
    phone_context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    phone = phone_context.new_page()
    errors: list[str] = []
    wall.on("pageerror", lambda exc: errors.append(str(exc)))
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    # given: the operator's progress panel, live, at 0 %
    site_login(wall, live_daphne.url, f"/maps/campaigns/{census.pk}/progress/", "desk")
    wall.wait_for_function("() => document.querySelector('#campaign-progress').dataset.live === 'live'")
    wall.wait_for_function("() => document.querySelectorAll('#campaign-progress svg path').length === 3")
    assert wall.text_content("[data-testid=campaign-percent]") == "0"
    # and the worker of A-01 in the field app's door-to-door tab: the 6 targets of A-01
    field_app_login(phone, live_daphne.url, "wang")
    phone.click("[data-tab=campaigns]")
    phone.wait_for_function("() => document.querySelectorAll('#targets li[data-target-id]').length === 6")
    # the worker's list is per cell, and the map shows the two buildings of A-01 with targets not
    # covered (A-02's is not theirs); a tap on one lists that building's targets only
    assert phone.eval_on_selector_all("#targets li.cell-head", "els => els.map(e => e.textContent)") == [
        "A-01：6 户（家）未走访"
    ]
    phone.wait_for_function("() => document.querySelector('#targets-map').dataset.buildings === '2'")
    phone.click("path.gc-open-building >> nth=0")
    phone.wait_for_selector("#targets-building:not([hidden])")
    shown = phone.eval_on_selector_all("#targets li[data-target-id]", "els => els.map(e => e.dataset.buildingId)")
    assert len(set(shown)) == 1 and len(shown) in (2, 4)
    phone.click("#targets-all")
    phone.wait_for_function("() => document.querySelectorAll('#targets li[data-target-id]').length === 6")
    # and the desk lists what is not covered per cell: 6 in A-01, 3 in A-02
    wall.wait_for_function("() => document.querySelector('#campaign-open').dataset.count === '9'")
    opened = wall.eval_on_selector_all(
        "#campaign-open details", "els => els.map(e => [e.dataset.cell, e.dataset.open])"
    )
    assert opened == [["A-01", "6"], ["A-02", "3"]]

    def mark(outcome: str) -> None:
        phone.click(f"#targets li[data-target-id] >> nth=0 >> button[data-outcome={outcome}]")

    # when: two visits posted online
    mark("visited")
    wall.wait_for_function("() => document.querySelector('#campaign-progress').dataset.percent === '11.1'")
    mark("refused")
    wall.wait_for_function("() => document.querySelector('#campaign-progress').dataset.percent === '22.2'")
    # then: the building of those households is coloured (touched), the A-02 one is not
    fills = wall.eval_on_selector_all("#campaign-progress svg path", "els => els.map(e => e.getAttribute('fill'))")
    assert fills.count("#5f6b7a") == 2 and len(fills) == 3
    # and the desk's list follows: 4 left in A-01
    wall.wait_for_function("() => document.querySelector('#campaign-open').dataset.count === '7'")
    assert wall.get_attribute("#campaign-open details[data-cell='A-01']", "data-open") == "4"
    # when: offline, one visit and one nobody-home: they wait on the phone ...
    phone_context.set_offline(True)
    phone.wait_for_function("() => !navigator.onLine")
    mark("visited")
    mark("absent")
    phone.wait_for_function("() => document.querySelectorAll('#marks li[data-state=queued]').length === 2")
    wall.wait_for_timeout(1500)
    assert wall.get_attribute("#campaign-progress", "data-percent") == "22.2"
    # ... and are delivered once when the phone is back online: 3 covered of 9
    phone_context.set_offline(False)
    phone.wait_for_function(
        "() => document.querySelectorAll('#marks li[data-state=delivered]').length === 4", timeout=30000
    )
    wall.wait_for_function("() => document.querySelector('#campaign-progress').dataset.percent === '33.3'")
    assert wall.text_content("[data-testid=campaign-percent]") == "33.3"
    assert outside_the_loop(lambda: CampaignMark.objects.filter(target__campaign=census).count()) == 4
    census_now = outside_the_loop(lambda: Campaign.objects.get(pk=census.pk))
    assert (census_now.visited, census_now.refused, census_now.absent, census_now.pending) == (2, 1, 1, 5)
    assert not errors, errors
