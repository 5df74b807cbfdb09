"""Map and OGC reads from a real streaming replica (a second private PostgreSQL, ``pg_basebackup
-R`` of the test run's cluster), writes and the live feed on the primary, and the lag guard.

The replica's replay is paused to make its lag visible: a write on the primary is then absent
from the maps (read from the replica) until replay resumes, while screens get it at once from
the primary's event log; with ``DATABASE_REPLICA_MAX_LAG_SECONDS`` exceeded the maps read from
the primary instead.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest

from command import localstack
from tests import support
from tests.realtime.conftest import session_cookie
from tests.realtime.live_client import LiveClient
from tests.support import daphne_server

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="the replica follows the private cluster only"),
]

BBOX = "116.99,38.99,117.01,39.01"


def _replica_conninfo(db: str) -> str:
    return f"host={localstack.RUN_DIR} port={localstack.REPLICA_PORT} user={localstack.PG_USER} dbname={db}"


@pytest.fixture(scope="module")
def replica_url(django_db_setup: None) -> Iterator[str]:
    localstack.start_replica()
    yield support.test_database_url().replace(f"port={localstack.PG_PORT}", f"port={localstack.REPLICA_PORT}")


def _replay(pause: bool) -> None:
    with psycopg.connect(_replica_conninfo("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if pause else "SELECT pg_wal_replay_resume()")


def _replica_caught_up(timeout: float = 15) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    with psycopg.connect(
        f"host={localstack.RUN_DIR} port={localstack.PG_PORT} user={localstack.PG_USER} dbname=postgres",
        autocommit=True,
    ) as primary:
        target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    with psycopg.connect(_replica_conninfo("postgres"), autocommit=True) as replica:
        while time.monotonic() < deadline:
            if replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]:  # type: ignore[index]
                return
            time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


def _incident_ids(server, cookie: str) -> set[int]:
    request = urllib.request.Request(
        f"{server.url}/maps/layers/incidents.geojson?bbox={BBOX}", headers={"Cookie": f"sessionid={cookie}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return {feature["id"] for feature in json.loads(response.read())["features"]}


def _ogc_ids(server, cookie: str) -> set[int]:
    request = urllib.request.Request(
        f"{server.url}/ogc/collections/incidents/items?f=json&limit=1000", headers={"Cookie": f"sessionid={cookie}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return {feature["id"] for feature in json.loads(response.read())["features"]}


def test_map_and_ogc_reads_come_from_the_replica_and_screens_from_the_primary(replica_url, make_user, submit):
    # given: a Daphne whose read-only selectors use the replica, which has replayed everything
    operator = make_user("operator")
    cookie = session_cookie(operator)
    seen = submit(note="before the pause", lon=117.0003).incident_id
    _replica_caught_up()
    env = {"DATABASE_REPLICA_URL": replica_url, "DATABASE_REPLICA_MAX_LAG_SECONDS": "3600"}
    with daphne_server(extra_env=env) as server:
        assert seen in _incident_ids(server, cookie)
        screen = LiveClient(f"{server.ws_url}/ws/live/", cookie=cookie, origin=server.url)
        screen.subscribe(["incidents"])
        _replay(pause=True)
        try:
            # when: a report commits on the primary while the replica does not replay
            fresh = submit(note="while paused", lon=117.0015).incident_id
            # then: the screen has it at once (the event log is the primary's) ...
            assert screen.wait_for(lambda c: any(e["object_id"] == str(fresh) for e in c.events))
            # ... and the maps and OGC, read from the replica, do not yet
            assert seen in _incident_ids(server, cookie) and fresh not in _incident_ids(server, cookie)
            assert fresh not in _ogc_ids(server, cookie)
            health = json.loads(urllib.request.urlopen(f"{server.url}/healthz", timeout=10).read())
            assert health["replica"]["ok"] is True and health["replica"]["used"] is True
        finally:
            _replay(pause=False)
            screen.close()
        # and once the replica replays, the maps show it
        _replica_caught_up()
        assert fresh in _incident_ids(server, cookie) and fresh in _ogc_ids(server, cookie)


def test_a_replica_past_the_lag_limit_is_not_read(replica_url, make_user, submit):
    # given: a limit of 1 s, and a replica that stopped replaying more than that ago
    operator = make_user("operator")
    cookie = session_cookie(operator)
    submit(note="replayed", lon=117.0003)
    _replica_caught_up()
    env = {"DATABASE_REPLICA_URL": replica_url, "DATABASE_REPLICA_MAX_LAG_SECONDS": "1"}
    with daphne_server(extra_env=env) as server:
        _replay(pause=True)
        try:
            fresh = submit(note="while paused", lon=117.0015).incident_id
            time.sleep(2.5)  # past the limit, and past the once-a-second check
            # when / then: the map reads from the primary, and has it
            assert fresh in _incident_ids(server, cookie)
            health = json.loads(urllib.request.urlopen(f"{server.url}/healthz", timeout=10).read())
            assert health["replica"]["used"] is False
        finally:
            _replay(pause=False)
