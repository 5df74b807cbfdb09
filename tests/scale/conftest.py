"""A real cluster for the scale-out tests: Daphne processes behind nginx, as ``make cluster``
starts them, on the test database and the test run's Redis namespace."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from command.cluster import ClusterSpec, cluster_running
from command.localstack import LOCAL
from tests.realtime.conftest import submit  # a fixture for these tests too
from tests.support import free_port, test_database_url


def collected_static(root: Path) -> Path:
    """The app's static files collected into ``root`` (plain copies: nginx serves them)."""
    if not (root / "realtime" / "live.js").exists():
        storages = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with override_settings(STATIC_ROOT=root, STORAGES=storages):
            call_command("collectstatic", interactive=False, verbosity=0)
    return root


def cluster_spec(name: str, processes: int = 2, env: dict[str, str] | None = None) -> ClusterSpec:
    workdir = LOCAL / f"{name}-{os.getpid()}"
    shutil.rmtree(workdir / "metrics", ignore_errors=True)
    return ClusterSpec(
        processes=processes,
        port=free_port(),
        backends=[free_port() for _ in range(processes)],
        workdir=str(workdir),
        static_root=str(collected_static(LOCAL / f"test-static-{os.getpid()}")),
        env={
            "DJANGO_SETTINGS_MODULE": "command.test_settings",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"],
            "DB_POOL_MIN": "1",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        },
    )


@pytest.fixture(scope="module")
def module_cluster(django_db_setup: None, django_db_blocker: object) -> Iterator[ClusterSpec]:
    """Two Daphne processes behind nginx, for the module's tests (starting them takes seconds);
    rate limits low enough to be reached in a test."""
    spec = cluster_spec("test-cluster", env={"FIELD_API_RATE_READS": "5/min"})
    try:
        with cluster_running(spec, remove=True):
            yield spec
    finally:
        shutil.rmtree(spec.static_root, ignore_errors=True)


@pytest.fixture
def cluster(module_cluster: ClusterSpec, transactional_db: None) -> ClusterSpec:
    return module_cluster


__all__ = ["cluster", "module_cluster", "submit"]
