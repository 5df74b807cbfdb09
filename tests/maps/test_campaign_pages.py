"""The campaigns page: operators start one over picked cells (a bad one gets its reason, 400);
grid workers see theirs; the police get 404 here and on the progress panel."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from command.models import Campaign
from command.services.campaigns import campaign_create
from tests.registry_support import Registry


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_an_operator_starts_a_campaign_over_picked_cells(registry: Registry, make_user: Callable[..., User]) -> None:
    operator = _client(make_user("operator"))
    assert 'href="/maps/campaigns/"' in operator.get("/").content.decode()
    form = {
        "name": "独居老人巡访",
        "kind": "screening",
        "target_kind": "households",
        "cells": ["A"],
        "vulnerable": ["elderly_alone"],
    }
    response = operator.post("/maps/campaigns/", form)
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/maps/campaigns/{campaign.pk}/progress/"
    assert campaign.total == 3
    assert operator.get(response["Location"]).status_code == 200
    # nothing in the area passes the filter: 400 with the reason, nothing written
    empty = operator.post("/maps/campaigns/", {**form, "vulnerable": ["veteran"], "cells": ["A-02"]})
    assert empty.status_code == 400 and "No household or business" in empty.content.decode()
    assert Campaign.objects.count() == 1


def test_workers_see_their_campaigns_and_the_police_nothing(
    registry: Registry, worker_a02: User, make_user: Callable[..., User]
) -> None:
    campaign = campaign_create(actor_id=None, name="东楼", kind="census", target_kind="households", cell_codes=["A-01"])
    worker = _client(worker_a02)  # of A-02: the campaign has no target there
    assert f'data-campaign-id="{campaign.pk}"' not in worker.get("/maps/campaigns/").content.decode()
    assert worker.get(f"/maps/campaigns/{campaign.pk}/progress/").status_code == 404
    assert worker.post("/maps/campaigns/", {"name": "x"}).status_code == 404  # may not start one
    police = _client(make_user("police"))
    assert police.get("/maps/campaigns/").status_code == 404
    assert police.get(f"/maps/campaigns/{campaign.pk}/progress/").status_code == 404


def test_a_drawn_area_is_checked_and_is_one_of_area_or_cells(
    registry: Registry, make_user: Callable[..., User]
) -> None:
    operator = _client(make_user("operator"))
    form = {"name": "画区走访", "kind": "census", "target_kind": "households"}
    # the west half of A-01: 西楼 only (tests/registry_support.py)
    box = {
        "type": "Polygon",
        "coordinates": [[[117.0, 39.0], [117.0005, 39.0], [117.0005, 39.001], [117.0, 39.001], [117.0, 39.0]]],
    }
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[117.0, 39.0], [117.001, 39.001], [117.001, 39.0], [117.0, 39.001], [117.0, 39.0]]],
    }
    # given bad areas: each a 400 with its reason, nothing written
    for area, reason in (
        ("{not json", "not GeoJSON"),
        (json.dumps(bow_tie), "not valid"),
        (json.dumps({"type": "Point", "coordinates": [117.0, 39.0]}), "Polygon"),
        (json.dumps(box), "one of the two"),  # and cells too
    ):
        extra = {"cells": ["A-02"]} if reason == "one of the two" else {}
        response = operator.post("/maps/campaigns/", {**form, "area": area, **extra})
        assert response.status_code == 400 and reason in response.content.decode(), reason
    assert not Campaign.objects.exists()
    # when: the box alone
    response = operator.post("/maps/campaigns/", {**form, "area": json.dumps(box)})
    # then: the two households of 西楼
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and campaign.total == 2
    assert set(campaign.targets.values_list("building_id", flat=True)) == {registry.a01_west.pk}
