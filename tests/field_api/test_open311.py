"""Open311 GeoReport v2: services are categories, service requests are reports."""

from __future__ import annotations

import uuid

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from command.models import Report
from tests.field_api.conftest import client_for


def api_key(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def test_services_list_categories(client, reference):
    response = client.get("/open311/v2/services.json")
    assert response.status_code == 200
    codes = {s["service_code"] for s in response.json()}
    assert {"road_damage", "elevator_fault"} <= codes
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in response.json())


def test_post_form_request_then_read_it(worker_user, grid):
    # given: a 311 client posting a form with api_key
    client = APIClient()
    key = api_key(worker_user)
    # when
    created = client.post(
        "/open311/v2/requests.json",
        {"api_key": key, "service_code": "road_damage", "lat": "39.0005", "long": "117.0005", "description": "坑"},
    )
    # then
    assert created.status_code == 201, created.content
    request_id = created.json()[0]["service_request_id"]
    report = Report.objects.get(pk=request_id)
    assert report.source == "open311" and report.grid_cell_id == grid["A-01"].pk
    listing = client.get("/open311/v2/requests.json", {"api_key": key, "status": "open"})
    assert [r["service_request_id"] for r in listing.json()] == [request_id]
    one = client.get(f"/open311/v2/requests/{request_id}.json", {"api_key": key}).json()[0]
    assert one["service_code"] == "road_damage" and one["lat"] == 39.0005 and one["status"] == "open"
    assert client.get("/open311/v2/requests.json", {"api_key": key, "status": "closed"}).json() == []


def test_client_id_extension_makes_retries_idempotent(worker_user, grid):
    client = client_for(worker_user)
    body = {"service_code": "sanitation", "lat": 39.0005, "long": 117.0005, "client_id": str(uuid.uuid4())}
    first = client.post("/open311/v2/requests.json", body)
    second = client.post("/open311/v2/requests.json", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    changed = client.post("/open311/v2/requests.json", {**body, "description": "other"})
    assert changed.status_code == 409
    assert changed.json()[0]["code"] == 409


def test_errors_in_open311_form(worker_user, grid):
    client = APIClient()
    key = api_key(worker_user)
    bad = client.post("/open311/v2/requests.json", {"api_key": key, "service_code": "nope", "lat": 95, "long": 1})
    assert bad.status_code == 400
    descriptions = " ".join(e["description"] for e in bad.json())
    assert "service_code" in descriptions and "lat" in descriptions
    assert all(e["code"] == 400 for e in bad.json())
    anonymous = client.post("/open311/v2/requests.json", {"service_code": "sanitation", "lat": 39, "long": 117})
    assert anonymous.status_code in (401, 403)
    wrong_key = client.get("/open311/v2/requests.json", {"api_key": "x" * 40})
    assert wrong_key.status_code in (401, 403)
    assert client.get("/open311/v2/requests/999999.json", {"api_key": key}).status_code == 404


def test_other_teams_requests_are_not_listed(worker_user, make_user, grid):
    client_for(worker_user).post(
        "/open311/v2/requests.json", {"service_code": "road_damage", "lat": 39.0005, "long": 117.0005}
    )
    police = make_user("police")
    assert client_for(police).get("/open311/v2/requests.json").json() == []
