"""Fixtures of the registry and campaign tests (registered in tests/conftest.py): two buildings
in A-01, one in A-02 (see tests/conftest.py for the grid), households with members, and
workers of each cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Polygon

from command.models import Building, GridCell, Household, Worker
from command.services.places import building_save
from command.services.registry import household_create


def id_number(seq: int, born: str = "19800101") -> str:
    """A made-up ID number with a valid GB 11643 check character."""
    body = f"120111{born}{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def footprint(x0: float, y0: float, size: float = 0.0002) -> Polygon:
    poly = Polygon.from_bbox((x0, y0, x0 + size, y0 + size))
    poly.srid = 4326
    return poly


@dataclass
class Registry:
    a01_east: Building  # in A-01, 4 households
    a01_west: Building  # in A-01, 2 households
    a02: Building  # in A-02, 3 households
    households: dict[str, Household]  # "<building>/<unit>"


def member(name: str, relation: str = "head", *, resident_type: str = "registered", **more: object) -> dict:
    return {"full_name": name, "relation": relation, "resident_type": resident_type, **more}


@pytest.fixture
def registry(grid: dict[str, GridCell]) -> Registry:
    # A-01 is 117.000-117.001 x 39.000-39.001, A-02 117.001-117.002 (tests/conftest.py)
    east = building_save(footprint=footprint(117.0006, 39.0004), address="东楼", floors=3)
    west = building_save(footprint=footprint(117.0001, 39.0004), address="西楼", floors=2)
    a02 = building_save(footprint=footprint(117.0014, 39.0004), address="南楼", floors=3)
    households = {}
    seq = 0

    def add(building: Building, key: str, unit: str, members: list[dict]) -> None:
        nonlocal seq
        for m in members:
            seq += 1
            m.setdefault(
                "id_number", id_number(seq, "19400101" if "elderly_alone" in m.get("vulnerable", []) else "19800101")
            )
            m.setdefault("phone", f"1380000{seq:04d}")
        households[f"{key}/{unit}"] = household_create(building=building, unit=unit, members=members)

    add(east, "east", "101", [member("张小明"), member("李华", "spouse"), member("张伟", "child")])
    add(east, "east", "102", [member("王老汉", vulnerable=["elderly_alone"])])
    add(
        east,
        "east",
        "201",
        [member("赵军", vulnerable=["veteran"]), member("钱芳", "spouse", vulnerable=["unemployed"])],
    )
    add(east, "east", "202", [member("孙丽", resident_type="tenant")])
    add(west, "west", "1", [member("周奶奶", vulnerable=["elderly_alone", "hardship"])])
    add(west, "west", "2", [member("吴强", resident_type="tenant"), member("郑敏", "other", resident_type="tenant")])
    add(a02, "a02", "1", [member("冯刚")])
    add(a02, "a02", "2", [member("陈老太", vulnerable=["elderly_alone"])])
    add(a02, "a02", "3", [member("褚建国", vulnerable=["disabled"])])
    return Registry(east, west, a02, households)


@pytest.fixture
def worker_a01(make_user: Callable[..., User], grid: dict[str, GridCell]) -> User:
    user = make_user("grid_worker", username="wang", team="volunteer")
    Worker.objects.get(user=user).cells.set([grid["A-01"]])
    return user


@pytest.fixture
def worker_a02(make_user: Callable[..., User], grid: dict[str, GridCell]) -> User:
    user = make_user("grid_worker", username="li", team="volunteer")
    Worker.objects.get(user=user).cells.set([grid["A-02"]])
    return user
