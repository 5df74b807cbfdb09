"""The operators' request desk (/desk/requests/) in headless Chromium on a real Daphne: a phone
call entered, triaged to a category and another team, published to the volunteers, taken and
resolved by a desk login with a team — every step through the REST endpoints, each answer
redrawn; a refused step shows its reason. A login without dispatch gets 404."""

from __future__ import annotations

from command.models import ServiceRequest
from command.services.requests import request_submit


def _sign_in(page, url: str, username: str, password: str, target: str) -> None:
    page.goto(f"{url}/accounts/login/?next={target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")


def _status_is(page, request_id: int, status: str) -> None:
    page.wait_for_function(
        f"() => {{ const r = document.querySelector(\"[data-request='{request_id}']\"); "
        f"return r && r.dataset.status === '{status}' }}",
        timeout=10000,
    )


def test_the_desk_enters_triages_publishes_takes_and_resolves_a_request(live_daphne, chromium, make_user, household):
    # given: a team lead at the desk (dispatch and a team), and a request from the resident page
    make_user("team_lead", username="desk-lead", team="volunteer", password="pw-desk-lead-1")
    other = request_submit(channel="in_person", title="已有的请求", actor=make_user("operator"))
    page = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, live_daphne.url, "desk-lead", "pw-desk-lead-1", "/desk/requests/")
    page.wait_for_selector(f"[data-request='{other.pk}']")
    # when: a phone call is entered
    page.fill("#call-title", "独居老人家中跳闸，需要帮忙")
    page.fill("#call-description", "幸福路1号2-301")
    page.fill("#call-phone", "13912345678")
    page.fill("#call-building", str(household.building_id))
    page.click("#call-submit")
    page.wait_for_function("() => document.querySelectorAll('.request').length === 2", timeout=10000)
    created = ServiceRequest.objects.get(title="独居老人家中跳闸，需要帮忙")
    assert (created.channel, created.status, created.requester_phone) == ("phone", "submitted", "13912345678")
    assert created.building_id == household.building_id
    card = f"[data-request='{created.pk}']"
    # triaged to a category and, instead of its own team, the sanitation team
    page.select_option(f"{card} select.category", "elevator_fault")
    page.select_option(f"{card} select.team", "sanitation")
    page.click(f"{card} .do-triage")
    _status_is(page, created.pk, "triaged")
    created.refresh_from_db()
    assert (created.category.code, created.team.code) == ("elevator_fault", "sanitation")
    # published to the volunteers, taken by the desk's own login, resolved with a note
    page.click(f"{card} .do-publish")
    _status_is(page, created.pk, "published")
    page.click(f"{card} .do-take")
    _status_is(page, created.pk, "taken")
    page.fill(f"{card} textarea.note-text", "已上门合闸，检查线路正常")
    page.click(f"{card} .do-resolve")
    _status_is(page, created.pk, "resolved")
    created.refresh_from_db()
    assert created.status == "resolved" and created.resolution_note == "已上门合闸，检查线路正常"
    assert created.worker.user.username == "desk-lead"
    # a step the service refuses shows its reason: the other request, resolved without a note
    other_card = f"[data-request='{other.pk}']"
    page.click(f"{other_card} .do-publish")
    _status_is(page, other.pk, "published")
    page.click(f"{other_card} .do-take")
    _status_is(page, other.pk, "taken")
    page.click(f"{other_card} .do-resolve")
    page.wait_for_function("() => document.querySelector('#message').textContent.length > 0", timeout=10000)
    other.refresh_from_db()
    assert other.status == "taken"
    # the operator cancels the other request after a confirmation; the requester's page follows
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{other_card} .do-cancel")
    _status_is(page, other.pk, "cancelled")
    other.refresh_from_db()
    assert other.status == "cancelled"
    assert page.locator(f"{other_card} .do-cancel").is_hidden()


def test_the_desk_is_for_dispatchers_only(live_daphne, chromium, make_user):
    make_user("grid_worker", username="just-a-volunteer", team="volunteer", password="pw-volunteer-9")
    page = chromium.new_context().new_page()
    _sign_in(page, live_daphne.url, "just-a-volunteer", "pw-volunteer-9", "/field/")
    response = page.goto(f"{live_daphne.url}/desk/requests/")
    assert response is not None and response.status == 404
    listing = page.request.get(f"{live_daphne.url}/api/v1/requests/")
    assert listing.status == 403
