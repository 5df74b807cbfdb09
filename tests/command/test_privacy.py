"""Personal data (issue 13): masked by default, unmasked one record at a time with a stated
purpose, every unmask in an access log the application's database role cannot change; grants
narrowed to grid cells, time windows and AB-role cover; object-level checks; mass assignment."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from command.layers import LAYERS, layers_for_user
from command.masking import mask_id_number, mask_name, mask_phone, mask_sql, mask_value
from command.models import Event, GridCell, Household, Incident, PersonalDataAccess
from command.services.access import access_grant_revoke, access_grant_save
from command.services.reports import report_submit
from tests.field_api.conftest import client_for, report_body
from tests.maps import conftest as maps_conftest
from tests.maps.conftest import Village
from tests.support import response_body

village = maps_conftest.village  # the map tests' demo village (a fixture)

pytestmark = pytest.mark.django_db


# --- masking --------------------------------------------------------------------------------


def test_masks_of_the_issue() -> None:
    assert mask_name("张三明") == "张*明"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧**明"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("110101199003071234") == "110101********1234"
    assert mask_phone("12345") == "*2345" and mask_phone("") == "" and mask_name(None) is None


@pytest.mark.parametrize(
    ("value", "mask"),
    [
        ("张三明", "name"),
        ("张三", "name"),
        ("王", "name"),
        ("Zhang San", "name"),
        ("13812345678", "phone"),
        ("+86 138 1234 5678", "phone"),
        ("8812345", "phone"),
        ("12", "phone"),
        ("110101199003071234", "id_number"),
        ("11010119900307X", "id_number"),
        ("A123", "id_number"),
        ("电梯困人，联系张三 13812345678", "text"),
        ("", "text"),
    ],
)
def test_sql_and_python_masks_agree_and_are_idempotent(value: str, mask: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {mask_sql('v', mask)} FROM (SELECT %s::text AS v) x", [value])  # noqa: S608
        (in_sql,) = cursor.fetchone()
    assert in_sql == mask_value(value, mask)
    assert mask_value(in_sql, mask) == in_sql  # a masked value masks to itself (the event log stores them)


def test_flags_mask_in_sql_and_python() -> None:
    with connection.cursor() as cursor:
        sql = f"SELECT {mask_sql('a', 'flags')}, {mask_sql('b', 'flags')}"
        cursor.execute(sql + " FROM (SELECT %s::text[] AS a, %s::text[] AS b) x", [["a"], []])
        assert cursor.fetchone() == (["***"], [])
    assert mask_value(["elderly_alone"], "flags") == ["***"] and mask_value([], "flags") == []


def test_every_sensitive_field_has_a_known_mask() -> None:
    for layer in LAYERS.values():
        for field in layer.fields:
            if field.sensitive:
                assert field.masked_as in {"name", "phone", "id_number", "text", "flags", "null"}, (layer.name, field)


# --- unmask one record with a purpose -------------------------------------------------------


def _unmask(client: APIClient, layer: str, pk: object, purpose: object = None):
    body = {} if purpose is None else {"purpose": purpose}
    return client.post(f"/api/v1/layers/{layer}/features/{pk}/unmask/", body, format="json")


def test_a_record_comes_masked_and_unmasks_only_with_a_purpose_into_the_log(
    village: Village, make_user: Callable[..., User]
) -> None:
    # given a grid worker of the village's cells
    worker = client_for(make_user("grid_worker", cells=["A-01", "A-02"]))
    zhang = next(h for h in village.households if h.head_name == "张三")
    # when the record is read, then personal data is masked and nothing is logged
    shown = worker.get(f"/api/v1/layers/households/features/{zhang.pk}/").json()
    assert (shown["properties"]["head_name"], shown["properties"]["phone"]) == ("张*", "138****0001")
    assert not PersonalDataAccess.objects.exists()
    # when it is unmasked without a purpose (or a blank one), then that is refused, with a reason
    for purpose in (None, "", "  ", "x"):
        refused = _unmask(worker, "households", zhang.pk, purpose)
        assert refused.status_code == 400 and "purpose" in refused.json(), purpose
    assert not PersonalDataAccess.objects.exists()
    # when it is unmasked with a purpose, then the data comes, and one log row says who/what/why
    answer = _unmask(worker, "households", zhang.pk, "独居老人回访")
    assert answer.status_code == 200
    assert (answer.json()["properties"]["head_name"], answer.json()["properties"]["phone"]) == ("张三", "13800000001")
    row = PersonalDataAccess.objects.get()
    assert row.username.startswith("grid_worker") and row.role == "grid_worker"
    assert (row.channel, row.layer, row.object_ids, row.purpose) == (
        "unmask",
        "households",
        [str(zhang.pk)],
        "独居老人回访",
    )
    assert len(row.request_id) == 32 and row.at is not None


def test_roles_that_may_not_unmask_are_refused(village: Village, make_user: Callable[..., User]) -> None:
    report = village.worker.user.pk
    from command.models import Report

    report = Report.objects.get()
    committee = client_for(make_user("supervision_committee"))
    shown = committee.get(f"/api/v1/layers/reports/features/{report.pk}/").json()["properties"]
    assert shown["note"] == "***" and shown["reporter_id"] is None  # masked, not unmaskable
    assert _unmask(committee, "reports", report.pk, "核查").status_code == 403
    police = client_for(make_user("police"))  # the layer is not theirs: as if it did not exist
    assert _unmask(police, "reports", report.pk, "核查").status_code == 404
    assert not PersonalDataAccess.objects.exists()


def test_a_forbidden_id_and_a_missing_id_get_the_same_answer(village: Village, make_user: Callable[..., User]) -> None:
    # given a grid worker of A-01 only; 王五's household is in A-02, and no household 999999 exists
    worker = client_for(make_user("grid_worker", cells=["A-01"]))
    wang = next(h for h in village.households if h.head_name == "王五")
    for path in (
        "/api/v1/layers/households/features/{}/",
        "/ogc/collections/households/items/{}",
    ):
        forbidden, missing = worker.get(path.format(wang.pk)), worker.get(path.format(999999))
        assert forbidden.status_code == missing.status_code == 404, path
        assert forbidden.json().keys() == missing.json().keys(), path
    forbidden, missing = _unmask(worker, "households", wang.pk, "核查"), _unmask(worker, "households", 999999, "核查")
    assert forbidden.status_code == missing.status_code == 404 and forbidden.json() == missing.json()
    # a layer the role may not see answers like a layer that does not exist
    police = client_for(make_user("police"))
    assert (
        police.get("/api/v1/layers/households/features/1/").json()
        == police.get("/api/v1/layers/rivers/features/1/").json()
    )


# --- the access log is append-only, enforced by the database --------------------------------


def test_the_applications_database_role_cannot_update_or_delete_the_access_log(make_user: Callable) -> None:
    # given a row, written as every channel writes it
    worker = make_user("grid_worker")
    from command.access import access_log_write

    access_log_write(user=worker, channel="unmask", layer="households", object_ids=[1], purpose="核查")
    row = PersonalDataAccess.objects.get()
    # then the application's own connection (its database role) cannot change or remove it
    for statement in (
        "UPDATE command_personaldataaccess SET purpose = 'edited' WHERE id = %s",
        "UPDATE command_personaldataaccess SET user_id = NULL WHERE id = %s",
        "DELETE FROM command_personaldataaccess WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [row.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        PersonalDataAccess.objects.filter(pk=row.pk).delete()
    # and deleting the user leaves the row as it was (who it was stays known)
    pk, username = worker.pk, worker.username
    worker.delete()
    row = PersonalDataAccess.objects.get()
    assert (row.user_id, row.username, row.purpose) == (pk, username, "核查")


# --- grants narrowed to cells, windows, AB cover; revocation --------------------------------


def _households(client: APIClient) -> set[str]:
    """The units of the households the client sees (none when the layer is not granted: 404)."""
    response = client.get("/maps/layers/households.geojson", {"bbox": "116.999,38.999,117.003,39.002"})
    if response.status_code == 404:
        return set()
    return {f["properties"]["unit"] for f in response.json()["features"]}


@pytest.mark.django_db(transaction=True)  # exports read on a connection of their own
def test_a_grid_worker_outside_a_cells_grant_sees_none_of_its_households(
    village: Village, make_user: Callable[..., User]
) -> None:
    # given grid workers of A-01 and of A-02 (1-101 and 1-102 stand in A-01, 2-201 in A-02)
    a01 = client_for(make_user("grid_worker", cells=["A-01"]))
    a02 = client_for(make_user("grid_worker", cells=["A-02"]))
    nowhere = client_for(make_user("grid_worker"))  # a grid worker without cells
    # then each sees exactly the households of its own cell, on every channel
    assert _households(a01) == {"1-101", "1-102"} and _households(a02) == {"2-201"}
    assert _households(nowhere) == set()
    wang = next(h for h in village.households if h.head_name == "王五")
    assert a01.get(f"/api/v1/layers/households/features/{wang.pk}/").status_code == 404
    exported = response_body(a01.get("/maps/export/households.csv", {"bbox": "116.999,38.999,117.003,39.002"})).decode(
        "utf-8-sig"
    )
    assert "1-101" in exported and "2-201" not in exported
    ogc = a01.get("/ogc/collections/households/items").json()
    assert {f["properties"]["unit"] for f in ogc["features"]} == {"1-101", "1-102"}


def test_ab_cover_time_windows_and_revocation(village: Village, make_user: Callable[..., User]) -> None:
    # given a grid worker of A-01
    user = make_user("grid_worker", cells=["A-01"])
    client = client_for(user)
    admin = make_user("admin")
    assert _households(client) == {"1-101", "1-102"}
    # when the admin gives them their own cells with AB-role cover of the neighbouring cell
    grant = access_grant_save(
        user=user, own_cells=True, neighbour_cover=True, reason="AB角: 顶替A-02", actor_id=admin.pk
    )
    # then they also see A-02's households, and the grant is in the event log
    assert _households(client) == {"1-101", "1-102", "2-201"}
    event = Event.objects.get(kind="grant.updated")
    assert event.actor_id == admin.pk and event.payload["properties"]["action"] == "granted"
    # when the grant is revoked, then it takes effect at once: no grant left, nothing seen
    access_grant_revoke(grant=grant, actor_id=admin.pk)
    assert _households(client) == set()
    assert "households" not in layers_for_user(User.objects.get(pk=user.pk))
    # a window: a grant of A-02 that starts tomorrow shows nothing today; one that ended neither
    now = timezone.now()
    a02 = GridCell.objects.get(code="A-02")
    access_grant_save(user=user, cells=[a02], valid_from=now + timedelta(days=1), reason="下周", actor_id=admin.pk)
    access_grant_save(user=user, cells=[a02], valid_until=now - timedelta(hours=1), reason="上周", actor_id=admin.pk)
    assert _households(client) == set()
    access_grant_save(user=user, cells=[a02], valid_until=now + timedelta(hours=8), reason="今天", actor_id=admin.pk)
    assert _households(client) == {"2-201"}


def test_a_police_patrol_area_grant_for_the_role(village: Village, make_user: Callable[..., User]) -> None:
    # given an officer, who by the role's declaration sees cameras everywhere
    police = client_for(make_user("police"))
    cameras = lambda: {  # noqa: E731
        f["properties"]["code"]
        for f in police.get("/maps/layers/cameras.geojson", {"bbox": "116.999,38.999,117.003,39.002"}).json()[
            "features"
        ]
    }
    assert cameras() == {"C1", "C2"}
    # when the role's grant is narrowed to a patrol area and to cameras and incidents
    access_grant_save(
        role="police",
        layers=["cameras", "incidents"],
        cells=[GridCell.objects.get(code="A-02")],
        reason="派出所辖区",
        actor_id=None,
    )
    # then only the cameras of A-02, and no other layer
    assert cameras() == {"C2"}
    assert police.get("/maps/layers/hotspots.geojson", {"bbox": "116.999,38.999,117.003,39.002"}).status_code == 404


def test_bad_grants_are_refused_with_a_reason(make_user: Callable[..., User]) -> None:
    from django.core.exceptions import ValidationError

    user = make_user("police")
    for kwargs in (
        {"user": user, "role": "police"},
        {},
        {"role": "sheriff"},
        {"user": user, "layers": ["rivers"]},
        {"user": user, "valid_from": timezone.now(), "valid_until": timezone.now() - timedelta(days=1)},
    ):
        with pytest.raises(ValidationError):
            access_grant_save(reason="x", actor_id=None, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        access_grant_save(user=user, reason=" ", actor_id=None)


# --- the event log holds personal data masked ------------------------------------------------


def test_the_event_log_never_holds_personal_data_in_the_clear(grid, reference, make_user: Callable) -> None:
    reporter = make_user("grid_worker", team="road")
    report_submit(
        reporter_id=reporter.pk,
        client_id=uuid.uuid4(),
        category=reference["sanitation"],
        location=Point(117.0005, 39.0005, srid=4326),
        note="张三家门口 13812345678",
    )
    from django.contrib.gis.geos import Polygon

    from command.services.places import building_save
    from command.services.records import record_save

    building = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    household = Household(
        building=building, unit="1", resident_type="registered", head_name="张三明", phone="13812345678"
    )
    record_save(obj=household, actor_id=None)
    text = " ".join(str(e.payload) for e in Event.objects.all())
    assert "张三" not in text and "13812345678" not in text
    assert "张*明" in text and "138****5678" in text
    report_event = Event.objects.get(kind="report.created")
    assert report_event.payload["properties"]["note"] == "***"
    assert report_event.payload["properties"]["reporter_id"] is None


# --- mass assignment --------------------------------------------------------------------------


def test_read_only_and_privileged_fields_cannot_be_set_through_a_write(grid, reference, make_user: Callable) -> None:
    worker = make_user("grid_worker", team="road", cells=["A-01"])
    api = client_for(worker)
    for extra in (
        {"id": 1},
        {"reporter": 1},
        {"reporter_id": 1},
        {"incident": 1},
        {"grid_cell": 1},
        {"received_at": "2020-01-01T00:00:00Z"},
        {"source": "alarm"},
        {"status": "closed"},
    ):
        answer = api.post("/api/v1/reports/", report_body(**extra), format="json")
        assert answer.status_code == 400, extra
        assert set(extra) <= set(answer.json()), answer.json()
    stored = api.post("/api/v1/reports/", report_body(), format="json")
    assert stored.status_code == 201
    incident_id = stored.json()["incident"]["id"]
    # an action without input takes none: what is sent is not applied
    api.post(f"/api/v1/incidents/{incident_id}/accept/", {"worker_id": 99, "status": "closed"}, format="json")
    incident = Incident.objects.get(pk=incident_id)
    assert incident.status != "closed" and incident.worker_id != 99
    duty = api.post("/api/v1/me/duty/", {"on_duty": True, "team": 1}, format="json")
    assert duty.status_code == 400 and "team" in duty.json()
    unmask = api.post("/api/v1/layers/reports/features/1/unmask/", {"purpose": "核查", "user": 1}, format="json")
    assert unmask.status_code in (400, 404)
