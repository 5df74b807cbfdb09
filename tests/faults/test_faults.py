"""The fault suite's short form (``make faults`` runs the full one): 120 reports through
dropped connections, a Redis restart, a Daphne kill -9 and a PostgreSQL restart, on services of
its own (tests/faults/suite.py). Its figures are printed (``pytest -s`` or on failure)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import BASE_DIR

pytestmark = pytest.mark.slow


def test_fault_suite_short_form_loses_nothing_and_sends_nothing_twice():
    # given / when: the suite in its own process, on its own PostgreSQL, Redis and cluster
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faults.suite",
            "--reports",
            "120",
            "--phones",
            "4",
            "--screens",
            "3",
            "--rate",
            "6",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(done.stdout)
    # then: every acknowledged report stored once, every screen holds every event once, in
    # order, and caught up within 10 s of each fault (the suite checks and says PASSED)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert "fault suite: PASSED" in done.stdout
