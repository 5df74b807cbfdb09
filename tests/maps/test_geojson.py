"""GeoJSON by bbox: built in PostGIS, RFC 7946, filtered, and masked by the one policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from command.eventlog import latest_seq
from command.layers import LAYERS
from command.models import Category, PersonalDataAccess
from tests.maps.conftest import Village
from tests.maps.test_wall_browser import submit

AREA = "116.999,38.999,117.003,39.002"  # the whole village with a margin
pytestmark = pytest.mark.django_db


def get(client: Client, layer: str, **params: str):
    return client.get(f"/maps/layers/{layer}.geojson", {"bbox": AREA, **params})


def test_police_gets_cameras_incidents_hotspots_and_never_personal_data(
    village: Village, login: Callable, settings
) -> None:
    # given
    settings.HOTSPOT_RADIUS_M = 30
    police = login("police")
    # when
    cameras, incidents, hotspots = (get(police, name) for name in ("cameras", "incidents", "hotspots"))
    households, reports = (get(police, name) for name in ("households", "reports"))
    # then
    assert cameras.status_code == incidents.status_code == hotspots.status_code == 200
    assert {f["properties"]["code"] for f in cameras.json()["features"]} == {"C1", "C2"}
    assert len(incidents.json()["features"]) == 9  # 8 loaded, 1 from the report
    assert len(hotspots.json()["features"]) == 1
    assert hotspots.json()["features"][0]["properties"]["count"] == 6
    assert households.status_code == reports.status_code == 404
    sensitive = {f for layer in LAYERS.values() for f in layer.sensitive_fields}
    for response in (cameras, incidents, hotspots):
        for feature in response.json()["features"]:
            assert not sensitive & set(feature["properties"])
    assert not PersonalDataAccess.objects.exists()


def test_grid_worker_gets_households_masked_and_unmasked_with_a_purpose_logged(
    village: Village, login: Callable
) -> None:
    # given
    worker = login("grid_worker")
    # when
    masked = get(worker, "households")
    # then personal data comes masked, and nothing is logged
    assert masked.status_code == 200
    features = masked.json()["features"]
    assert {f["properties"]["head_name"] for f in features} == {"张*", "李*", "王*"}
    assert {f["properties"]["phone"] for f in features} == {"138****0001", "138****0002", "138****0003"}
    zhang = next(f for f in features if f["properties"]["head_name"] == "张*")
    assert zhang["properties"]["vulnerable"] == ["***"]
    assert zhang["geometry"]["type"] == "Polygon"
    assert not PersonalDataAccess.objects.exists()
    # when asked with a purpose, then unmasked, and the view is logged with it
    response = worker.get(
        "/maps/layers/households.geojson", {"bbox": "116.999,38.999,117.003,39.002", "purpose": "走访"}
    )
    assert {f["properties"]["head_name"] for f in response.json()["features"]} == {"张三", "李四", "王五"}
    log = PersonalDataAccess.objects.get()
    assert log.channel == "geojson" and log.layer == "households" and log.purpose == "走访"
    assert sorted(log.object_ids) == sorted(str(h.pk) for h in village.households)


def test_anonymous_gets_nothing(village: Village) -> None:
    for layer in LAYERS:
        response = get(Client(), layer)
        assert response.status_code == 401, layer
        assert "features" not in response.json()


def test_unknown_layer_and_forbidden_layer_answer_alike(village: Village, login: Callable) -> None:
    police = login("police")
    forbidden, missing = get(police, "households"), get(police, "no_such_layer")
    assert forbidden.status_code == missing.status_code == 404
    assert set(forbidden.json()) == set(missing.json())


def test_rfc7946_feature_collection(village: Village, login: Callable) -> None:
    response = get(login("operator"), "cameras")
    assert response["Content-Type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection" and "crs" not in body
    c1 = next(f for f in body["features"] if f["properties"]["code"] == "C1")
    assert c1["type"] == "Feature"
    assert c1["geometry"] == {"type": "Point", "coordinates": [117.0005, 39.0005]}  # lon, lat
    assert c1["id"] == village.cameras[0].pk


@pytest.mark.parametrize(
    ("bbox", "needle"),
    [
        ("117,39,117.001", "four"),
        ("a,b,c,d", "numbers"),
        ("117.002,39,117.001,39.001", "minLon"),
        ("117,39.001,117.001,39", "minLat"),
        ("117,39,190,39.001", "out of range"),
        ("100,20,120,40", "too large"),
        ("nan,39,117,39.001", "finite"),
    ],
)
def test_bad_bbox_is_a_clear_400(village: Village, login: Callable, bbox: str, needle: str) -> None:
    response = login("operator").get("/maps/layers/cameras.geojson", {"bbox": bbox}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json()["parameter"] == "bbox"
    assert needle in response.json()["description"]


def test_reasons_are_in_chinese_by_default(village: Village, login: Callable) -> None:
    response = login("operator").get("/maps/layers/cameras.geojson", {"bbox": "100,20,120,40"})
    assert response.status_code == 400 and "bbox" in response.json()["description"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["description"])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"limit": "999999999"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "2026-01-02T00:00:00Z/2026-01-01T00:00:00Z"}, "datetime"),
        ({"status": "new"}, "status"),  # households have no status
    ],
)
def test_bad_parameters_are_a_clear_400(village: Village, login: Callable, params: dict, param: str) -> None:
    response = login("operator").get("/maps/layers/households.geojson", params)
    assert response.status_code == 400
    assert response.json()["parameter"] == param
    assert not PersonalDataAccess.objects.exists()  # nothing was shown, nothing logged


def test_bbox_is_inside_on_edge_and_outside(village: Village, login: Callable) -> None:
    client = login("operator")
    # C1 at (117.0005, 39.0005): inside, exactly on the east edge, and just outside
    inside = get(client, "cameras", bbox="117.0004,39.0004,117.0006,39.0006").json()
    edge = get(client, "cameras", bbox="117.0003,39.0004,117.0005,39.0006").json()
    outside = get(client, "cameras", bbox="117.0003,39.0004,117.00049,39.0006").json()
    assert [f["properties"]["code"] for f in inside["features"]] == ["C1"]
    assert [f["properties"]["code"] for f in edge["features"]] == ["C1"]
    assert outside["features"] == []


def test_filters_by_time_window_category_and_status(village: Village, login: Callable) -> None:
    client = login("operator")
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    recent = get(client, "incidents", datetime=f"{since}/..").json()["features"]
    roads = get(client, "incidents", category="road_damage").json()["features"]
    closed = get(client, "incidents", status="closed").json()["features"]
    assert len(recent) == 8 and village.old_incident.pk not in {f["id"] for f in recent}
    assert [f["id"] for f in roads] == [village.old_incident.pk]
    assert [f["id"] for f in closed] == [village.closed_incident.pk]


def test_limit_and_next_link(village: Village, login: Callable) -> None:
    client = login("operator")
    first = get(client, "incidents", limit="5")
    assert first["X-Features-Returned"] == "5"
    next_url = first["Link"].split(";")[0].strip("<>")
    second = client.get(next_url)
    ids = [f["id"] for f in first.json()["features"]] + [f["id"] for f in second.json()["features"]]
    assert len(ids) == 9 == len(set(ids))
    assert "Link" not in second


def test_a_large_collection_is_sent_in_pieces_with_its_length(village: Village, login: Callable, monkeypatch) -> None:
    # given pieces far smaller than the collection
    import json

    from asgiref.sync import async_to_sync

    import maps.views

    monkeypatch.setattr(maps.views, "BODY_CHUNK", 100)
    # when
    response = get(login("operator"), "incidents")

    async def collect() -> bytes:
        return b"".join([piece async for piece in response.streaming_content])

    body = async_to_sync(collect)()
    # then
    assert response.streaming and int(response["Content-Length"]) == len(body) > 100
    assert len(json.loads(body)["features"]) == 9


def test_the_answer_says_up_to_which_event_it_counts(
    village: Village, login: Callable, reference: dict[str, Category]
) -> None:
    # given: an operator and the log's last event
    operator = login("operator")
    before = latest_seq()
    # when: a report commits between two answers
    first = get(operator, "incidents", status="new")
    incident_id = submit(reference, "sanitation", 117.0006, 39.0006).incident_id
    second = get(operator, "incidents", status="new")
    # then: each answer's X-Event-Seq is the last event committed before it was read, and only
    # the second holds the report's incident (a live client resyncing at that seq may take it)
    assert int(first["X-Event-Seq"]) == before
    assert int(second["X-Event-Seq"]) == latest_seq() > before
    assert str(incident_id) not in {str(f["id"]) for f in first.json()["features"]}
    assert str(incident_id) in {str(f["id"]) for f in second.json()["features"]}
