"""Shared fixtures. Tests run against the real PostGIS and Redis (see README)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Polygon

from command.models import Category, GridCell, Team
from command.services.accounts import user_ensure
from command.services.dataset import reference_data_ensure
from command.services.places import grid_cell_save
from tests.registry_support import registry, worker_a01, worker_a02  # noqa: F401 - registry fixtures
from tests.support import DaphneServer, chromium_launch_kwargs, daphne_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Playwright's sync API runs an event loop in the test's thread; the test's own ORM calls are
# still synchronous and safe. (Daphne processes started by tests do not inherit this.)
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# A hand-drawn grid near Tianjin (lon, lat), 0.001 degrees ≈ 86 m east-west, 111 m north-south:
#
#   39.001 +---------+---------+
#          |  A-01   |  A-02   |      big grid "A" covers both
#   39.000 +---------+---------+
#       117.000   117.001   117.002
CELL_A01 = Polygon.from_bbox((117.000, 39.000, 117.001, 39.001))
CELL_A02 = Polygon.from_bbox((117.001, 39.000, 117.002, 39.001))
BIG_A = Polygon.from_bbox((117.000, 39.000, 117.002, 39.001))
for _poly in (CELL_A01, CELL_A02, BIG_A):
    _poly.srid = 4326


@pytest.fixture(autouse=True)
def _shared_cache_forgotten() -> Iterator[None]:
    """Failed logins (command/lockout.py), rate-limit histories and cached sessions live in
    Redis, shared across processes: each test starts with none, so one test's wrong passwords
    or requests never lock out or throttle another's."""
    yield
    from django.core.cache import caches

    for alias in ("logins", "default"):
        cache = caches[alias]
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def reference(db: None) -> dict[str, Category]:
    reference_data_ensure()
    return {c.code: c for c in Category.objects.select_related("default_team")}


@pytest.fixture
def teams(reference: dict[str, Category]) -> dict[str, Team]:
    return {t.code: t for t in Team.objects.all()}


@pytest.fixture
def grid(db: None) -> dict[str, GridCell]:
    big = grid_cell_save(code="A", name="A 大网格", geom=BIG_A, level=GridCell.Level.BIG)
    a01 = grid_cell_save(code="A-01", name="A-01 网格", geom=CELL_A01, parent=big)
    a02 = grid_cell_save(code="A-02", name="A-02 网格", geom=CELL_A02, parent=big)
    return {"A": big, "A-01": a01, "A-02": a02}


@pytest.fixture
def make_user(db: None, reference: dict[str, Category]) -> Callable[..., User]:
    """``make_user("police")``: a login with one role; ``team="road"`` also makes it a worker;
    ``cells=["A-01"]`` gives that worker grid cells (by code; a volunteer unless a team is named),
    the cells a grid worker's or team lead's layers are narrowed to (command/access.py)."""

    def make(
        role: str,
        username: str | None = None,
        team: str | None = None,
        password: str = "pw-for-tests-1",
        cells: list[str] | None = None,
    ) -> User:
        if cells is not None and team is None:
            team = "volunteer"
        user = user_ensure(
            username=username or f"{role}-{User.objects.count() + 1}",
            password=password,
            role=role,
            team=Team.objects.get(code=team) if team else None,
        )
        if cells is not None:
            user.worker.cells.set(GridCell.objects.filter(code__in=cells))
        return user

    return make


@pytest.fixture
def live_daphne(transactional_db: None) -> Iterator[DaphneServer]:
    """A real Daphne process serving the app on the test database (committed data only)."""
    with daphne_server() as server:
        yield server


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_kwargs())  # type: ignore[arg-type]
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright's loop ran used their own (context-local) connections:
            # give them back, or the test database cannot be dropped at the end of the run.
            from django.db import connections

            connections.close_all()
