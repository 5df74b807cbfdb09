"""The resident page in headless Chromium on a real Daphne: sign in by phone + code (read from
the server log, the demo SMS backend), file a request, a volunteer takes and resolves it on the
field app, the resident's open page follows each step live, and the resident rates it. A second
resident's socket hears nothing of it."""

from __future__ import annotations

import json
import re
import time

from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from command.models import ServiceRequest
from command.services.phone_login import resident_ensure
from command.services.requests import request_publish
from tests.field_api.conftest import image_bytes
from tests.realtime.conftest import session_cookie

PHONE = "13912345678"


def _code_from_log(log, phone: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(rf"SMS to {phone}: .*?(\d{{6}})", log.read_text())
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError("no code in the server log")


def test_resident_request_taken_by_a_volunteer_resolved_and_rated(live_daphne, chromium, make_user, household) -> None:
    operator = make_user("operator")
    make_user("grid_worker", username="volunteer-1", team="volunteer", password="pw-volunteer-1")
    stranger = resident_ensure(phone="13700000000")
    spy = connect(
        f"{live_daphne.ws_url}/ws/resident/",
        additional_headers={"Cookie": f"sessionid={session_cookie(stranger)}", "Origin": live_daphne.url},
    )
    assert json.loads(spy.recv(5))["type"] == "hello"
    # the resident signs in on a phone
    phone = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}).new_page()
    phone.goto(f"{live_daphne.url}/resident/")
    phone.fill("#phone", PHONE)
    phone.click("#send-code")
    phone.fill("#code", _code_from_log(live_daphne.log, PHONE))
    phone.click("#sign-in")
    # and files a request
    phone.fill("#title", "家里水管漏水，需要帮忙关阀门")
    phone.click("#submit-request")
    phone.wait_for_selector("#status")
    assert phone.locator("#status").inner_text() == "已提交"
    request = ServiceRequest.objects.get()
    assert request.channel == "resident_page" and request.requester_phone == PHONE
    # the operator publishes it: the resident's page follows by itself
    request_publish(request_id=request.pk, actor=operator)
    phone.wait_for_function("() => document.querySelector('#status').innerText === '待志愿者接单'", timeout=10000)
    # a volunteer takes it on the field app and resolves it
    field = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}).new_page()
    field.goto(f"{live_daphne.url}/accounts/login/?next=/field/requests/")
    field.fill("input[name=username]", "volunteer-1")
    field.fill("input[name=password]", "pw-volunteer-1")
    field.click("[type=submit]")
    field.click(f"[data-request='{request.pk}'] button.take")
    phone.wait_for_function("() => document.querySelector('#status').innerText === '已接单'", timeout=10000)
    field.fill(f"[data-mine='{request.pk}'] textarea[name=note]", "已关闭总阀，约了维修师傅")
    field.click(f"[data-mine='{request.pk}'] button.resolve")
    phone.wait_for_function("() => document.querySelector('#status').innerText === '已办结'", timeout=10000)
    assert "约了维修师傅" in phone.locator("#resolution").inner_text()
    # the resident rates it
    phone.select_option("#stars", "4")
    phone.fill("#feedback", "很及时")
    phone.click("#send-rating")
    phone.wait_for_selector("#rating")
    request.refresh_from_db()
    assert request.status == "closed" and request.rating == 4 and request.feedback == "很及时"
    # the other resident's socket heard nothing
    try:
        message = spy.recv(1)
    except TimeoutError:
        message = None
    assert message is None or json.loads(message)["type"] != "request"
    spy.close()


def test_a_notice_with_an_image_shows_on_the_resident_page(live_daphne, chromium, make_user, household) -> None:
    # given: an operator publishes a notice with an image over REST, for the household's grid
    operator = make_user("operator")
    token = Token.objects.create(user=operator).key
    context = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    published = context.request.post(
        f"{live_daphne.url}/api/v1/notices/",
        headers={"Authorization": f"Token {token}"},
        multipart={
            "title": "幸福路施工公告",
            "body": "本周六道路施工，请绕行。",
            "target": household.building.grid_cell.code,
            "photos": {"name": "site.jpg", "mimeType": "image/jpeg", "buffer": image_bytes("JPEG", size=(400, 300))},
        },
    )
    assert published.status == 201, published.text()
    notice_id = published.json()["id"]
    # when: the household's resident opens the resident page (signed in) and the notice
    resident = resident_ensure(phone=household.phone)
    context.add_cookies([{"name": "sessionid", "value": session_cookie(resident), "url": live_daphne.url}])
    phone = context.new_page()
    phone.goto(f"{live_daphne.url}/resident/")
    phone.click(f"a.notice[href='/resident/notices/{notice_id}/']")
    # then: the image is drawn (decoded by the browser: our own JPEG, served to this resident)
    phone.wait_for_function(
        "() => { const i = document.querySelector('.notice-photo img'); return i && i.complete && i.naturalWidth > 0 }",
        timeout=10000,
    )
    assert phone.locator("#notice-title").inner_text() == "幸福路施工公告"
    assert phone.locator(".notice-photo img").evaluate("i => i.naturalWidth") == 320  # the thumbnail
