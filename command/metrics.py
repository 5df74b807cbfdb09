"""Prometheus metrics (``/metrics``) through ``prometheus_client``, multi-process aware.

One Daphne process keeps its metrics in memory. Several processes on one host (``make
cluster``) set ``PROMETHEUS_MULTIPROC_DIR`` to one shared folder before they start: each
process writes its values to files there (prometheus_client's multiprocess mode), and a scrape
of any one of them answers the sum over all of them (gauges of live connections count live
processes only: the cluster's supervisor marks a dead process as such). In containers, each
web container is scraped on its own (docker-compose.yml).

What is measured (names in the README, "Health and metrics"):

- websocket connections open now;
- events delivered to screens (one per event per screen);
- delivery lag: from an event's commit to the moment the process has handed it to every one
  of its screens (observed once per wake per process, not per screen);
- HTTP request latency by route (the URL pattern, not the path: bounded label values), taken
  around the whole ASGI application, so the lean paths in front of Django count too.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as PROCESS_REGISTRY

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

WEBSOCKET_CONNECTIONS = Gauge(
    "gridcommand_websocket_connections",
    "Websocket connections (/ws/live/) open now.",
    multiprocess_mode="livesum",
)
EVENTS_DELIVERED = Counter(
    "gridcommand_events_delivered",
    "Events sent to screens (one per event per screen).",
)
DELIVERY_LAG = Histogram(
    "gridcommand_event_delivery_lag_seconds",
    "From an event's commit until its process has handed it to every one of its screens.",
    buckets=LAG_BUCKETS,
)
LATEST_SEQ = Gauge(
    "gridcommand_event_log_latest_seq",
    "The latest committed seq of the event log, as the realtime heartbeat last read it.",
    multiprocess_mode="max",
)
REQUEST_LATENCY = Histogram(
    "gridcommand_http_request_duration_seconds",
    "HTTP request latency, from the request's start to the end of its answer, by route.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)


class _Delivered:
    """Screens count what they send in a plain integer (a consumer runs on the event loop and
    sends thousands of events a second); the hub adds it to the counter once per wake and per
    heartbeat."""

    count = 0
    flushed = 0


delivered = _Delivered()


def events_delivered_flush() -> None:
    pending = delivered.count - delivered.flushed
    if pending:
        delivered.flushed = delivered.count
        EVENTS_DELIVERED.inc(pending)


def delivery_lag_observe(created_at: str) -> None:
    """The lag of an event (its ``created_at`` as the wake carries it) delivered just now."""
    try:
        lag = time.time() - datetime.fromisoformat(created_at).timestamp()
    except (TypeError, ValueError):
        return
    DELIVERY_LAG.observe(max(lag, 0.0))


# --- request latency by route ---------------------------------------------------------------

ROUTE_CACHE_SIZE = 4096
_routes: OrderedDict[str, str] = OrderedDict()


def route_of(path: str) -> str:
    """The URL pattern that serves ``path`` (``maps/tiles/<str:layer>/<int:z>/...``), so a label
    has as many values as there are routes; ``unmatched`` for a 404's path."""
    found = _routes.get(path)
    if found is not None:
        _routes.move_to_end(path)
        return found
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
        route = "/" + (match.route or match.view_name or "")
    except Resolver404:
        route = "/static/" if path.startswith("/static/") else "unmatched"
    _routes[path] = route
    if len(_routes) > ROUTE_CACHE_SIZE:
        _routes.popitem(last=False)
    return route


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


def request_metrics_app(inner: ASGIApp) -> ASGIApp:
    """``inner`` (the whole HTTP application), timed per request: from the request's start to
    the last byte of its answer. The route is resolved after the answer has gone."""

    async def app(
        scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[..., Awaitable[None]]
    ) -> None:
        start = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await inner(scope, receive, timed_send)
        finally:
            elapsed = time.perf_counter() - start
            REQUEST_LATENCY.labels(
                route_of(scope.get("path", "")), scope.get("method", ""), f"{status // 100}xx"
            ).observe(elapsed)

    return app


# --- the /metrics answer -------------------------------------------------------------------


def metrics_text() -> bytes:
    """Every process's metrics (multiprocess mode) or this process's, in Prometheus' text format."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(PROCESS_REGISTRY)


def process_dead(pid: int) -> None:
    """Forget a dead process's live gauges (called by the supervisor of ``make cluster``)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


def address_allowed(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
