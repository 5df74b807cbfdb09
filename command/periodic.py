"""Periodic jobs that run inside the Daphne processes already serving the app: no scheduler
daemon to install. The first request or websocket a process serves starts one task on its event
loop that runs every job each ``PERIODIC_JOBS_SECONDS`` (in a worker thread: they use the ORM).
Each job takes care of running from many processes at once (an advisory lock: one does the
work). Where no Daphne runs, ``manage.py periodic_jobs`` runs them once (cron).

Jobs: ``alarm_devices_check`` (home alarms that missed their heartbeat go offline, with an event),
``requests_mark_overdue`` (open requests past their SLA get flagged, with an event),
``incidents_overdue_mark`` (the SLA job: open incidents past their due time become
``incident.overdue``, once each; the wall shows and counts them), ``api_tokens_expire`` (API
tokens older than ``API_TOKEN_MAX_AGE_DAYS`` are deleted: refused everywhere from then on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from command.loops import loop_local

logger = logging.getLogger(__name__)


def _alarm_devices_check() -> None:
    from command.services.alarms import alarm_devices_check

    marked = alarm_devices_check()
    if marked:
        logger.info("alarm devices offline: %s", ", ".join(d.code for d in marked))


def _requests_mark_overdue() -> None:
    from command.services.requests import requests_mark_overdue

    requests_mark_overdue()


def _incidents_overdue_mark() -> None:
    from command.services.incidents import incidents_overdue_mark

    marked = incidents_overdue_mark()
    if marked:
        logger.info("incidents announced overdue: %s", marked)


def _points_sync_visits() -> None:
    from command.services.points import points_sync_visits

    points_sync_visits()


def _api_tokens_expire() -> None:
    from command.services.accounts import api_tokens_expire

    expired = api_tokens_expire()
    if expired:
        logger.info("API tokens expired: %s", expired)


JOBS: list[tuple[str, Callable[[], None]]] = [
    ("api_tokens_expire", _api_tokens_expire),
    ("points_sync_visits", _points_sync_visits),
    ("alarm_devices_check", _alarm_devices_check),
    ("requests_mark_overdue", _requests_mark_overdue),
    ("incidents_overdue_mark", _incidents_overdue_mark),
]


def periodic_jobs_run() -> None:
    """Run every job once (a failing job is logged; the others still run)."""
    for name, job in JOBS:
        try:
            job()
        except Exception:
            logger.exception("periodic job %s failed", name)


_run_async = database_sync_to_async(periodic_jobs_run)
_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


async def _loop() -> None:
    while True:
        await asyncio.sleep(settings.PERIODIC_JOBS_SECONDS)
        await _run_async()


def periodic_jobs_start() -> None:
    """Start the running loop's periodic task once (a no-op when it runs or is switched off)."""
    if settings.PERIODIC_JOBS_SECONDS <= 0:
        return
    loop_local(_tasks, lambda loop: loop.create_task(_loop(), name="periodic-jobs"), usable=lambda t: not t.done())


def periodic_jobs_app(app: Any) -> Any:
    """ASGI wrapper: starts the periodic task on the first call a process serves. A plain
    function returning the app's coroutine: no coroutine of its own held by every open socket."""

    def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        periodic_jobs_start()
        return app(scope, receive, send)

    wrapped._asgi_single_callable = True  # type: ignore[attr-defined]  # ASGI 3 (asgiref)
    return wrapped
