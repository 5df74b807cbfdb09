"""Read-only selectors on a PostgreSQL streaming replica (``DATABASE_REPLICA_URL``).

The map and OGC reads (``command.layer_queries``: features by bbox, counts, extents) ask
``read_alias()`` for their connection; every write, the event log, the access policy (grants,
logins) and the personal-data access log stay on the primary. ``ReplicaRouter`` sends the ORM
reads made inside ``replica_reads()`` the same way, and every write and migration to the primary.

Lag (docs/scale-out.md): a replica replays the primary's WAL a little later (milliseconds on
one host, more under load or across a network). So

- a read from the replica may miss a write that has just committed. Screens never depend on
  it: live events come from the event log on the primary (``/ws/live/``), and a map loaded from
  the replica is brought up to date by the events that follow it;
- a replica too far behind is not used: ``read_alias()`` checks the replica's replay lag at
  most once a second per process and reads from the primary while it exceeds
  ``DATABASE_REPLICA_MAX_LAG_SECONDS`` or the replica does not answer;
- grants are never read from the replica, so a revoked grant takes effect at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
PRIMARY = "default"
CHECK_EVERY_SECONDS = 1.0

_reading: ContextVar[bool] = ContextVar("gridcommand_replica_reads", default=False)


class _State:
    lock = threading.Lock()
    checked_at = -1e9
    usable = False
    lag = 0.0


_state = _State()

LAG_SQL = (
    "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def replica_lag() -> float:
    """Seconds the replica's replay is behind (0 when it has replayed all it received)."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(LAG_SQL)
        row = cursor.fetchone()
    assert row is not None
    if not row[0]:
        raise RuntimeError("the replica is not in recovery: it is a primary")
    return float(row[1] or 0)


def _replica_usable() -> bool:
    now = time.monotonic()
    if now - _state.checked_at < CHECK_EVERY_SECONDS:
        return _state.usable
    with _state.lock:
        if now - _state.checked_at >= CHECK_EVERY_SECONDS:
            try:
                _state.lag = replica_lag()
                _state.usable = _state.lag <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS
            except Exception as exc:  # the replica is away: read from the primary meanwhile
                if _state.usable:
                    logger.warning("read replica not usable (%s); reading from the primary", exc)
                _state.usable = False
                with contextlib.suppress(Exception):
                    connections[REPLICA].close()
            _state.checked_at = time.monotonic()
    return _state.usable


def read_alias() -> str:
    """The database a read-only selector reads from: the replica when one is set and usable,
    and never inside a transaction on the primary (which must read its own writes)."""
    if replica_configured() and not connections[PRIMARY].in_atomic_block and _replica_usable():
        return REPLICA
    return PRIMARY


@contextlib.contextmanager
def replica_reads() -> Iterator[str]:
    """ORM reads inside go to ``read_alias()`` (through ``ReplicaRouter``)."""
    token = _reading.set(True)
    try:
        yield read_alias()
    finally:
        _reading.reset(token)


class ReplicaRouter:
    """``DATABASE_ROUTERS``: reads inside ``replica_reads()`` may go to the replica; writes,
    relations and migrations are the primary's."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return read_alias() if _reading.get() else PRIMARY

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY
