"""ASGI entry point (Daphne serves both): HTTP through Django, except the lean paths in front of
it (a phone's new report, a home alarm's webhook call, map tiles: they answer the common case on the event loop and hand
everything else to Django), and websockets through realtime's router."""

from __future__ import annotations

import asyncio
import gc
import os
import types
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
django_asgi_app = get_asgi_application()

from command.metrics import request_metrics_app  # noqa: E402
from command.periodic import periodic_jobs_app  # noqa: E402
from field_api.fast import report_fast_app  # noqa: E402
from field_api.residents.fast import alarm_fast_app  # noqa: E402
from maps.fast import tile_fast_app  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402


def daphne_raw_post_bodies() -> None:
    """Twisted's Request parses a POST's form body into ``request.args`` before Daphne sees it:
    an email-module parse of the Content-Type on every POST (8 % of Daphne's busy time per
    report in bench/ingest.py) and a whole second parse of a multipart photo upload. Daphne never
    reads ``args`` (it hands the raw body to the ASGI app, which parses it once), so its requests
    switch that off with Twisted's own flag, ``parsePOSTFormSubmission``."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # served by another ASGI server
        return
    if getattr(WebRequest, "gridcommand_raw_bodies", False):
        return
    init = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__
    WebRequest.gridcommand_raw_bodies = True


# Paths whose access-log lines carry no client address: the anonymous supervision tips (the
# pages use no other asset, so no other line of the log points at their sender either).
ANONYMOUS_PATH_PREFIXES = ("/tips/",)


def daphne_anonymous_access_log() -> None:
    """Daphne's access log writes each request's client address (and a proxy in front writes its
    own: configure it alike, docs/residents.md). For the anonymous paths the address is dropped
    before the log line is made: no IP and no user agent of a tip's sender is stored anywhere."""
    try:
        from daphne.server import Server
    except ImportError:  # served by another ASGI server
        return
    if getattr(Server, "gridcommand_anonymous_paths", False):
        return
    log_action = Server.log_action

    def anonymous_log_action(self: Any, protocol: str, action: str, details: dict[str, Any]) -> None:
        if str(details.get("path", "")).startswith(ANONYMOUS_PATH_PREFIXES):
            details = {**details, "client": None}
        log_action(self, protocol, action, details)

    Server.log_action = anonymous_log_action
    Server.gridcommand_anonymous_paths = True


class ConnectionQueue:
    """A connection's incoming ASGI messages (its ``receive``), as Daphne's ``asyncio.Queue``
    does it for one reader, without its four deques (~3 kB held by every open socket: an
    asyncio.Queue keeps three, its ``join`` event a fourth): a list and the futures of the
    readers waiting, made when one waits."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = [waiter]
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._items.pop(0)


def daphne_connection_queues() -> None:
    """Daphne makes an ``asyncio.Queue`` per connection for what it hands the application;
    this makes it a ``ConnectionQueue`` (Daphne only puts with ``put_nowait``, the application
    only gets)."""
    try:
        import daphne.server
    except ImportError:  # served by another ASGI server
        return
    if getattr(daphne.server, "gridcommand_connection_queues", False):
        return

    # daphne.server's view of the asyncio module: the same names, with the lighter queue
    server_module: Any = daphne.server
    server_module.asyncio = types.SimpleNamespace(**{**vars(asyncio), "Queue": ConnectionQueue})
    server_module.gridcommand_connection_queues = True


daphne_raw_post_bodies()
daphne_anonymous_access_log()
daphne_connection_queues()
http_application = request_metrics_app(tile_fast_app(report_fast_app(alarm_fast_app(django_asgi_app))))
PROTOCOLS: dict[str, Any] = {"http": http_application, "websocket": websocket_application}


def protocol_application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    """HTTP or websocket by the scope's type (as channels' ProtocolTypeRouter, without a
    coroutine of its own waiting as long as each socket is open)."""
    try:
        app = PROTOCOLS[scope["type"]]
    except KeyError:
        raise ValueError(f"no application for the protocol {scope['type']!r}") from None
    return app(scope, receive, send)


protocol_application._asgi_single_callable = True  # type: ignore[attr-defined]  # ASGI 3 (asgiref)
application = periodic_jobs_app(protocol_application)

# A full collection of the loaded application (~130,000 objects) took 66-70 ms here: a stall of
# every request and screen the process serves (bench/latency.py's p99 showed it, 56-76 ms, at
# the same point of every full run). What loading made lives as long as the process, so the
# collector stops scanning it; what requests make is collected as before.
gc.collect()
gc.freeze()
