"""Fixtures of the resident-service tests: a building with a household in grid cell A-01."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Polygon

from command.models import AlarmDevice, Building, Household
from command.services.alarms import alarm_device_register
from command.services.places import building_save

# Inside A-01 (117.000-117.001, 39.000-39.001): a 20 m x 20 m block.
FOOTPRINT = Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004))
FOOTPRINT.srid = 4326


@pytest.fixture
def building(grid: dict, reference: dict) -> Building:
    return building_save(footprint=FOOTPRINT, address="幸福路 1 号")


@pytest.fixture
def household(building: Building) -> Household:
    # The registry's household writes are not on main yet: a plain row, as tests/command/test_admin.py makes.
    return Household.objects.create(
        building=building,
        unit="2-301",
        resident_type="registered",
        members=1,
        head_name="李桂兰",
        phone="13912345678",
        vulnerable=["elderly_alone"],
    )


@pytest.fixture
def device(household: Household, make_user) -> tuple[AlarmDevice, str]:
    """An SOS button registered to the household (60 s heartbeats), and its secret."""
    return alarm_device_register(
        actor=make_user("operator"),
        code="SOS-0001",
        kind="sos",
        household_id=household.pk,
        wearer_name="李桂兰",
        contact_name="李明",
        contact_phone="138 0000 1111",
        heartbeat_seconds=60,
    )
