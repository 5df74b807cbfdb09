"""POST /api/v1/reports/: the receipt, idempotency, and the query budget of the hot path."""

from __future__ import annotations

import uuid

import pytest

from command.models import Event, Incident, Report
from tests.field_api.conftest import report_body

URL = "/api/v1/reports/"


def test_submit_json_report_returns_receipt_with_cell_and_incident(api, grid):
    # given
    body = report_body()
    # when
    response = api.post(URL, body, format="json")
    # then
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["client_id"] == body["client_id"]
    assert data["grid_cell_id"] == grid["A-01"].pk
    assert data["outside_grid"] is False
    assert data["incident"]["status"] == "dispatched"
    report = Report.objects.get(client_id=body["client_id"])
    assert report.incident.team.code == "road"
    assert list(Event.objects.filter(object_id=str(report.pk), layer="reports").values_list("kind", flat=True)) == [
        "report.created"
    ]


def test_same_client_id_same_content_answers_200_with_same_report(api, grid):
    # given
    body = report_body()
    first = api.post(URL, body, format="json")
    # when
    second = api.post(URL, body, format="json")
    # then
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Report.objects.filter(client_id=body["client_id"]).count() == 1
    assert Incident.objects.get().report_count == 1


def test_same_client_id_other_content_answers_409(api, grid):
    # given
    body = report_body()
    api.post(URL, body, format="json")
    # when
    response = api.post(URL, {**body, "note": "another note"}, format="json")
    # then
    assert response.status_code == 409
    assert response.json()["existing"]["note"] == body["note"]
    assert Report.objects.get(client_id=body["client_id"]).note == body["note"]


def test_unauthenticated_report_is_refused(client, grid, reference):
    response = client.post(URL, report_body(), content_type="application/json")
    assert response.status_code in (401, 403)
    assert not Report.objects.exists()


def test_hot_path_query_budget(api, grid, django_assert_max_num_queries):
    # given: a warm client (the token is looked up per request)
    api.post(URL, report_body(), format="json")
    body = report_body(client_id=str(uuid.uuid4()), location={"type": "Point", "coordinates": [117.0015, 39.0005]})
    # when / then: token, category, and the whole write in one statement (gc_report_submit:
    # locks, cell, building, incident, routing, report, both events) = 3; plus SAVEPOINT/RELEASE
    # because the test itself runs in a transaction (outside tests BEGIN/COMMIT, not counted).
    with django_assert_max_num_queries(5):
        response = api.post(URL, body, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("lon_lat", [(117.0005, 39.0005), (117.0015, 39.0005)])
def test_multipart_with_longitude_latitude(api, grid, lon_lat):
    body = report_body()
    del body["location"]
    body["longitude"], body["latitude"] = lon_lat
    response = api.post(URL, body, format="multipart")
    assert response.status_code == 201, response.content
