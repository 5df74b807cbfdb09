"""The registry and campaigns over REST: who sees what (cells, roles, masks, the access log),
visits and marks idempotent by client id, clear 4xx for bad input, nothing for the police."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib.auth.models import Permission, User

from command.models import CampaignTarget, HouseholdVisit, PersonalDataAccess
from tests.field_api.conftest import client_for
from tests.registry_support import Registry


def test_a_visit_from_the_field_app_is_stored_once_and_shows_in_the_log(registry: Registry, worker_a01: User) -> None:
    api = client_for(worker_a01)
    household = registry.households["east/102"]
    head = household.persons.get(relation="head")
    body = {
        "client_id": str(uuid.uuid4()),
        "visited_at": "2026-12-06T10:00:00+08:00",
        "note": "身体还好",
        "changes": [
            {"person": head.pk, "values": {"phone": "13611112222", "vulnerable": ["elderly_alone", "disabled"]}}
        ],
    }
    first = api.post(f"/api/v1/households/{household.pk}/visits/", body, format="json")
    again = api.post(f"/api/v1/households/{household.pk}/visits/", body, format="json")
    assert first.status_code == 201, first.content
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert HouseholdVisit.objects.count() == 1
    other = {**body, "note": "改了"}
    assert api.post(f"/api/v1/households/{household.pk}/visits/", other, format="json").status_code == 409
    # the log says which fields changed; their values with a stated purpose (logged)
    log = api.get(f"/api/v1/households/{household.pk}/visits/").json()["results"]
    assert log[0]["changes"][0]["fields"] == ["phone", "vulnerable"] and log[0]["note"] is None
    log = api.get(f"/api/v1/households/{household.pk}/visits/", {"purpose": "回访核对"}).json()["results"]
    assert log[0]["visitor"] == "wang" and log[0]["changes"][0]["fields"]["phone"] == ["13800000004", "13611112222"]
    assert PersonalDataAccess.objects.get(detail="visit log").purpose == "回访核对"
    household.refresh_from_db()
    assert household.vulnerable == ["disabled", "elderly_alone"]


def test_bad_visits_get_a_reason(registry: Registry, worker_a01: User) -> None:
    api = client_for(worker_a01)
    household = registry.households["east/101"]
    head = household.persons.get(relation="head")
    url = f"/api/v1/households/{household.pk}/visits/"
    cases = [
        ({"changes": []}, "client_id"),
        ({"client_id": "nope"}, "client_id"),
        ({"client_id": str(uuid.uuid4()), "changes": [{"person": head.pk, "values": {"id_number": "123"}}]}, "changes"),
        ({"client_id": str(uuid.uuid4()), "changes": "all"}, "changes"),
        ({"client_id": str(uuid.uuid4()), "visited_at": "2099-01-01T00:00:00Z"}, "visited_at"),
    ]
    for body, field in cases:
        response = api.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    assert api.post(url, "[1]", content_type="application/json").status_code == 400
    assert not HouseholdVisit.objects.exists()


def test_lists_follow_the_cells_the_role_and_the_masks(
    registry: Registry, worker_a01: User, make_user: Callable[..., User]
) -> None:
    # an operator: all elderly living alone in grid A, masked by default, nothing logged
    operator = client_for(make_user("operator"))
    response = operator.get("/api/v1/households/", {"vulnerable": "elderly_alone", "cell": "A"})
    assert response.status_code == 200
    assert sorted(h["head_name"] for h in response.json()["results"]) == ["周*奶", "王*汉", "陈*太"]
    assert not PersonalDataAccess.objects.exists()
    # with a stated purpose: unmasked, and the view is logged with that purpose
    response = operator.get("/api/v1/households/", {"vulnerable": "elderly_alone", "cell": "A", "purpose": "冬季走访"})
    assert sorted(h["head_name"] for h in response.json()["results"]) == ["周奶奶", "王老汉", "陈老太"]
    logged = PersonalDataAccess.objects.get(layer="households", channel="rest")
    assert logged.purpose == "冬季走访" and len(logged.object_ids) == 3
    # a purpose of one character is refused with a reason
    short = operator.get("/api/v1/households/", {"purpose": "x"})
    assert short.status_code == 400 and "purpose" in short.json()
    # the worker of A-01: the households of A-01 only
    mine = client_for(worker_a01).get("/api/v1/households/").json()
    assert mine["count"] == 6
    # a role that sees personal data masked, given the layer but not the personal-data grant:
    # masked, and a purpose does not unmask (403)
    viewer = make_user("supervision_committee", username="viewer")
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_layer_households"]))
    viewer_api = client_for(User.objects.get(pk=viewer.pk))
    masked = viewer_api.get("/api/v1/households/", {"cell": "A-01"}).json()
    row = next(h for h in masked["results"] if h["unit"] == "101")
    assert row["head_name"] == "张*明" and row["phone"] == "138****0001" and row["vulnerable"] in (None, [], ["***"])
    assert viewer_api.get("/api/v1/households/", {"purpose": "看看"}).status_code == 403
    # bad filters: a reason
    bad = operator.get("/api/v1/households/", {"vulnerable": "rich"})
    assert bad.status_code == 400 and "vulnerable" in bad.json()


def test_building_panel_and_door_lookup(registry: Registry, worker_a01: User) -> None:
    api = client_for(worker_a01)
    panel = api.get(f"/api/v1/buildings/{registry.a01_east.pk}/households/").json()
    units = {h["unit"]: h for h in panel["households"]}
    assert set(units) == {"101", "102", "201", "202"}
    assert [p["full_name"] for p in units["101"]["persons"]] == ["张*明", "李*", "张*"]  # masked by default
    panel = api.get(f"/api/v1/buildings/{registry.a01_east.pk}/households/", {"purpose": "入户走访"}).json()
    units = {h["unit"]: h for h in panel["households"]}
    assert [p["full_name"] for p in units["101"]["persons"]] == ["张小明", "李华", "张伟"]
    assert set(PersonalDataAccess.objects.values_list("purpose", flat=True)) == {"入户走访"}
    assert api.get(f"/api/v1/buildings/{registry.a02.pk}/households/").status_code == 404  # not my cell
    found = api.get(f"/api/v1/buildings/{registry.a01_east.pk}/residents/", {"q": "张"}).json()["results"]
    assert sorted(p["full_name"] for p in found) == ["张*", "张*明"]
    assert all("*" in p["id_number"] and "*" in p["phone"] for p in found)
    assert api.get(f"/api/v1/buildings/{registry.a01_east.pk}/residents/", {"q": ""}).status_code == 400


def test_campaign_over_rest_marks_idempotent_and_targets_per_cell(
    registry: Registry, worker_a01: User, worker_a02: User, make_user: Callable[..., User]
) -> None:
    operator = client_for(make_user("operator"))
    created = operator.post(
        "/api/v1/campaigns/",
        {
            "name": "独居老人巡访",
            "kind": "screening",
            "target_kind": "households",
            "cells": ["A"],
            "filters": {"vulnerable": ["elderly_alone"]},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    campaign = created.json()
    assert campaign["total"] == 3
    # a worker may not start one; a bad area is a 400 with a reason
    assert client_for(worker_a01).post("/api/v1/campaigns/", {}, format="json").status_code == 403
    bad = operator.post(
        "/api/v1/campaigns/",
        {
            "name": "x",
            "kind": "census",
            "target_kind": "households",
            "area": {"type": "Point", "coordinates": [117, 39]},
        },
        format="json",
    )
    assert bad.status_code == 400 and "area" in bad.json()
    # the worker of A-01 sees the two targets of A-01 not covered yet
    api = client_for(worker_a01)
    targets = api.get(f"/api/v1/campaigns/{campaign['id']}/targets/", {"status": "open"}).json()["results"]
    assert {t["grid_cell"] for t in targets} == {"A-01"} and len(targets) == 2
    mark = {"client_id": str(uuid.uuid4()), "target": targets[0]["id"], "outcome": "visited"}
    assert api.post("/api/v1/campaign-marks/", mark, format="json").status_code == 201
    assert api.post("/api/v1/campaign-marks/", mark, format="json").status_code == 200  # offline retry
    assert api.post("/api/v1/campaign-marks/", {**mark, "outcome": "refused"}, format="json").status_code == 409
    bad_mark = api.post(
        "/api/v1/campaign-marks/", {**mark, "client_id": str(uuid.uuid4()), "outcome": "gone"}, format="json"
    )
    assert bad_mark.status_code == 400 and "outcome" in bad_mark.json()
    a02_target = CampaignTarget.objects.get(campaign_id=campaign["id"], grid_cell__code="A-02")
    foreign = {"client_id": str(uuid.uuid4()), "target": a02_target.pk, "outcome": "visited"}
    assert api.post("/api/v1/campaign-marks/", foreign, format="json").status_code == 404
    detail = operator.get(f"/api/v1/campaigns/{campaign['id']}/").json()
    assert (detail["visited"], detail["covered"], detail["percent"]) == (1, 1, 33.3)
    assert detail["cells"]["A-01"]["visited"] == 1 and detail["cells"]["A-02"]["pending"] == 1
    progress = operator.get(f"/api/v1/campaigns/{campaign['id']}/progress/")
    features = progress.json()["features"]
    assert {f["properties"]["building_id"] for f in features} == {
        registry.a01_east.pk,
        registry.a01_west.pk,
        registry.a02.pk,
    }
    assert all(f["properties"]["campaign_total"] == 3 for f in features)
    # closed: no more marks
    assert operator.post(f"/api/v1/campaigns/{campaign['id']}/close/").status_code == 200
    late = {"client_id": str(uuid.uuid4()), "target": targets[1]["id"], "outcome": "visited"}
    assert api.post("/api/v1/campaign-marks/", late, format="json").status_code == 409


def test_police_gets_no_household_person_business_or_campaign_over_rest(
    registry: Registry, make_user: Callable[..., User]
) -> None:
    operator = client_for(make_user("operator"))
    campaign = operator.post(
        "/api/v1/campaigns/",
        {"name": "普查", "kind": "census", "target_kind": "households", "cells": ["A"]},
        format="json",
    ).json()
    target = CampaignTarget.objects.filter(campaign_id=campaign["id"]).first()
    assert target is not None
    police = client_for(make_user("police"))
    household = registry.households["east/101"]
    for url in (
        "/api/v1/households/",
        f"/api/v1/households/{household.pk}/visits/",
        f"/api/v1/buildings/{registry.a01_east.pk}/households/",
        f"/api/v1/buildings/{registry.a01_east.pk}/residents/?q=张",
        "/api/v1/businesses/",
        "/api/v1/campaigns/",
        f"/api/v1/campaigns/{campaign['id']}/",
        f"/api/v1/campaigns/{campaign['id']}/targets/",
        f"/api/v1/campaigns/{campaign['id']}/progress/",
    ):
        assert police.get(url).status_code == 404, url
    mark = {"client_id": str(uuid.uuid4()), "target": target.pk, "outcome": "visited"}
    assert police.post("/api/v1/campaign-marks/", mark, format="json").status_code == 404
    visit = {"client_id": str(uuid.uuid4())}
    assert police.post(f"/api/v1/households/{household.pk}/visits/", visit, format="json").status_code == 404
