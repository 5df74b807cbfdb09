"""Assignments, incident steps, duty and pings over HTTP; photos only for those who may see them."""

from __future__ import annotations

import json
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from command.models import Event, Incident, Worker
from tests.field_api.conftest import client_for, image_bytes, report_body

REPORTS = "/api/v1/reports/"


def post_report(api, lon, lat, category="road_damage", photos=()):
    body = report_body(category=category, location=json.dumps({"type": "Point", "coordinates": [lon, lat]}))
    if photos:
        body["photos"] = [SimpleUploadedFile(f"p{i}.jpg", p) for i, p in enumerate(photos)]
    response = api.post(REPORTS, body, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_assignments_nearest_first_then_accept_arrive_resolve(api, worker_user, grid):
    # given: two road incidents in, I stand in A-02
    a01 = post_report(api, 117.0002, 39.0005)
    a02 = post_report(api, 117.0018, 39.0005)
    # when
    listing = api.get("/api/v1/assignments/", {"longitude": 117.0019, "latitude": 39.0005})
    # then
    assert listing.status_code == 200
    features = listing.json()["features"]
    assert [f["id"] for f in features] == [a02["incident"]["id"], a01["incident"]["id"]]
    assert features[0]["geometry"]["type"] == "Point"
    assert features[0]["properties"]["distance_m"] < features[1]["properties"]["distance_m"]
    incident_id = a02["incident"]["id"]
    for step in ("accept", "arrive"):
        assert api.post(f"/api/v1/incidents/{incident_id}/{step}/").status_code == 200
    resolved = api.post(
        f"/api/v1/incidents/{incident_id}/resolve/",
        {"note": "已处理", "photos": [SimpleUploadedFile("after.png", image_bytes("PNG"))]},
        format="multipart",
    )
    assert resolved.status_code == 200, resolved.content
    assert resolved.json()["properties"]["status"] == "resolved"
    detail = api.get(f"/api/v1/incidents/{incident_id}/").json()
    assert len(detail["properties"]["photos"]) == 1
    resolution_photo = detail["properties"]["photos"][0]["url"]
    assert api.get(resolution_photo).status_code == 200
    again = api.post(f"/api/v1/incidents/{incident_id}/arrive/")
    assert again.status_code == 409
    assert "resolved" in again.json()["detail"] or "已解决" in again.json()["detail"]


def test_hand_back_needs_reason(api, grid):
    incident_id = post_report(api, 117.0002, 39.0005)["incident"]["id"]
    api.post(f"/api/v1/incidents/{incident_id}/accept/")
    missing = api.post(f"/api/v1/incidents/{incident_id}/hand-back/", {}, format="json")
    assert missing.status_code == 400
    assert "reason" in missing.json()
    ok = api.post(f"/api/v1/incidents/{incident_id}/hand-back/", {"reason": "设备不足"}, format="json")
    assert ok.status_code == 200
    assert ok.json()["properties"]["status"] == "new"


def test_worker_cannot_dispatch_operator_can(api, make_user, grid):
    incident_id = post_report(api, 117.0002, 39.0005)["incident"]["id"]
    target = Worker.objects.get(user=make_user("grid_worker", username="li", team="volunteer"))
    refused = api.post(f"/api/v1/incidents/{incident_id}/dispatch/", {"worker_id": target.pk}, format="json")
    assert refused.status_code == 403
    operator = client_for(make_user("operator"))
    done = operator.post(f"/api/v1/incidents/{incident_id}/dispatch/", {"worker_id": target.pk}, format="json")
    assert done.status_code == 200
    assert done.json()["properties"]["worker_id"] == target.pk
    unknown = operator.post(f"/api/v1/incidents/{incident_id}/dispatch/", {"worker_id": 999999}, format="json")
    assert unknown.status_code == 400


def test_resolution_photo_is_private_too(api, make_user, grid):
    incident_id = post_report(api, 117.0002, 39.0005)["incident"]["id"]
    api.post(f"/api/v1/incidents/{incident_id}/accept/")
    api.post(
        f"/api/v1/incidents/{incident_id}/resolve/",
        {"note": "好了", "photos": [SimpleUploadedFile("done.webp", image_bytes("WEBP"))]},
        format="multipart",
    )
    url = api.get(f"/api/v1/incidents/{incident_id}/").json()["properties"]["photos"][0]["url"]
    outsider = client_for(make_user("grid_worker", username="other-team", team="sanitation"))
    assert outsider.get(url).status_code == 404
    assert client_for(make_user("operator")).get(url).status_code == 200


def test_unknown_or_foreign_incident_is_404(api, make_user, grid):
    incident_id = post_report(api, 117.0002, 39.0005)["incident"]["id"]
    stranger = client_for(make_user("grid_worker", username="far", team="sanitation"))
    assert stranger.post(f"/api/v1/incidents/{incident_id}/accept/").status_code == 404
    assert stranger.get(f"/api/v1/incidents/{incident_id}/").status_code == 404
    assert api.post("/api/v1/incidents/987654/accept/").status_code == 404


def test_photo_privacy(api, make_user, grid):
    # given: a report with a photo by a road worker
    receipt = post_report(api, 117.0002, 39.0005, photos=[image_bytes(size=(100, 60))])
    url = receipt["photos"][0]["url"]
    thumb = receipt["photos"][0]["thumbnail_url"]
    # then: the reporter, a teammate and an operator may see it
    teammate = client_for(make_user("grid_worker", username="teammate", team="road"))
    operator = client_for(make_user("operator"))
    for viewer in (api, teammate, operator):
        response = viewer.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert response["Cache-Control"].startswith("private")
    assert Image.open(__import__("io").BytesIO(b"".join(api.get(thumb).streaming_content))).size[0] <= 320
    # and a worker of another team and cell, a police officer and an anonymous client may not
    outsider = client_for(make_user("grid_worker", username="outsider", team="sanitation"))
    police = client_for(make_user("police"))
    assert outsider.get(url).status_code == 404
    assert police.get(url).status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get(url).status_code in (401, 403)
    assert api.get("/api/v1/photos/999999/").status_code == 404


def test_duty_and_pings(api, worker_user):
    now = timezone.now()
    pings = {
        "pings": [
            {
                "location": {"type": "Point", "coordinates": [117.0003, 39.0004]},
                "accuracy": 8,
                "recorded_at": (now - timedelta(seconds=20)).isoformat(),
            },
            {"location": {"type": "Point", "coordinates": [117.0004, 39.0004]}, "recorded_at": now.isoformat()},
        ]
    }
    response = api.post("/api/v1/pings/", pings, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["last_position"]["coordinates"] == [117.0004, 39.0004]
    assert Event.objects.filter(kind="worker.moved").count() == 1
    bad = api.post(
        "/api/v1/pings/",
        {"pings": [{"location": {"type": "Point", "coordinates": [200, 0]}, "recorded_at": now.isoformat()}]},
        format="json",
    )
    assert bad.status_code == 400
    assert "pings" in bad.json()
    assert api.post("/api/v1/me/duty/", {"on_duty": False}, format="json").json()["on_duty"] is False
    off = api.post("/api/v1/pings/", pings, format="json")
    assert off.status_code == 409
    me = api.get("/api/v1/me/").json()
    assert me["team"] == "road" and me["cells"] == ["A-01"]


def test_non_worker_has_no_assignments(make_user, grid):
    police = client_for(make_user("police"))
    response = police.get("/api/v1/assignments/")
    assert response.status_code == 403
    assert "worker" in response.json()["detail"]


def test_incident_count_unchanged_by_reads(api, grid):
    post_report(api, 117.0002, 39.0005)
    api.get("/api/v1/assignments/")
    assert Incident.objects.count() == 1
