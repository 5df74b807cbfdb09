"""Async PostgreSQL connections for the lean ASGI paths (command/asgi.py) and streamed exports.

Django's request path runs every sync view in a thread of its own (a new thread, a GEOS context
and a pooled connection per request) and measured ~3.5 ms before any view code on this machine
kind; the two hottest requests (a phone's report, a map tile) skip it and use this pool on
Daphne's event loop instead. Same database, same settings (``DATABASES['default']``), same
services: only the driver differs.

One pool per event loop (Daphne has one; tests may run several loops), opened on first use.
``DB_ASYNC_POOL_MAX`` bounds it (README, settings).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, cast

from django.conf import settings
from psycopg import AsyncClientCursor, AsyncConnection
from psycopg_pool import AsyncConnectionPool

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)


def conninfo() -> dict[str, Any]:
    """psycopg connection arguments of the default database (as Django connects)."""
    db = settings.DATABASES["default"]
    info: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    if db.get("HOST"):
        info["host"] = db["HOST"]
    if db.get("PORT"):
        info["port"] = db["PORT"]
    raw_options: dict[str, Any] = dict(cast(dict[str, Any], db.get("OPTIONS") or {}))
    options = {k: v for k, v in raw_options.items() if k not in {"pool", "server_side_binding"}}
    info.update(options)
    return {k: v for k, v in info.items() if v is not None}


async def _configure(conn: AsyncConnection[Any]) -> None:
    # As Django's connections: UTC session time zone; our writes pass aware datetimes anyway.
    # PostGIS's library is loaded by a backend on its first spatial call (11-16 ms measured
    # here, a third of a new connection's first report): load it now, while the pool grows.
    await conn.execute("SET TIME ZONE 'UTC'; SELECT postgis_lib_version()")


async def pool() -> AsyncConnectionPool:
    """The open pool of the running event loop."""
    loop = asyncio.get_running_loop()
    opening = _pools.get(loop)
    if opening is None:  # the first caller opens it; callers meanwhile wait for the same future
        opening = _pools[loop] = loop.create_task(_open())
    try:
        return await asyncio.shield(opening)
    except Exception:
        if _pools.get(loop) is opening:
            del _pools[loop]  # the database was down: the next request tries again
        raise


async def _open() -> AsyncConnectionPool:
    created = AsyncConnectionPool(
        # Client-side binding, as Django's psycopg backend: the services' statements bind the same.
        # Autocommit: a statement is its own transaction unless the caller opens one.
        kwargs={**conninfo(), "cursor_factory": AsyncClientCursor, "autocommit": True},
        min_size=1,
        max_size=int(getattr(settings, "DB_ASYNC_POOL_MAX", 10)),
        timeout=10,
        configure=_configure,
        open=False,
        name="gc-async",
    )
    await created.open()
    return created


async def pools_close() -> None:
    """Close the running loop's pool (tests; Daphne simply exits)."""
    opening = _pools.pop(asyncio.get_running_loop(), None)
    if opening is not None:
        await (await opening).close()
