"""A grid worker outside a cell's grant sees none of its households (issue 13), nor its persons,
its businesses' personal fields or its campaign targets, on any channel: the registry's REST
lists and panels, one record over REST, GeoJSON, vector tiles, OGC API, exports, the pages, and
the websocket live and on replay. The worker's own cells come through on each (the check could
not pass by showing nothing), and AB-role cover widens every channel at once.

The village: A-01 (117.000-117.001) holds 东楼 and 西楼, A-02 (117.001-117.002) holds 南楼
(tests/registry_support.py); a business in each; a campaign over both cells."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import mapbox_vector_tile
import pytest
from django.contrib.auth.models import User
from django.test import Client

from command.models import Business, CampaignTarget, Person
from command.services.access import access_grant_save
from command.services.campaigns import campaign_create
from command.services.records import record_save
from command.services.registry import business_save
from tests.maps.conftest import tile_of
from tests.registry_support import Registry
from tests.support import response_body

pytestmark = pytest.mark.django_db(transaction=True)  # exports read on a connection of their own

AREA = "116.999,38.999,117.003,39.002"
LAYERS = ("households", "persons", "businesses", "campaign_targets")


@pytest.fixture
def district(registry: Registry, grid) -> dict[str, Any]:
    """Per layer, the ids in A-01 and in A-02, and strings that only A-02's records hold."""
    shop_a01 = business_save(
        building=registry.a01_east,
        name="东楼便利店",
        industry="retail",
        contact_name="蒋小丽",
        contact_phone="13900000001",
    )
    shop_a02 = business_save(
        building=registry.a02, name="南楼小卖部", industry="retail", contact_name="韩大勇", contact_phone="13900000099"
    )
    campaign = campaign_create(
        actor_id=None, name="冬季走访", kind="screening", target_kind="households", cell_codes=["A"]
    )
    a01, a02 = grid["A-01"].pk, grid["A-02"].pk
    persons = Person.objects.select_related("household__building")
    ids = {
        "households": {
            cell: {h.pk for h in registry.households.values() if h.building.grid_cell_id == cell} for cell in (a01, a02)
        },
        "persons": {cell: {p.pk for p in persons if p.household.building.grid_cell_id == cell} for cell in (a01, a02)},
        "businesses": {a01: {shop_a01.pk}, a02: {shop_a02.pk}},
        "campaign_targets": {
            cell: set(CampaignTarget.objects.filter(grid_cell_id=cell).values_list("pk", flat=True))
            for cell in (a01, a02)
        },
    }
    assert all(ids[layer][a01] and ids[layer][a02] for layer in LAYERS)
    # what only A-02's records say, in the clear or masked (冯刚 陈老太 褚建国; phones 0011-0013)
    secrets = ["冯刚", "冯*", "陈老太", "陈*太", "褚建国", "褚*国", "韩大勇", "韩*勇", "13900000099", "139****0099"]
    secrets += [f"13800000{n}" for n in (11, 12, 13)] + [f"138****00{n}" for n in (11, 12, 13)]
    return {"a01": a01, "a02": a02, "ids": ids, "secrets": secrets, "campaign": campaign}


def _leaks(body: bytes, secrets: list[str]) -> list[str]:
    text = body.decode("utf-8", errors="replace")
    return [s for s in secrets if s in text or json.dumps(s)[1:-1] in text]


def _feature_ids(body: bytes) -> set[int]:
    return {int(f["id"]) for f in json.loads(body)["features"]}


def _tile_ids(client: Client, layer: str) -> tuple[set[int], list[bytes]]:
    """The ids in the z17 tiles over the three buildings (A-01's two, A-02's one)."""
    ids: set[int] = set()
    bodies = []
    for lon in (117.0002, 117.0007, 117.0015):
        x, y = tile_of(lon, 39.0005, 17)
        response = client.get(f"/maps/tiles/{layer}/17/{x}/{y}.pbf")
        assert response.status_code == 200, (layer, response.status_code)
        body = response_body(response)
        bodies.append(body)
        decoded = mapbox_vector_tile.decode(body) if body else {}
        ids |= {int(f["properties"]["id"]) for f in decoded.get(layer, {"features": []})["features"]}
    return ids, bodies


def _channels(client: Client, layer: str) -> dict[str, tuple[set[int], list[bytes]]]:
    """Per map channel, the ids of ``layer`` the client got and the raw bodies."""
    out: dict[str, tuple[set[int], list[bytes]]] = {}
    for channel, url in (
        ("geojson", f"/maps/layers/{layer}.geojson"),
        ("ogc", f"/ogc/collections/{layer}/items"),
        ("export", f"/maps/export/{layer}.geojson"),
    ):
        response = client.get(url, {"bbox": AREA, "limit": 1000} if channel == "ogc" else {"bbox": AREA})
        assert response.status_code == 200, (layer, channel, response.status_code)
        body = response_body(response)
        out[channel] = (_feature_ids(body), [body])
    response = client.get(f"/maps/export/{layer}.csv", {"bbox": AREA})
    body = response_body(response)
    rows = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    out["export.csv"] = ({int(r["id"]) for r in rows}, [body])
    out["tile"] = _tile_ids(client, layer)
    return out


def _registry_rest(client: Client, registry: Registry, district: dict[str, Any]) -> dict[str, tuple[set[int], bytes]]:
    """The registry's own REST lists, per layer: the ids they list and their bodies."""
    out: dict[str, tuple[set[int], bytes]] = {}
    response = client.get("/api/v1/households/", {"limit": 500})
    out["households"] = ({h["id"] for h in response.json()["results"]}, response.content)
    persons: set[int] = set()
    bodies = b""
    for building in (registry.a01_east, registry.a01_west, registry.a02):
        response = client.get(f"/api/v1/buildings/{building.pk}/households/")
        bodies += response.content
        if response.status_code == 200:
            persons |= {p["id"] for h in response.json()["households"] for p in h["persons"]}
        for q in ("冯", "陈", "褚", "张"):  # the door look-up
            found = client.get(f"/api/v1/buildings/{building.pk}/residents/", {"q": q})
            bodies += found.content
            if found.status_code == 200:
                persons |= {p["id"] for p in found.json()["results"]}
    out["persons"] = (persons, bodies)
    response = client.get("/api/v1/businesses/")
    out["businesses"] = ({b["id"] for b in response.json()["results"]}, response.content)
    response = client.get(f"/api/v1/campaigns/{district['campaign'].pk}/targets/")
    out["campaign_targets"] = ({t["id"] for t in response.json()["results"]}, response.content)
    return out


def test_a_grid_worker_sees_nothing_of_another_cell_on_any_http_channel(
    registry: Registry, district: dict[str, Any], worker_a01: User
) -> None:
    # given the grid worker of A-01
    client = Client()
    client.force_login(worker_a01)
    ids, a01, a02, secrets = district["ids"], district["a01"], district["a02"], district["secrets"]
    # when every map channel is asked for each layer of the registry
    for layer in LAYERS:
        for channel, (seen, bodies) in _channels(client, layer).items():
            # then exactly the records of A-01 come, none of A-02, and nothing A-02's records hold
            assert seen == ids[layer][a01], (layer, channel, seen)
            for body in bodies:
                assert not _leaks(body, secrets), (layer, channel, _leaks(body, secrets))
        # one record of A-02 over REST answers like a missing one
        other = min(ids[layer][a02])
        answer = client.get(f"/api/v1/layers/{layer}/features/{other}/")
        missing = client.get(f"/api/v1/layers/{layer}/features/{10**9}/")
        assert answer.status_code == missing.status_code == 404 and answer.json() == missing.json(), layer
        unmask = client.post(f"/api/v1/layers/{layer}/features/{other}/unmask/", {"purpose": "核查"})
        assert unmask.status_code == 404, layer
    # and the registry's own lists and panels (REST) narrow alike
    for layer, (seen, body) in _registry_rest(client, registry, district).items():
        assert seen == ids[layer][a01], (layer, "rest list", seen)
        assert not _leaks(body, secrets), (layer, "rest list", _leaks(body, secrets))
    assert client.get(f"/api/v1/buildings/{registry.a02.pk}/households/").status_code == 404
    # and the pages
    for url in ("/maps/print/", "/maps/campaigns/", f"/maps/campaigns/{district['campaign'].pk}/progress/", "/field/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not _leaks(response_body(response), secrets), (url, _leaks(response_body(response), secrets))


@pytest.mark.parametrize("how", ["ab_cover", "big_grid"])
def test_ab_cover_or_a_big_grid_widens_every_channel_at_once(
    registry: Registry, district: dict[str, Any], worker_a01: User, make_user: Callable[..., User], how: str
) -> None:
    if how == "ab_cover":
        # given the grid worker of A-01, given AB-role cover of the neighbouring cell by the admin
        access_grant_save(
            user=worker_a01,
            own_cells=True,
            neighbour_cover=True,
            reason="AB角: 顶替A-02",
            actor_id=make_user("admin").pk,
        )
        user = User.objects.get(pk=worker_a01.pk)
    else:
        # given a grid worker whose own cell is the big grid A (its cells)
        user = make_user("grid_worker", cells=["A"])
    client = Client()
    client.force_login(user)
    ids, a01, a02 = district["ids"], district["a01"], district["a02"]
    # then A-02's records come on every channel, masked
    for layer in LAYERS:
        for channel, (seen, _bodies) in _channels(client, layer).items():
            assert seen == ids[layer][a01] | ids[layer][a02], (layer, channel, seen)
    for layer, (seen, _body) in _registry_rest(client, registry, district).items():
        assert seen == ids[layer][a01] | ids[layer][a02], (layer, "rest list", seen)


def test_narrowed_tiles_are_cached_per_grant_and_never_served_across_it(
    registry: Registry, district: dict[str, Any], worker_a01: User, worker_a02: User, make_user: Callable[..., User]
) -> None:
    # given the workers of A-01 and of A-02 and an operator (everywhere), all masked
    clients = {}
    for name, user in (("a01", worker_a01), ("a02", worker_a02), ("operator", make_user("operator"))):
        clients[name] = Client()
        clients[name].force_login(user)
    x, y = tile_of(117.001, 39.0005, 17)  # one tile over both cells
    url = f"/maps/tiles/households/17/{x}/{y}.pbf"

    def ids(response: Any) -> set[int]:
        decoded = mapbox_vector_tile.decode(response_body(response))
        return {int(f["properties"]["id"]) for f in decoded["households"]["features"]}

    a01, a02 = district["a01"], district["a02"]
    own = district["ids"]["households"]
    # when each asks for the same tile twice
    first = {name: client.get(url) for name, client in clients.items()}
    second = {name: client.get(url) for name, client in clients.items()}
    # then each built its own tile (a miss), then read it from the cache (a hit)
    assert {name: r["X-Tile-Cache"] for name, r in first.items()} == dict.fromkeys(clients, "miss")
    assert {name: r["X-Tile-Cache"] for name, r in second.items()} == dict.fromkeys(clients, "hit")
    # and the cached tile of each holds exactly its own cells, never another's
    assert ids(second["a01"]) == own[a01] and ids(second["a02"]) == own[a02]
    assert ids(second["operator"]) == own[a01] | own[a02]
    for name in clients:
        assert response_body(second[name]) == response_body(first[name]), name
    # and a second worker of A-01 shares the first one's tile (same grant, same profile)
    other = Client()
    other.force_login(make_user("grid_worker", cells=["A-01"]))
    shared = other.get(url)
    assert shared["X-Tile-Cache"] == "hit" and ids(shared) == own[a01]
    # an edit in A-02 makes the tiles stale; the next read is rebuilt, still narrowed
    household = registry.households["a02/1"]
    household.members = 5
    record_save(obj=household, actor_id=None)
    again = clients["a01"].get(url)
    assert again["X-Tile-Cache"] == "miss" and ids(again) == own[a01]


def test_a_grid_worker_hears_and_replays_only_their_cells_registry_events(
    registry: Registry, district: dict[str, Any], worker_a01: User, live_daphne
) -> None:
    from tests.realtime.conftest import user_token
    from tests.realtime.live_client import LiveClient

    ids, a01 = district["ids"], district["a01"]
    token = user_token(worker_a01)
    live = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=token)
    assert set(live.subscribe(list(LAYERS))["layers"]) == set(LAYERS)
    # when a household of A-02, then one of A-01 changes, and a business in each
    for key in ("a02/1", "east/101"):
        household = registry.households[key]
        household.members += 1
        record_save(obj=household, actor_id=None)
    for business in Business.objects.order_by("-pk"):
        business_save(
            business=business,
            building=business.building,
            name=business.name,
            industry=business.industry,
            contact_name=business.contact_name,
            contact_phone=business.contact_phone,
        )
    # then the live stream brings A-01's and nothing of A-02's
    mine = registry.households["east/101"].pk
    assert live.wait_for(lambda c: any(e["object_id"] == str(mine) for e in c.events if e["layer"] == "households"))
    assert live.wait_for(lambda c: any(e["layer"] == "businesses" for e in c.events))
    live.close()
    # and a replay of the whole log (the registry's creation included) brings A-01's only
    replay = LiveClient(f"{live_daphne.ws_url}/ws/live/?since=0", token=token)
    replay.subscribe(list(LAYERS))
    assert replay.wait_for(lambda c: {e["layer"] for e in c.events} >= {"households", "persons", "businesses"})
    replay.close()
    for client in (live, replay):
        for event in client.events:
            if event["kind"] in ("layer.reloaded", "record.deleted"):
                continue
            assert int(event["object_id"]) in ids[event["layer"]][a01], (event["layer"], event["object_id"])
            assert not _leaks(json.dumps(event, ensure_ascii=False).encode(), district["secrets"]), event
