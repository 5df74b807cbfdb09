"""A small hand-drawn village for the map channels (the demo generator is not needed here).

    39.001 +-------------------+-------------------+
           |  A-01             |  A-02       B2    |
           |     B1   C1  hot  |        C2         |
    39.000 +-------------------+-------------------+
        117.000             117.001             117.002

B1/B2 buildings with households, C1/C2 cameras, "hot" = six open incidents within ~15 m
(a hotspot), one closed incident in A-02, one incident opened ten days ago.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point, Polygon
from django.test import Client
from django.utils import timezone

from command.models import Building, Camera, Category, GridCell, Household, Incident, Worker
from command.services.dataset import dataset_load
from command.services.places import building_save, camera_save
from command.services.reports import report_submit

HOT = (117.0008, 39.0003)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    poly = Polygon.from_bbox((x0, y0, x1, y1))
    poly.srid = 4326
    return poly


@dataclass
class Village:
    cells: dict[str, GridCell]
    buildings: list[Building]
    households: list[Household]
    cameras: list[Camera]
    hot_incidents: list[Incident]
    closed_incident: Incident
    old_incident: Incident
    worker: Worker


@pytest.fixture
def village(grid: dict[str, GridCell], reference: dict[str, Category], make_user: Callable[..., User]) -> Village:
    b1 = building_save(footprint=box(117.0002, 39.0002, 117.0004, 39.0004), address="幸福路1号", floors=3)
    b2 = building_save(footprint=box(117.0012, 39.0006, 117.0014, 39.0008), address="幸福路2号", floors=5)
    c1 = camera_save(
        code="C1", name="路口1", location=Point(117.0005, 39.0005, srid=4326), heading=90, fov=60, range_m=40
    )
    c2 = camera_save(
        code="C2", name="路口2", location=Point(117.0015, 39.0005, srid=4326), heading=180, fov=90, range_m=30
    )
    now = timezone.now()
    cat = reference["neighbour_dispute"]

    def incident(lon: float, lat: float, *, status: str = "new", opened=None, category: Category = cat) -> Incident:
        opened = opened or now
        return Incident(
            category=category,
            status=status,
            priority=category.priority,
            location=Point(lon, lat, srid=4326),
            opened_at=opened,
            last_report_at=opened,
            due_at=opened + timedelta(hours=4),
            updated_at=opened,
        )

    hot = [incident(HOT[0] + 0.00003 * i, HOT[1] + 0.00002 * (i % 3)) for i in range(6)]
    closed = incident(117.0018, 39.0009, status="closed")
    old = incident(117.0013, 39.0001, opened=now - timedelta(days=10), category=reference["road_damage"])
    households = [
        Household(
            building=b1,
            unit="1-101",
            resident_type="registered",
            members=3,
            head_name="张三",
            phone="13800000001",
            vulnerable=["elderly_alone"],
        ),
        Household(building=b1, unit="1-102", resident_type="tenant", members=1, head_name="李四", phone="13800000002"),
        Household(
            building=b2, unit="2-201", resident_type="registered", members=2, head_name="王五", phone="13800000003"
        ),
    ]
    dataset_load(incidents=[*hot, closed, old], households=households)
    worker_user = make_user("grid_worker", username="worker-road", team="road")
    worker = Worker.objects.get(user=worker_user)
    Worker.objects.filter(pk=worker.pk).update(last_position=Point(117.0003, 39.0006, srid=4326), last_position_at=now)
    report_submit(
        reporter_id=worker_user.pk,
        client_id=uuid.uuid4(),
        category=reference["sanitation"],
        location=Point(117.0016, 39.0004, srid=4326),
        note="垃圾堆放 张三家门口",
    )
    return Village(
        cells=grid,
        buildings=[b1, b2],
        households=list(Household.objects.order_by("id")),
        cameras=[c1, c2],
        hot_incidents=hot,
        closed_incident=closed,
        old_incident=old,
        worker=worker,
    )


@pytest.fixture
def login(make_user: Callable[..., User]) -> Callable[[str], Client]:
    """``login("police")``: a test client signed in with a fresh user of that role; a role whose
    layers are narrowed to its own cells (grid workers, team leads) works the village's big grid A."""

    def make(role: str) -> Client:
        from command.roles import ROLES

        client = Client()
        client.force_login(make_user(role, cells=["A"] if ROLES[role].area == "own_cells" else None))
        return client

    return make
