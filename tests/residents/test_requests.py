"""The request pipeline: submit, publish, take (first taker wins), resolve, rate; SLA; sign-in."""

from __future__ import annotations

import io
import logging
import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from command.models import Event, PhoneCode, RequestPhoto, ServiceRequest, Worker
from command.services.phone_login import PhoneLoginRefused, phone_code_send, phone_code_verify, resident_ensure
from command.services.requests import (
    RequestStateError,
    request_publish,
    request_rate,
    request_resolve,
    request_submit,
    request_take,
    requests_mark_overdue,
)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 120, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def people(make_user, grid, household):
    household.phone = "13912345678"
    household.save(update_fields=["phone"])
    return {
        "resident": resident_ensure(phone="13912345678"),
        "operator": make_user("operator"),
        "v1": Worker.objects.get(user=make_user("grid_worker", team="volunteer")),
        "v2": Worker.objects.get(user=make_user("grid_worker", team="volunteer")),
    }


def _published(people, household) -> ServiceRequest:
    request = request_submit(
        channel="resident_page", title="帮忙取药", requester=people["resident"], building_id=household.building_id
    )
    return request_publish(request_id=request.pk, actor=people["operator"])


def test_a_request_walks_from_the_resident_to_a_volunteer_and_back(people, household) -> None:
    # given a resident's request, published to the volunteers
    request = _published(people, household)
    assert request.building_id == household.building_id and request.grid_cell is not None
    # when one volunteer takes it, resolves it with a photo, and the resident rates it
    request_take(request_id=request.pk, worker=people["v1"])
    request_resolve(request_id=request.pk, worker=people["v1"], note="药已送到", photos=[jpeg()])
    done = request_rate(request_id=request.pk, requester=people["resident"], rating=5, feedback="谢谢")
    # then
    assert done.status == "closed" and done.rating == 5 and RequestPhoto.objects.filter(request=done).count() == 1
    actions = [e.payload["properties"]["action"] for e in Event.objects.filter(layer="requests").order_by("seq")]
    assert actions == ["submit", "publish", "take", "resolve", "rate"]
    assert Event.objects.filter(layer="requests").first().kind == "request.created"  # type: ignore[union-attr]


def test_the_resident_household_places_the_request_and_others_cannot_touch_it(people, household) -> None:
    request = _published(people, household)
    other = resident_ensure(phone="13700000000")
    request_take(request_id=request.pk, worker=people["v1"])
    with pytest.raises(RequestStateError):
        request_resolve(request_id=request.pk, worker=people["v2"], note="不是我接的")
    request_resolve(request_id=request.pk, worker=people["v1"], note="好了")
    with pytest.raises(ServiceRequest.DoesNotExist):
        request_rate(request_id=request.pk, requester=other, rating=5)
    with pytest.raises(ValidationError):
        request_rate(request_id=request.pk, requester=people["resident"], rating=6)
    client = Client()
    client.force_login(other)
    assert client.get(f"/resident/requests/{request.pk}/").status_code == 404


def test_two_volunteers_taking_the_same_order_at_once_exactly_one_wins(transactional_db, people, household) -> None:
    # given
    request = _published(people, household)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def take(name: str) -> None:
        try:
            barrier.wait(5)
            request_take(request_id=request.pk, worker=people[name])
            outcomes[name] = "won"
        except RequestStateError:
            outcomes[name] = "lost"
        finally:
            connection.close()  # each thread had its own database session

    # when both take at the same moment, each in its own database session
    threads = [threading.Thread(target=take, args=(name,)) for name in ("v1", "v2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # then exactly one won, and the request is theirs
    assert sorted(outcomes.values()) == ["lost", "won"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "won")
    request.refresh_from_db()
    assert request.status == "taken" and request.worker_id == people[winner].pk
    assert Event.objects.filter(layer="requests", payload__properties__action="take").count() == 1


def test_an_open_request_past_its_sla_is_flagged_overdue_once(people, household) -> None:
    request = _published(people, household)
    done = request_submit(channel="resident_page", title="已办", requester=people["resident"])
    request_publish(request_id=done.pk, actor=people["operator"])
    request_take(request_id=done.pk, worker=people["v1"])
    request_resolve(request_id=done.pk, worker=people["v1"], note="ok")
    late = request.due_at + timedelta(seconds=1)
    assert requests_mark_overdue(now=request.due_at - timedelta(seconds=1)) == []
    assert requests_mark_overdue(now=late + timedelta(days=2)) == [request.pk]
    assert requests_mark_overdue(now=late + timedelta(days=3)) == []
    request.refresh_from_db()
    assert request.overdue
    assert Event.objects.filter(payload__properties__action="overdue").count() == 1


def test_the_api_answers_bad_steps_with_a_reason(people, household) -> None:
    operator, worker = APIClient(), APIClient()
    operator.force_authenticate(people["operator"])
    worker.force_authenticate(people["v1"].user)
    # an operator enters a phone call
    response = operator.post(
        "/api/v1/requests/",
        {"channel": "phone", "title": "楼道灯坏了", "requester_phone": "13800000000"},
        format="json",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert operator.post(f"/api/v1/requests/{pk}/triage/", {"category": "nope"}, format="json").status_code == 400
    assert worker.post("/api/v1/requests/", {"channel": "phone", "title": "x"}, format="json").status_code == 403
    assert worker.post(f"/api/v1/requests/{pk}/take/").status_code == 404  # not in the pool yet: not theirs to see
    assert operator.post(f"/api/v1/requests/{pk}/publish/").status_code == 200
    assert worker.post(f"/api/v1/requests/{pk}/take/").status_code == 200
    again = worker.post(f"/api/v1/requests/{pk}/take/")
    assert again.status_code == 409 and again.json()["detail"]
    assert worker.post(f"/api/v1/requests/{pk}/resolve/", {"note": ""}).status_code == 400
    assert worker.post(f"/api/v1/requests/{pk}/resolve/", {"note": "换了灯泡"}).status_code == 200
    assert operator.post("/api/v1/requests/999999/publish/").status_code == 404


def test_an_operator_cancels_an_open_request_through_the_api_with_its_event(people, household) -> None:
    operator, worker = APIClient(), APIClient()
    operator.force_authenticate(people["operator"])
    worker.force_authenticate(people["v1"].user)
    request = _published(people, household)
    # a volunteer may see a published request but not cancel it: 403 with the reason, nothing written
    refused = worker.post(f"/api/v1/requests/{request.pk}/cancel/")
    assert refused.status_code == 403 and refused.json()["detail"]
    assert ServiceRequest.objects.get(pk=request.pk).status == "published"
    # unknown fields are refused, not ignored
    assert operator.post(f"/api/v1/requests/{request.pk}/cancel/", {"status": "x"}, format="json").status_code == 400
    # the operator cancels: one request.updated event names the step
    before = Event.objects.count()
    done = operator.post(f"/api/v1/requests/{request.pk}/cancel/")
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    events = list(Event.objects.order_by("seq")[before:])
    assert [(e.kind, e.payload["properties"]["action"]) for e in events] == [("request.updated", "cancel")]
    # a cancelled request cannot be cancelled or taken again: 409 with the reason
    again = operator.post(f"/api/v1/requests/{request.pk}/cancel/")
    assert again.status_code == 409 and again.json()["detail"]
    assert worker.post(f"/api/v1/requests/{request.pk}/take/").status_code in (404, 409)
    assert operator.post("/api/v1/requests/999999/cancel/").status_code == 404


def test_the_requester_withdraws_an_open_request_from_the_resident_page(people, household) -> None:
    request = _published(people, household)
    other = Client()
    other.force_login(resident_ensure(phone="13700000000"))
    assert other.post(f"/resident/requests/{request.pk}/cancel/").status_code == 404  # not theirs: like missing
    client = Client()
    client.force_login(people["resident"])
    page = client.get(f"/resident/requests/{request.pk}/")
    assert 'id="withdraw-request"' in page.content.decode()
    response = client.post(f"/resident/requests/{request.pk}/cancel/")
    assert response.status_code == 302
    assert ServiceRequest.objects.get(pk=request.pk).status == "cancelled"
    page = client.get(f"/resident/requests/{request.pk}/")
    assert 'id="withdraw-request"' not in page.content.decode()  # nothing left to withdraw
    again = client.post(f"/resident/requests/{request.pk}/cancel/")
    assert again.status_code == 409 and "已取消" in again.content.decode()


def test_phone_sign_in_with_a_hashed_expiring_attempt_limited_code(
    db, caplog, settings, django_capture_on_commit_callbacks
) -> None:
    with caplog.at_level(logging.WARNING, logger="gridcommand.sms"), django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(PhoneLoginRefused):
            phone_code_send(phone="12345")
        phone_code_send(phone="139 1234 5678")
    code = re.search(r"\b(\d{6})\b", caplog.text).group(1)  # type: ignore[union-attr]
    stored = PhoneCode.objects.get()
    assert code not in stored.code_hash and len(stored.code_hash) == 64
    # wrong guesses count; after the limit even the right code is refused
    for _ in range(settings.PHONE_CODE_MAX_ATTEMPTS):
        with pytest.raises(PhoneLoginRefused):
            phone_code_verify(phone="13912345678", code="000000" if code != "000000" else "111111")
    with pytest.raises(PhoneLoginRefused) as locked:
        phone_code_verify(phone="13912345678", code=code)
    assert locked.value.status == 429
    # a fresh code works once, and not after it expired
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gridcommand.sms"), django_capture_on_commit_callbacks(execute=True):
        phone_code_send(phone="13912345678")
    code = re.search(r"\b(\d{6})\b", caplog.text).group(1)  # type: ignore[union-attr]
    user = phone_code_verify(phone="13912345678", code=code)
    assert user.has_perm("command.use_resident_page") and not user.has_perm("command.use_field_app")
    with pytest.raises(PhoneLoginRefused):
        phone_code_verify(phone="13912345678", code=code)  # used
    with caplog.at_level(logging.WARNING, logger="gridcommand.sms"), django_capture_on_commit_callbacks(execute=True):
        phone_code_send(phone="13912345678")
    PhoneCode.objects.filter(used_at__isnull=True).update(expires_at=stored.created_at)
    with pytest.raises(PhoneLoginRefused):
        phone_code_verify(phone="13912345678", code=re.findall(r"\b(\d{6})\b", caplog.text)[-1])
    assert User.objects.filter(username="resident-13912345678").count() == 1
