"""Every bad input answers 4xx with a reason per field, never 500, and writes nothing."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from command.models import Event, Incident, Report
from tests.field_api.conftest import image_bytes, report_body

URL = "/api/v1/reports/"


def assert_nothing_written() -> None:
    assert not Report.objects.exists()
    assert not Incident.objects.exists()
    assert not Event.objects.filter(layer__in=["reports", "incidents"]).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"location": {"type": "Point", "coordinates": [190.0, 39.0]}}, "location", "Longitude"),
        ({"location": {"type": "Point", "coordinates": [117.0, -91.0]}}, "location", "Latitude"),
        ({"location": {"type": "Point", "coordinates": ["NaN", 39.0]}}, "location", "finite"),
        ({"location": {"type": "LineString", "coordinates": [[117, 39], [117.1, 39.1]]}}, "location", "Point"),
        ({"location": {"type": "Point", "coordinates": [117.0, 39.0], "crs": {"type": "name"}}}, "location", "crs"),
        ({"location": "not json"}, "location", "JSON"),
        ({"location": {"type": "Point"}}, "location", "coordinates"),
        ({"location": {"type": "Point", "coordinates": [117.0]}}, "location", ""),
        ({"category": "no_such_thing"}, "category", "road_damage"),
        ({"category": 5}, "category", "code"),
        ({"client_id": "not-a-uuid"}, "client_id", ""),
        ({"accuracy": -1}, "accuracy", ""),
        ({"accuracy": "many"}, "accuracy", ""),
        ({"note": "x" * 4001}, "note", "4000"),
        ({"client_time": "yesterday"}, "client_time", ""),
    ],
)
def test_bad_field_answers_400_naming_the_field(api, grid, overrides, field, fragment):
    # when
    response = api.post(URL, report_body(**overrides), format="json")
    # then
    assert response.status_code == 400, response.content
    reasons = response.json()[field]
    assert fragment in " ".join(reasons)
    assert_nothing_written()


def test_missing_location_answers_400(api, grid):
    body = report_body()
    del body["location"]
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert "location" in response.json()
    assert_nothing_written()


@pytest.mark.parametrize(("lon", "lat"), [("nan", "39"), ("117", "inf"), ("181", "39"), ("117", "91")])
def test_bad_longitude_latitude_fields(api, grid, lon, lat):
    body = report_body()
    del body["location"]
    response = api.post(URL, {**body, "longitude": lon, "latitude": lat}, format="multipart")
    assert response.status_code == 400, response.content
    assert {"longitude", "latitude"} & set(response.json())
    assert_nothing_written()


def test_srid_other_than_4326_is_refused(api, grid):
    body = report_body(
        location={
            "type": "Point",
            "coordinates": [13046000.0, 4720000.0],
            "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
        }
    )
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert "WGS 84" in " ".join(response.json()["location"])


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b'{"client_id": NaN}'])
def test_malformed_json_answers_400(api, grid, raw):
    response = api.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "detail" in response.json() or "non_field_errors" in response.json()
    assert_nothing_written()


@override_settings(FIELD_API_MAX_JSON_BYTES=1000)
def test_body_too_large_answers_413(api, grid):
    response = api.post(URL, report_body(note="x" * 2000), format="json")
    assert response.status_code == 413
    assert "1000" in response.json()["detail"]
    assert_nothing_written()


@override_settings(PHOTO_MAX_BYTES=2000)
def test_photo_too_large_answers_400(api, grid):
    big = image_bytes(size=(400, 400))
    assert len(big) > 2000
    body = report_body(location=json.dumps(report_body()["location"]), photos=[_upload(big, "big.jpg")])
    response = api.post(URL, body, format="multipart")
    assert response.status_code in (400, 413)
    assert "photos" in response.json() or "detail" in response.json()
    assert_nothing_written()


@override_settings(PHOTO_MAX_PIXELS=100 * 100)
def test_photo_with_too_many_pixels_answers_400(api, grid):
    body = report_body(location=json.dumps(report_body()["location"]), photos=[_upload(image_bytes(size=(200, 200)))])
    response = api.post(URL, body, format="multipart")
    assert response.status_code == 400
    assert "megapixels" in " ".join(response.json()["photos"])
    assert_nothing_written()


def test_too_many_files_answers_400(api, grid):
    photos = [_upload(image_bytes(size=(10 + i, 10)), f"p{i}.jpg") for i in range(7)]
    body = report_body(location=json.dumps(report_body()["location"]), photos=photos)
    response = api.post(URL, body, format="multipart")
    assert response.status_code == 400, response.content
    assert "6" in " ".join(response.json()["photos"])
    assert_nothing_written()


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,", "x.jpg"),
        (b"%PDF-1.4 not a photo at all", "photo.png"),
        (b"\xff\xd8\xff\xe0 truncated jpeg", "broken.jpg"),
    ],
)
def test_unsupported_image_answers_400(api, grid, content, name):
    body = report_body(location=json.dumps(report_body()["location"]), photos=[_upload(content, name)])
    response = api.post(URL, body, format="multipart")
    assert response.status_code == 400, response.content
    assert "JPEG" in " ".join(response.json()["photos"]) or "damaged" in " ".join(response.json()["photos"])
    assert_nothing_written()


def test_gif_by_content_is_refused_even_when_named_jpg(api, grid):
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="GIF")
    body = report_body(location=json.dumps(report_body()["location"]), photos=[_upload(out.getvalue(), "cat.jpg")])
    response = api.post(URL, body, format="multipart")
    assert response.status_code == 400
    assert "GIF" in " ".join(response.json()["photos"])


@override_settings(FIELD_API_RATES={"reports": "3/min"})
def test_rate_limit_answers_429(api, grid):
    codes = [api.post(URL, report_body(), format="json").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]


def test_unsupported_content_type_answers_415(api, grid):
    response = api.generic("POST", URL, b"<report/>", content_type="application/xml")
    assert response.status_code == 415


def _upload(content: bytes, name: str = "photo.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="image/jpeg")


def test_reasons_are_chinese_by_default(worker_user, grid):
    # given: a client that states no language
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=worker_user)[0].key}")
    # when
    response = client.post(URL, report_body(location={"type": "Point", "coordinates": [190.0, 39.0]}), format="json")
    # then
    assert response.status_code == 400
    assert "经度" in " ".join(response.json()["location"])


def test_reason_added_after_the_main_catalog_is_chinese_too(worker_user, grid):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=worker_user)[0].key}")
    body = report_body(location={"type": "LineString", "coordinates": [[117, 39], [117.1, 39.1]]})
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "需要点" in " ".join(response.json()["location"])


def test_an_unreachable_database_answers_503_with_retry_after(api, grid, monkeypatch):
    # given: the database goes away under the service (restarting, failing over)
    from django.db import OperationalError

    def away(**kwargs):
        raise OperationalError("connection to server on socket failed")

    monkeypatch.setattr("field_api.views.report_submit", away)
    # when
    response = api.post(URL, report_body(), format="json")
    # then: not a 500: the phone keeps the report and sends it again later
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "again" in response.json()["detail"]
