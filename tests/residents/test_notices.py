"""Village notices reach only their target grid; reads are counted once per resident, per grid."""

from __future__ import annotations

import json

import pytest
from django.contrib.gis.geos import Polygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from command.models import Household, Notice, NoticePhoto
from command.services.notices import notice_publish, notice_read, notices_for_resident
from command.services.phone_login import resident_ensure
from command.services.places import building_save
from tests.field_api.conftest import image_bytes


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


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def test_a_notice_takes_images_through_the_photo_checks_and_its_grid_sees_them(residents, make_user) -> None:
    # given: an operator, a JPEG carrying GPS-bearing EXIF and a PNG
    operator = make_user("operator")
    api = APIClient()
    api.force_authenticate(operator)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    jpeg = image_bytes("JPEG", size=(640, 480), exif=exif.tobytes())
    # when
    response = api.post(
        "/api/v1/notices/",
        {
            "title": "A-01 道路施工",
            "body": "见图",
            "target": "A-01",
            "photos": [_upload("a.jpg", jpeg), _upload("b.png", image_bytes("PNG"))],
        },
        format="multipart",
    )
    # then: stored, re-encoded without metadata
    assert response.status_code == 201, response.content
    assert response.json()["photos"] == 2
    notice = Notice.objects.get(pk=response.json()["id"])
    photos = list(NoticePhoto.objects.filter(notice=notice).order_by("pk"))
    assert len(photos) == 2 and (photos[0].width, photos[0].height) == (640, 480)
    with photos[0].image.open("rb") as stored:
        data = stored.read()
    assert data.startswith(b"\xff\xd8") and b"Exif" not in data and b"PhoneMaker" not in data
    url = f"/resident/notices/{notice.pk}/photos/{photos[0].pk}/"
    # the resident of A-01 sees the images on the notice's page, and gets them
    a01 = Client()
    a01.force_login(residents["a01"])
    page = a01.get(f"/resident/notices/{notice.pk}/").content.decode()
    assert url in page and f"{url}thumbnail/" in page
    got = a01.get(url)
    assert got.status_code == 200 and got["Content-Type"] == "image/jpeg"
    assert a01.get(f"{url}thumbnail/").status_code == 200
    # the operator too; a resident of another grid and a stranger get 404, as for no image
    staff = Client()
    staff.force_login(operator)
    assert staff.get(url).status_code == 200
    a02 = Client()
    a02.force_login(residents["a02"])
    assert a02.get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert a01.get(f"/resident/notices/{notice.pk}/photos/{photos[0].pk + 100}/").status_code == 404


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([("x.jpg", b"GIF89a not really a photo")], "not a supported image"),
        ([("bomb.png", b"")], "empty"),
        ([(f"p{i}.jpg", image_bytes("JPEG", size=(8 + i, 8))) for i in range(7)], "at most 6"),
    ],
)
def test_a_notice_with_a_bad_image_is_refused_with_a_reason_and_nothing_written(
    residents, make_user, files, reason
) -> None:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(make_user("operator"))
    response = api.post(
        "/api/v1/notices/",
        {"title": "坏图", "body": "x", "photos": [_upload(name, data) for name, data in files]},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert reason in json.dumps(response.json(), ensure_ascii=False)
    assert not Notice.objects.exists() and not NoticePhoto.objects.exists()
