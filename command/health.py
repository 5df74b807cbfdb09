"""What ``/healthz`` checks: the database, Redis, the read replica when one is set, and how far
this process's screens are behind the event log.

Each check is timed and answered as ``{"ok": ..., "ms": ...}``; the whole is ``ok`` when every
check is. The event-log lag is the age of the oldest committed event that some screen of this
process has not been handed yet (0 when none waits): realtime's hub registers a probe that
lists its screens' cursors (``delivery_probe_set``), so this module needs nothing from realtime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from command.eventlog import latest_seq
from command.models import Event
from command.replica import read_alias, replica_configured, replica_lag

# Per event loop of this process: () -> the cursors of the screens it serves (None: not subscribed yet).
_probes: dict[object, Callable[[], list[int | None]]] = {}


def delivery_probe_set(owner: object, probe: Callable[[], list[int | None]]) -> None:
    _probes[owner] = probe


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        found = {"ok": True, **check()}
    except Exception as exc:  # a health check reports a failure, it never raises one
        found = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    found["ms"] = round((time.perf_counter() - start) * 1000, 2)
    return found


def _database() -> dict[str, Any]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        row = cursor.fetchone()
    return {"postgis": row[0] if row else None}


def _replica() -> dict[str, Any]:
    """The replica answers, and how far its replay is behind (command/replica.py)."""
    lag = replica_lag()
    if lag > settings.HEALTHZ_MAX_LAG_SECONDS:
        raise RuntimeError(f"replay is {lag:.1f} s behind")
    return {"lag_seconds": round(lag, 3), "used": read_alias() == "replica"}


_redis_client: Any = None


def _redis() -> dict[str, Any]:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    _redis_client.ping()
    return {}


def _cursors() -> list[int | None]:
    for _attempt in range(5):  # the event loop may change a hub's set of screens meanwhile
        try:
            return [cursor for probe in list(_probes.values()) for cursor in probe()]
        except RuntimeError:
            continue
    return []


def _event_log() -> dict[str, Any]:
    latest = latest_seq()
    cursors = [c for c in _cursors() if c is not None]
    slowest = min(cursors, default=latest)
    behind = max(latest - slowest, 0)
    lag = 0.0
    if behind:
        waiting = Event.objects.filter(seq=slowest + 1).values_list("created_at", flat=True).first()
        if waiting is not None:
            lag = max((timezone.now() - waiting).total_seconds(), 0.0)
    if lag > settings.HEALTHZ_MAX_LAG_SECONDS:
        raise RuntimeError(f"screens are {lag:.1f} s ({behind} events) behind the event log")
    return {"latest_seq": latest, "screens": len(cursors), "behind": behind, "lag_seconds": round(lag, 3)}


def health_report() -> dict[str, Any]:
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    if replica_configured():
        checks["replica"] = _timed(_replica)
    checks["event_log"] = _timed(_event_log) if checks["database"]["ok"] else {"ok": False, "error": "no database"}
    report: dict[str, Any] = {"ok": all(check["ok"] for check in checks.values()), **checks}
    # the fields /healthz answered before these checks (kept for scripts that read them)
    report["postgis"] = checks["database"].get("postgis")
    report["latest_seq"] = checks["event_log"].get("latest_seq")
    return report
