"""report_submit: cell, building, routing and incident grouping at the boundaries; idempotency
under concurrent retries; photos without their metadata."""

from __future__ import annotations

import io
import threading
import uuid
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.db import connection
from django.utils import timezone
from PIL import Image

from command.models import Incident, Report, ReportPhoto, Worker
from command.services.places import building_save
from command.services.reports import ReportConflict, report_submit
from tests.field_api.conftest import image_bytes


def submit(category, lon, lat, **kwargs):
    return report_submit(
        reporter_id=None,
        client_id=kwargs.pop("client_id", uuid.uuid4()),
        category=category,
        location=Point(lon, lat, srid=4326),
        **kwargs,
    )


# Grid (tests/conftest.py): A-01 = 117.000-117.001, A-02 = 117.001-117.002, lat 39.000-39.001.
@pytest.mark.parametrize(
    ("lon", "lat", "cell"),
    [
        (117.0005, 39.0005, "A-01"),  # inside A-01
        (117.0015, 39.0005, "A-02"),  # inside A-02
        (117.001, 39.0005, "A-01"),  # on the shared edge: the lower code
        (117.000, 39.0005, "A-01"),  # on A-01's outer edge: still inside
        (117.002, 39.001, "A-02"),  # A-02's corner
        (116.9999, 39.0005, None),  # ~9 m west of A-01: outside
        (117.0021, 39.0005, None),  # ~9 m east of A-02: outside
        (117.0005, 39.0011, None),  # ~11 m north: outside
    ],
)
def test_cell_assignment_inside_edge_outside(reference, grid, lon, lat, cell):
    # when
    report = submit(reference["sanitation"], lon, lat).report
    # then
    expected = grid[cell].pk if cell else None
    assert report.grid_cell_id == expected
    assert report.outside_grid is (cell is None)
    assert report.incident.grid_cell_id == expected
    assert report.incident.outside_grid is (cell is None)


def test_nearest_building_within_30_m(reference, grid):
    # given: a 10 m square building in A-01, its east wall at lon 117.0006
    footprint = Polygon.from_bbox((117.00048, 39.00045, 117.0006, 39.00054))
    footprint.srid = 4326
    building = building_save(footprint=footprint, address="幸福路 1 号")
    # when: 25 m east of the wall (0.00029 deg lon at lat 39 = ~25 m) and ~43 m east
    near = submit(reference["sanitation"], 117.00089, 39.0005).report
    far = submit(reference["elevator_fault"], 117.0011, 39.0005).report
    # then
    assert near.building_id == building.pk
    assert far.building_id is None


def test_routing_prefers_the_cells_own_worker(reference, grid, make_user):
    # given: two on-duty road workers; only "li" works in A-02, "zhao" stands nearer
    li = Worker.objects.get(user=make_user("grid_worker", username="li", team="road"))
    li.cells.set([grid["A-02"]])
    zhao = Worker.objects.get(user=make_user("grid_worker", username="zhao", team="road"))
    Worker.objects.filter(pk=zhao.pk).update(last_position=Point(117.0015, 39.0005, srid=4326))
    Worker.objects.filter(pk=li.pk).update(last_position=Point(117.0019, 39.0009, srid=4326))
    # when
    in_a02 = submit(reference["road_damage"], 117.0015, 39.0005).report.incident
    outside = submit(reference["parking_dispute"], 116.9990, 39.0005).report.incident
    # then
    assert in_a02.worker_id == li.pk
    assert in_a02.status == Incident.Status.DISPATCHED
    assert in_a02.team.code == "road"
    assert outside.worker_id == zhao.pk  # outside the grid: nearest worker of the team


def test_no_worker_on_duty_leaves_incident_new_for_the_team(reference, grid):
    incident = submit(reference["sanitation"], 117.0005, 39.0005).report.incident
    assert incident.status == Incident.Status.NEW
    assert incident.worker_id is None
    assert incident.team.code == "sanitation"


def test_grouping_within_50_m_and_30_minutes(reference, grid):
    # given
    now = timezone.now()
    first = submit(reference["road_damage"], 117.0005, 39.0005, received_at=now).report
    # when: ~40 m north (0.00036 deg lat), same category, 10 minutes later
    near = submit(reference["road_damage"], 117.0005, 39.00086, received_at=now + timedelta(minutes=10)).report
    # ~60 m away
    far = submit(reference["road_damage"], 117.0005, 39.00104, received_at=now + timedelta(minutes=11)).report
    # same place, other category
    other = submit(reference["sanitation"], 117.0005, 39.0005, received_at=now + timedelta(minutes=11)).report
    # same place, 31 minutes after the incident's last report
    late = submit(reference["road_damage"], 117.0005, 39.0005, received_at=now + timedelta(minutes=41)).report
    # then
    assert near.incident_id == first.incident_id
    assert {far.incident_id, other.incident_id, late.incident_id}.isdisjoint({first.incident_id})
    first.incident.refresh_from_db()
    assert first.incident.report_count == 2
    assert first.incident.due_at == now + timedelta(minutes=reference["road_damage"].sla_minutes)


def test_sla_due_time_from_category(reference, grid):
    now = timezone.now()
    incident = submit(reference["gas_alarm"], 117.0005, 39.0005, received_at=now).report.incident
    assert incident.due_at == now + timedelta(minutes=15)
    assert incident.priority == 1


def test_changed_content_raises_conflict_and_keeps_first(reference, grid):
    client_id = uuid.uuid4()
    submit(reference["road_damage"], 117.0005, 39.0005, client_id=client_id, note="a")
    with pytest.raises(ReportConflict):
        submit(reference["road_damage"], 117.0005, 39.0005, client_id=client_id, note="b")
    assert Report.objects.get(client_id=client_id).note == "a"


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_client_id_create_one_row(reference, grid):
    # given: 8 threads, each with its own database connection, send the same report at once
    client_id = uuid.uuid4()
    category = reference["road_damage"]
    barrier = threading.Barrier(8)
    results: list[object] = []

    def send() -> None:
        try:
            barrier.wait(5)
            results.append(submit(category, 117.0005, 39.0005, client_id=client_id, note="同一条"))
        except Exception as exc:  # collected and asserted below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # then
    assert len(results) == 8
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(1 for r in results if r.created) == 1  # type: ignore[attr-defined]
    assert len({r.report.pk for r in results}) == 1  # type: ignore[attr-defined]
    assert Report.objects.filter(client_id=client_id).count() == 1
    assert Incident.objects.get().report_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_event_open_one_incident(reference, grid):
    # given: 8 phones report the same pothole at once, from points up to ~30 m apart that lie
    # on both sides of a grouping square's edge (lon 117.001)
    category = reference["road_damage"]
    points = [(117.00085 + 0.00005 * i, 39.0005 + 0.00002 * i) for i in range(8)]
    barrier = threading.Barrier(len(points))
    errors: list[Exception] = []

    def send(lon: float, lat: float) -> None:
        try:
            barrier.wait(5)
            submit(category, lon, lat)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=p) for p in points]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # then
    assert errors == []
    assert Report.objects.count() == 8
    assert Incident.objects.count() == 1
    assert Incident.objects.get().report_count == 8


def gps_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N", 2: (39.0, 0.0, 30.0), 3: "E", 4: (117.0, 0.0, 5.0)}
    exif[0x8825] = gps  # GPSInfo IFD
    return exif.tobytes()


def test_photo_exif_and_gps_are_removed(reference, grid):
    # given: a JPEG carrying GPS tags
    original = image_bytes(size=(120, 80), exif=gps_exif())
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    # when
    result = submit(reference["road_damage"], 117.0005, 39.0005, photos=[io.BytesIO(original)])
    # then
    photo = ReportPhoto.objects.get(report=result.report)
    with photo.image.open("rb") as f:
        stored = Image.open(io.BytesIO(f.read()))
    assert stored.format == "JPEG"
    assert not stored.getexif()
    assert "exif" not in stored.info
    assert (photo.width, photo.height) == (120, 80)
    with photo.thumbnail.open("rb") as f:
        assert not Image.open(io.BytesIO(f.read())).getexif()


def test_same_photo_is_stored_once_across_retries(reference, grid):
    client_id = uuid.uuid4()
    jpeg, png = image_bytes(), image_bytes("PNG", size=(30, 30))
    first = submit(reference["road_damage"], 117.0005, 39.0005, client_id=client_id, photos=[jpeg, jpeg])
    retry = submit(reference["road_damage"], 117.0005, 39.0005, client_id=client_id, photos=[jpeg, png])
    assert first.created and not retry.created
    assert len(first.photos) == 1
    assert len(retry.photos) == 1  # only the PNG was new
    assert ReportPhoto.objects.filter(report=first.report).count() == 2


def test_webp_is_accepted(reference, grid):
    result = submit(reference["road_damage"], 117.0005, 39.0005, photos=[image_bytes("WEBP")])
    assert len(result.photos) == 1
