"""Issue 18: what a login may see of other people's reports does not widen when it reports into
an incident, is dispatched to it, or reuses someone's idempotency key.

A police login sees incidents (category, place, status) but not the reports layer's personal
data (``note``, the reporter) nor anyone's photos: in every channel (REST incident detail and
assignments, photos, Open311, the websocket).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from command.models import Incident, PersonalDataAccess, Report, ReportPhoto
from command.services.incidents import incident_dispatch
from tests.field_api.conftest import client_for, image_bytes, report_body

REPORTS = "/api/v1/reports/"
SECRET = "3号楼502 张三 13800000000 独居老人"
SPOT = [117.0002, 39.0005]


def post(api: APIClient, *, note: str, photo: bytes | None = None, client_id: str | None = None) -> Any:
    body = report_body(
        note=note,
        client_id=client_id or str(uuid.uuid4()),
        location=json.dumps({"type": "Point", "coordinates": SPOT}),
    )
    if photo is not None:
        body["photos"] = [SimpleUploadedFile("p.jpg", photo)]
    return api.post(REPORTS, body, format="multipart")


@pytest.fixture
def resident_report(api: APIClient) -> dict[str, Any]:
    answer = post(api, note=SECRET, photo=image_bytes(size=(90, 60)))
    assert answer.status_code == 201, answer.content
    return answer.json()


def _texts(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_police_reporting_into_an_incident_sees_no_one_elses_contents(
    resident_report: dict[str, Any], make_user: Any
) -> None:
    incident_id = resident_report["incident"]["id"]
    police = client_for(make_user("police", username="officer"))
    # the police login files a report of the same category at the same spot: it joins the incident
    mine = post(police, note="巡逻发现", photo=image_bytes(size=(70, 50)))
    assert mine.status_code == 201, mine.content
    assert mine.json()["incident"]["id"] == incident_id
    # REST incident detail: the incident, its own photo, nothing of the resident's report
    detail = police.get(f"/api/v1/incidents/{incident_id}/")
    assert detail.status_code == 200
    props = detail.json()["properties"]
    assert props["note"] is None and props["resolution_note"] is None
    assert [p["id"] for p in props["photos"]] == [p["id"] for p in mine.json()["photos"]]
    assert SECRET not in _texts(detail.json())
    # photos: the resident's photo and thumbnail are 404 (as a photo that does not exist)
    resident_photo = resident_report["photos"][0]
    assert police.get(resident_photo["url"]).status_code == 404
    assert police.get(resident_photo["thumbnail_url"]).status_code == 404
    assert police.get(mine.json()["photos"][0]["url"]).status_code == 200
    # Open311: only its own request, the resident's is 404
    listed = police.get("/open311/v2/requests.json")
    assert listed.status_code == 200
    assert [r["service_request_id"] for r in listed.json()] == [str(mine.json()["id"])]
    assert SECRET not in _texts(listed.json())
    assert police.get(f"/open311/v2/requests/{resident_report['id']}.json").status_code == 404
    # nothing unmasked, nothing logged for the police login
    assert not PersonalDataAccess.objects.filter(user__username="officer").exists()


def test_police_dispatched_as_a_worker_sees_no_notes(resident_report: dict[str, Any], make_user: Any) -> None:
    incident_id = resident_report["incident"]["id"]
    officer = make_user("police", username="officer-worker", team="road")
    incident_dispatch(incident_id=incident_id, worker_id=officer.worker.pk, actor=make_user("operator"))
    police = client_for(officer)
    assignments = police.get("/api/v1/assignments/")
    assert assignments.status_code == 200
    features = assignments.json()["features"]
    assert [f["id"] for f in features] == [incident_id]
    assert features[0]["properties"]["note"] is None
    detail = police.get(f"/api/v1/incidents/{incident_id}/").json()
    assert detail["properties"]["note"] is None and detail["properties"]["photos"] == []
    assert SECRET not in _texts(assignments.json()) + _texts(detail)
    # acting on it answers the incident masked too
    accepted = police.post(f"/api/v1/incidents/{incident_id}/accept/")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["properties"]["note"] is None


def test_roles_with_the_grant_see_contents_masked_and_unmask_them_with_a_purpose(
    resident_report: dict[str, Any], make_user: Any
) -> None:
    incident_id = resident_report["incident"]["id"]
    operator_user = make_user("operator", username="op")
    operator = client_for(operator_user)
    # by default the notes come masked, and nothing is logged
    props = operator.get(f"/api/v1/incidents/{incident_id}/").json()["properties"]
    assert props["note"] == "***" and props["notes_masked"] is True
    assert not PersonalDataAccess.objects.filter(user=operator_user).exists()
    # with a stated purpose they come unmasked, logged with it; a photo fetch is logged too
    props = operator.get(f"/api/v1/incidents/{incident_id}/", {"purpose": "回访居民"}).json()["properties"]
    assert props["note"] == SECRET[:500] and props["notes_masked"] is False
    assert len(props["photos"]) == 1
    assert operator.get(props["photos"][0]["url"]).status_code == 200
    rows = PersonalDataAccess.objects.filter(user=operator_user)
    assert {"rest", "photo"} <= set(rows.values_list("channel", flat=True))
    assert rows.get(channel="rest").purpose == "回访居民"
    # Open311 has no unmask step: other people's requests come masked
    listed = operator.get("/open311/v2/requests.json").json()
    assert [r["description"] for r in listed] == ["***"]


def test_someone_elses_client_id_is_a_new_key(resident_report: dict[str, Any], make_user: Any) -> None:
    """The reports layer shows client ids: reusing one reaches nothing of its report."""
    their_key = resident_report["client_id"]
    other = client_for(make_user("grid_worker", username="copycat", team="road"))
    # the same content and a photo, as a "retry": a new report of the copycat's own
    same = post(other, note=SECRET, photo=image_bytes(size=(30, 30)), client_id=their_key)
    assert same.status_code == 201, same.content
    assert same.json()["id"] != resident_report["id"]
    # other content: also a new report, never a 409 carrying theirs
    # other content under that key now conflicts with the copycat's own report, not theirs
    different = post(other, note="别的", client_id=their_key)
    assert different.status_code == 409
    assert different.json()["existing"]["id"] == same.json()["id"]
    theirs = Report.objects.get(pk=resident_report["id"])
    assert ReportPhoto.objects.filter(report=theirs).count() == 1
    assert Report.objects.filter(client_id=their_key).count() == 2


def test_owner_retry_is_still_idempotent(api: APIClient, resident_report: dict[str, Any]) -> None:
    again = post(api, note=SECRET, client_id=resident_report["client_id"])
    assert again.status_code == 200
    assert again.json()["id"] == resident_report["id"]
    assert Incident.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_websocket_shows_police_no_report_contents(live_daphne: Any, make_user: Any, grid: Any) -> None:
    from tests.realtime.live_client import LiveClient

    worker = make_user("grid_worker", username="ws-worker", team="road")
    officer = make_user("police", username="ws-officer", team="road")
    from rest_framework.authtoken.models import Token

    screen = LiveClient(live_daphne.ws_url + "/ws/live/", token=Token.objects.create(user=officer).key)
    try:
        screen.wait_type("hello")
        screen.subscribe(["incidents", "reports"])
        answer = post(client_for(worker), note=SECRET)
        assert answer.status_code == 201
        # and the officer files into the same incident
        assert post(client_for(officer), note="巡逻").status_code == 201
        assert screen.wait_for(lambda c: len(c.events) >= 2, timeout=15)
        assert SECRET not in _texts(screen.messages)
        assert all(e.get("layer") != "reports" for e in screen.events)
    finally:
        screen.close()
