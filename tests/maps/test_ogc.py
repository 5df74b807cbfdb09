"""OGC API - Features - Part 1: Core, checked against the requirements of the classes it
declares (core, geojson, html, oas30), per role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from command.models import PersonalDataAccess
from maps.ogc import CONFORMANCE
from tests.maps.conftest import Village

pytestmark = pytest.mark.django_db


def rels(body: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for link in body["links"]:
        out.setdefault(link["rel"], []).append(link)
    return out


def test_landing_page_links_api_conformance_and_data(village: Village) -> None:
    # /req/core/root-success: links to the API definition, conformance and collections
    response = Client().get("/ogc/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    links = rels(response.json())
    assert {"self", "alternate", "service-desc", "conformance", "data"} <= set(links)
    api = Client().get(links["service-desc"][0]["href"])
    assert api.status_code == 200 and api.json()["openapi"].startswith("3.0")
    assert "/ogc/collections/{collectionId}/items" in api.json()["paths"]
    assert Client().get(links["conformance"][0]["href"]).json()["conformsTo"] == CONFORMANCE


def test_html_is_offered_for_every_resource(village: Village, login: Callable) -> None:
    client = login("operator")
    for path in ("/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/cameras"):
        response = client.get(path, {"f": "html"})
        assert response.status_code == 200 and response["Content-Type"].startswith("text/html"), path
    page = client.get("/ogc/collections/cameras/items", HTTP_ACCEPT="text/html")
    assert page["Content-Type"].startswith("text/html") and "路口1" in page.content.decode()


def test_collections_are_only_those_the_viewer_may_see(village: Village, login: Callable) -> None:
    police = {c["id"] for c in login("police").get("/ogc/collections").json()["collections"]}
    worker = {c["id"] for c in login("grid_worker").get("/ogc/collections").json()["collections"]}
    assert {"cameras", "incidents", "hotspots"} <= police
    assert not {"households", "reports"} & police
    assert "households" in worker
    assert Client().get("/ogc/collections").status_code == 401
    assert login("police").get("/ogc/collections/households").status_code == 404
    assert login("police").get("/ogc/collections/households/items").status_code == 404


def test_collection_describes_extent_crs_and_items(village: Village, login: Callable) -> None:
    body = login("police").get("/ogc/collections/cameras").json()
    assert body["id"] == "cameras" and body["itemType"] == "feature"
    assert body["extent"]["spatial"]["bbox"] == [[117.0005, 39.0005, 117.0015, 39.0005]]
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in body["crs"]
    assert any(link["type"] == "application/geo+json" for link in rels(body)["items"])


def test_items_response_members(village: Village, login: Callable) -> None:
    response = login("police").get("/ogc/collections/incidents/items")
    assert response["Content-Type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"]) == 9 == body["numberMatched"]
    assert body["timeStamp"].endswith("Z")
    assert {"self", "alternate", "collection"} <= set(rels(body))


def test_paging_through_next_links_returns_every_feature_once(village: Village, login: Callable) -> None:
    client = login("police")
    url: str | None = "/ogc/collections/incidents/items?limit=2"
    seen: list[int] = []
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["numberReturned"] <= 2
        seen += [f["id"] for f in body["features"]]
        nxt = rels(body).get("next")
        url = nxt[0]["href"] if nxt else None
        pages += 1
        assert pages < 10
    assert pages == 5 and len(seen) == 9 == len(set(seen))
    # prev link from a later page
    second = client.get("/ogc/collections/incidents/items?limit=2&offset=2").json()
    assert "offset=0" in rels(second)["prev"][0]["href"]


def test_bbox_at_the_edges_of_the_data(village: Village, login: Callable) -> None:
    # the cameras' extent is exactly 117.0005..117.0015 x 39.0005: both lie on its edges
    client = login("police")
    exact = client.get("/ogc/collections/cameras/items", {"bbox": "117.0005,39.0005,117.0015,39.0005"}).json()
    west_half = client.get("/ogc/collections/cameras/items", {"bbox": "117.0005,39.0005,117.001,39.0005"}).json()
    beyond = client.get("/ogc/collections/cameras/items", {"bbox": "117.0016,39.0006,117.002,39.001"}).json()
    assert sorted(f["properties"]["code"] for f in exact["features"]) == ["C1", "C2"]
    assert [f["properties"]["code"] for f in west_half["features"]] == ["C1"]
    assert beyond["features"] == [] and beyond["numberMatched"] == 0


def test_datetime_instant_and_intervals(village: Village, login: Callable) -> None:
    client = login("police")
    old = village.old_incident.opened_at
    stamp = old.isoformat().replace("+00:00", "Z")
    instant = client.get("/ogc/collections/incidents/items", {"datetime": stamp}).json()
    before = client.get(
        "/ogc/collections/incidents/items", {"datetime": f"../{(old + timedelta(days=1)).isoformat()}"}
    ).json()
    after = client.get(
        "/ogc/collections/incidents/items", {"datetime": f"{(timezone.now() - timedelta(days=1)).isoformat()}/.."}
    ).json()
    assert [f["id"] for f in instant["features"]] == [village.old_incident.pk]
    assert [f["id"] for f in before["features"]] == [village.old_incident.pk]
    assert village.old_incident.pk not in [f["id"] for f in after["features"]] and after["numberReturned"] == 8


def test_limit_above_the_maximum_is_clamped_and_bad_values_are_400(village: Village, login: Callable) -> None:
    client = login("police")
    assert client.get("/ogc/collections/cameras/items", {"limit": "100000"}).json()["numberReturned"] == 2
    for params in ({"limit": "0"}, {"limit": "ten"}, {"bbox": "1,2,3"}, {"datetime": "soon"}, {"colour": "red"}):
        response = client.get("/ogc/collections/cameras/items", params)
        assert response.status_code == 400, params
        assert response.json()["description"]


def test_single_item_and_not_found(village: Village, login: Callable) -> None:
    client = login("police")
    camera = village.cameras[0]
    body = client.get(f"/ogc/collections/cameras/items/{camera.pk}").json()
    assert body["type"] == "Feature" and body["id"] == camera.pk and body["properties"]["code"] == "C1"
    assert {"self", "alternate", "collection"} <= set(rels(body))
    assert client.get("/ogc/collections/cameras/items/999999").status_code == 404
    assert client.get("/ogc/collections/cameras/items/abc").status_code == 404
    household = village.households[0]
    assert client.get(f"/ogc/collections/households/items/{household.pk}").status_code == 404


def test_grid_worker_reads_household_items_masked(village: Village, login: Callable) -> None:
    client = login("grid_worker")
    household = village.households[0]
    body = client.get(f"/ogc/collections/households/items/{household.pk}").json()
    assert body["properties"]["head_name"] == "张*" and body["properties"]["phone"] == "138****0001"
    assert not PersonalDataAccess.objects.exists()  # nothing unmasked, nothing to log


def test_basic_and_token_authentication_for_gis_clients(village: Village, make_user: Callable) -> None:
    import base64

    from rest_framework.authtoken.models import Token

    user = make_user("police", username="officer", password="pw-for-tests-1")
    basic = base64.b64encode(b"officer:pw-for-tests-1").decode()
    token = Token.objects.create(user=user)
    by_basic = Client().get("/ogc/collections", HTTP_AUTHORIZATION=f"Basic {basic}")
    by_token = Client().get("/ogc/collections", HTTP_AUTHORIZATION=f"Token {token.key}")
    wrong = Client().get("/ogc/collections", HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"officer:nope").decode())
    assert by_basic.status_code == by_token.status_code == 200
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Basic")


def test_a_token_of_an_inactive_user_is_refused(village: Village, make_user: Callable) -> None:
    from rest_framework.authtoken.models import Token

    user = make_user("police")
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    assert Client().get("/ogc/collections", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 401
    assert Client().get("/ogc/collections", HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


def test_extent_of_a_large_table_comes_from_the_statistics(village: Village, monkeypatch) -> None:
    # given every table counts as large, and statistics exist for the cameras only
    from django.db import connection

    import command.layer_queries as lq

    monkeypatch.setattr(lq, "EXACT_EXTENT_MAX_ROWS", -1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE command_camera")
    # then the estimate covers the cameras, and layers without statistics or joined are exact
    estimated = lq.layer_extent("cameras")
    assert estimated is not None
    assert estimated[0] <= 117.0005 and estimated[2] >= 117.0015 and estimated[1] <= 39.0005 <= estimated[3]
    assert lq.layer_extent("households") == (117.0002, 39.0002, 117.0014, 39.0008)


def test_a_bbox_with_heights_is_accepted(village: Village, login: Callable) -> None:
    body = login("police").get("/ogc/collections/cameras/items", {"bbox": "117.0004,39.0004,-10,117.0006,39.0006,100"})
    assert [f["properties"]["code"] for f in body.json()["features"]] == ["C1"]


def test_a_gis_client_may_ask_for_its_whole_view(village: Village, login: Callable) -> None:
    # QGIS zoomed out sends a bbox far larger than the GeoJSON channel accepts; paging bounds it
    body = login("police").get("/ogc/collections/cameras/items", {"bbox": "100,20,130,50", "limit": "1"}).json()
    assert body["numberMatched"] == 2 and body["numberReturned"] == 1
    assert login("police").get("/maps/layers/cameras.geojson", {"bbox": "100,20,130,50"}).status_code == 400
