"""The field app's households tab in real headless Chromium on a real Daphne: a grid worker
lists the elderly living alone of their cells, opens one, changes a phone and a flag, and the
visit (queued on the phone first) updates the record and writes the visit log."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from command.models import Household, HouseholdVisit, PersonalDataAccess
from tests.field_api.test_pwa_offline import outside_the_loop
from tests.registry_support import Registry
from tests.support import field_app_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def worker(live_daphne, registry: Registry, worker_a01: User) -> User:
    worker_a01.set_password("pw-for-tests-1")
    worker_a01.save()
    return worker_a01


def test_a_visit_from_the_field_app_updates_the_household_and_logs_it(
    live_daphne, registry: Registry, worker, chromium
) -> None:
    page = chromium.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    field_app_login(page, live_daphne.url, "wang")
    # given: the households tab, filtered to the elderly living alone: two in A-01
    page.click("[data-tab=households]")
    page.wait_for_function("() => document.querySelectorAll('#households li').length === 6")
    page.select_option("#hh-filter", "elderly_alone")
    page.wait_for_function("() => document.querySelectorAll('#households li').length === 2")
    household = registry.households["east/102"]
    # when: the worker opens 王老汉's household, updates his phone and adds a flag, and records it
    page.click(f"#households li[data-household-id='{household.pk}']")
    page.wait_for_selector("#visit-form:not([hidden]) fieldset")
    page.fill("#visit-members fieldset input[name=phone]", "13677778888")
    page.check("#visit-members fieldset input[value=disabled]")
    page.fill("#visit-note", "腿脚不便")
    page.click("#visit-form button[type=submit]")
    # then: delivered, the record is current and the visit is logged
    page.wait_for_function("() => document.querySelectorAll('#visits li[data-state=delivered]').length === 1")
    updated = outside_the_loop(lambda: Household.objects.get(pk=household.pk))
    assert updated.phone == "13677778888" and updated.vulnerable == ["disabled", "elderly_alone"]
    visit = outside_the_loop(lambda: HouseholdVisit.objects.select_related("visitor").get(household_id=household.pk))
    assert visit.visitor.username == "wang" and visit.note == "腿脚不便"
    assert {e["op"] for e in visit.changes} == {"update"}
    # and opening the household showed its members for the purpose the app states, logged
    logged = outside_the_loop(lambda: list(PersonalDataAccess.objects.filter(layer="persons")))
    assert logged and {row.purpose for row in logged} == {"入户走访"}
    assert not errors, errors
