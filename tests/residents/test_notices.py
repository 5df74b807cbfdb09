"""Village notices reach only their target grid; reads are counted once per resident, per grid."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Polygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from rest_framework.test import APIClient

from command.models import Household, Notice
from command.services.notices import notice_publish, notice_read, notices_for_resident
from command.services.phone_login import resident_ensure
from command.services.places import building_save


@pytest.fixture
def residents(grid, household):
    # one resident in A-01 (the household fixture), one in A-02, one with no known household
    a02 = Polygon.from_bbox((117.0012, 39.0002, 117.0014, 39.0004))
    a02.srid = 4326
    other = Household.objects.create(
        building=building_save(footprint=a02, address="幸福路 9 号"),
        unit="1-101",
        resident_type="tenant",
        head_name="赵强",
        phone="13600000002",
    )
    household.phone = "13600000001"
    household.save(update_fields=["phone"])
    assert other.building.grid_cell.code == "A-02" and household.building.grid_cell.code == "A-01"
    return {
        "a01": resident_ensure(phone="13600000001"),
        "a02": resident_ensure(phone="13600000002"),
        "nowhere": resident_ensure(phone="13600000003"),
    }


def test_a_notice_reaches_only_its_target_grid(residents, make_user) -> None:
    operator = make_user("operator")
    everyone = notice_publish(actor=operator, title="停水通知", body="周六全村停水")
    cell = notice_publish(actor=operator, title="A-01 楼道清理", body="周日上午", target_code="A-01")
    big = notice_publish(actor=operator, title="A 大网格开会", body="周一晚", target_code="A")

    def seen(user):
        return set(notices_for_resident(user).values_list("pk", flat=True))

    assert seen(residents["a01"]) == {everyone.pk, cell.pk, big.pk}
    assert seen(residents["a02"]) == {everyone.pk, big.pk}
    assert seen(residents["nowhere"]) == {everyone.pk}
    client = Client()
    client.force_login(residents["a02"])
    assert client.get(f"/resident/notices/{cell.pk}/").status_code == 404  # another grid's: not found
    assert "A 大网格开会" in client.get(f"/resident/notices/{big.pk}/").content.decode()


def test_reads_are_counted_once_per_resident_by_grid(residents, make_user) -> None:
    operator = make_user("operator")
    api = APIClient()
    api.force_authenticate(operator)
    response = api.post("/api/v1/notices/", {"title": "垃圾分类", "body": "新规定", "target": "A"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    for user in (residents["a01"], residents["a01"], residents["a02"]):
        notice_read(user=user, notice_id=pk)
    with pytest.raises(Notice.DoesNotExist):
        notice_read(user=residents["nowhere"], notice_id=pk)
    assert api.get(f"/api/v1/notices/{pk}/reads/").json() == {
        "id": pk,
        "reads_by_grid": {"A-01": 1, "A-02": 1},
        "reads": 2,
    }


def test_publishing_checks_who_and_what(residents, make_user) -> None:
    with pytest.raises(PermissionDenied):
        notice_publish(actor=residents["a01"], title="x", body="y")
    operator = make_user("operator")
    with pytest.raises(ValidationError) as caught:
        notice_publish(actor=operator, title="", body="y", target_code="Z-99")
    assert set(caught.value.message_dict) == {"title", "target"}
    api = APIClient()
    api.force_authenticate(operator)
    assert api.post("/api/v1/notices/", {"title": "t", "body": "b", "target": "nope"}, format="json").status_code == 400
    api.force_authenticate(residents["a01"])
    assert api.post("/api/v1/notices/", {"title": "t", "body": "b"}, format="json").status_code == 403
    assert not Notice.objects.exists()
