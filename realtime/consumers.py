"""``/ws/live/``: every committed event reaches every permitted screen once, in order.

Each connection keeps ``cursor``, the last seq it has dealt with (delivered, or skipped as not
meant for this subscriber). Events reach it three ways, all through ``_advance``:

- a **wake** from the event log after commit (one channel-layer group for every layer, so the
  wake for ``cursor + 1`` is recognised whatever its layer): delivered straight from the wake,
  no query; a wake further ahead means a lost wake, and the gap is read from the log first;
- the process **heartbeat** (``realtime.hub``) with the latest committed seq: anything still
  missing is read from the log (a lost wake, a crash between commit and wake, Redis down);
- **resume**: ``?since=N`` replays the log after N, re-checked against today's grants.

Each event is filtered by the subscriber's layers (∩ the grants of ``command.layers``), by its
bbox, and redacted by ``command.layers.redact`` before it is sent. Duplicates are impossible:
nothing at or below ``cursor`` is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import OrderedDict
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from pydantic import ValidationError

from command import metrics
from command.access import cells_area_warm, feature_in_cells, new_request_id, request_id_var
from command.eventlog import event_resumable, events_after, latest_seq
from command.layers import LayerGrant, layer_access_log, layers_for_user, redact
from realtime import messages
from realtime.auth import CREDENTIAL, SUBPROTOCOL, live_login
from realtime.geo import geometry_in_bbox
from realtime.hub import hub_for_loop
from realtime.wire import (
    Writer,
    daphne_protocol,
    direct_reader,
    direct_writer,
    internals_known,
    socket_trim,
    text_frame,
)

logger = logging.getLogger(__name__)

REPLAY_BATCH = 500
OPEN_SCOPE: dict[str, Any] = {"type": "websocket", "path": "/ws/live/"}  # what an open socket keeps of its scope
ENCODED_CACHE_SIZE = 1024


class Frame(NamedTuple):
    """A server message: its JSON text (for sends through ASGI) and its websocket frame."""

    text: str
    data: bytes


def frame_of(message: dict[str, Any]) -> Frame:
    text = _dumps(message)
    return Frame(text, text_frame(text))


# (seq, created_at, fields granted) -> the event message as sent: one encoding, one frame per
# view of an event, the same bytes for every screen with that view.
_encoded: OrderedDict[tuple[int, str, str], Frame] = OrderedDict()


@functools.lru_cache(maxsize=64)
def heartbeat_frame(seq: int) -> Frame:
    """The heartbeat at ``seq``: the same frame for every screen that is there."""
    return frame_of({"type": "heartbeat", "seq": seq})


@database_sync_to_async
def _read_events(after: int, upto: int, layers: list[str]) -> list[dict[str, Any]]:
    return events_after(after, upto_seq=upto, layers=layers, limit=REPLAY_BATCH)


@database_sync_to_async
def _resume_point(since: int | None) -> tuple[int, bool]:
    latest = latest_seq()
    return latest, since is not None and event_resumable(since, latest=latest)


def _grants_loaded(user: Any) -> dict[str, LayerGrant]:
    grants = layers_for_user(user)
    cells_area_warm(grants)  # areas of grants narrowed to cells, for the event filter
    return grants


_grants_for = database_sync_to_async(_grants_loaded)


class Overflow(Exception):
    """The client fell too far behind; the connection is closing."""


ERROR_DETAIL_CHARS = 300


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class LiveConsumer(AsyncWebsocketConsumer):
    scope: dict[str, Any]
    base_send: Any

    # --- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> None:
        await hub_for_loop().subscribed()  # before the cursor is read: no wake after it is missed
        self.request_id = new_request_id()  # this connection's id in the access log
        request_id_var.set(self.request_id)
        self.user = self.scope["user"]
        self.user_id: int = self.user.pk
        self.credential: tuple[str, str] | None = self.scope.get(CREDENTIAL)
        self.cursor: int | None = None  # set by the first subscribe
        self.requested: list[str] = []
        self.bbox: messages.Bbox | None = None
        self.grants: dict[str, LayerGrant] = await _grants_for(self.user)
        self.user = hub_for_loop().viewer(self.user)  # one object per user for its screens
        self.layers: list[str] = []  # requested ∩ granted
        self.lock = asyncio.Lock()
        self.closing = False
        self.write: Writer | None = None  # set once accepted (realtime.wire)
        self.sent_bytes = 0
        self.acked_bytes = 0
        self.max_unacked: int = settings.REALTIME_MAX_UNACKED_BYTES
        self.marks: list[tuple[int, int]] = []  # (seq, sent_bytes after it), for acks (a deque is 760 B)
        self.last_heard = time.monotonic()
        self.tick_task: asyncio.Task[None] | None = None
        # Unmasked personal data sent since the last heartbeat: layer -> (grant, object ids).
        self.unmasked: dict[str, tuple[LayerGrant, list[str]]] = {}
        since = self._since_param()
        self.since: int | None = None
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in (self.scope.get("subprotocols") or []) else None)
        self.scope = OPEN_SCOPE  # read above: the headers and the rest need not stay as long as the socket
        protocol = daphne_protocol(self.base_send)
        if protocol is not None:  # served by Daphne: written directly, trimmed and read directly
            self.write = direct_writer(protocol)
            if internals_known(protocol):
                socket_trim(protocol)
                direct_reader(protocol, self._direct_text)
        metrics.WEBSOCKET_CONNECTIONS.inc()
        self.counted = True
        if isinstance(since, str):
            await self._error("bad_request", "since must be a whole number >= 0")
            await self._close(messages.CLOSE_BAD_REQUEST)
            return
        self.since = since
        hub_for_loop().join(self)
        await self._send(
            {
                "type": "hello",
                "user": self.user.get_username(),
                "layers": sorted(self.grants),
                "seq": await database_sync_to_async(latest_seq)(),
                "heartbeat": settings.REALTIME_HEARTBEAT_SECONDS,
                "since": since,
            }
        )

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if getattr(self, "counted", False):
            self.counted = False
            metrics.WEBSOCKET_CONNECTIONS.dec()
        hub_for_loop().leave(self)
        await self._log_unmasked()
        tick_task = getattr(self, "tick_task", None)
        if tick_task is not None:
            tick_task.cancel()

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> Any:
        """As channels' ``as_asgi``, a plain function: the consumer's coroutine is the socket's
        only one (channels' wraps it in a coroutine of its own)."""

        def app(scope: Any, receive: Any, send: Any) -> Any:
            return cls(**initkwargs)(scope, receive, send)

        app._asgi_single_callable = True  # type: ignore[attr-defined]  # ASGI 3 (asgiref)
        app.consumer_class = cls  # type: ignore[attr-defined]
        app.consumer_initkwargs = initkwargs  # type: ignore[attr-defined]
        return app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # As channels' AsyncConsumer.__call__, without a channel-layer channel per connection:
        # wakes reach this consumer from its process's hub (one subscription per process), so a
        # wake costs Redis one message per process, not one per screen. With one source of
        # messages, a plain loop: channels' await_many_dispatch makes a task per message.
        # The login (realtime.auth) is the first step here, not a middleware's coroutine.
        served = await live_login(scope, receive, send)
        del scope  # this frame lives as long as the socket: it keeps no scope (connect drops it)
        if served is None:
            return
        self.scope = served
        served = None
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            while True:
                await self.dispatch(await receive())

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch closes stale DB connections (a thread hop) before every message;
        # this consumer touches the database only through database_sync_to_async, which does
        # that itself, so a wake costs no thread hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def _since_param(self) -> int | str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin1")).get("since")
        if not values:
            return None
        try:
            since = int(values[-1])
        except ValueError:
            return "bad"
        return since if since >= 0 else "bad"

    # --- client messages ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_heard = time.monotonic()
        if text_data is None:
            await self._error("bad_request", "messages are JSON text frames")
            return
        limit = settings.REALTIME_MAX_CLIENT_MESSAGE_BYTES
        if len(text_data) > limit:  # characters >= bytes / 4: checked before encoding anything
            await self._error("too_large", f"a client message is at most {limit} bytes")
            return
        try:
            message = messages.client_message_adapter.validate_json(text_data)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            await self._error("bad_request", errors or "invalid message")
            return
        if isinstance(message, messages.Ack):
            self._ack(message.seq)
        else:
            await self._subscribe(message)

    def _ack(self, seq: int) -> None:
        marks = self.marks
        done = 0
        while done < len(marks) and marks[done][0] <= seq:
            done += 1
        if done:
            self.acked_bytes = marks[done - 1][1]
            del marks[:done]

    def _direct_text(self, text: str) -> bool:
        """A message read on the reactor's turn (realtime.wire.direct_reader): an ack is dealt
        with here (a screen acks every heartbeat: most of what an idle socket hears); anything
        else, valid or not, answers False and goes through ``receive``."""
        if len(text) > settings.REALTIME_MAX_CLIENT_MESSAGE_BYTES:
            return False
        try:
            message = messages.client_message_adapter.validate_json(text)
        except ValidationError:
            return False
        if not isinstance(message, messages.Ack):
            return False
        self.last_heard = time.monotonic()
        self._ack(message.seq)
        return True

    async def _subscribe(self, message: messages.Subscribe) -> None:
        async with self.lock:
            self.requested = message.layers
            self.bbox = message.bbox
            self.layers = [name for name in self.requested if name in self.grants]
            denied = [name for name in self.requested if name not in self.grants]
            if denied:
                logger.warning(
                    "websocket %s: user %s refused layers %s", self.request_id, self.user_id, ",".join(denied)[:200]
                )
            resync: str | None = None
            catch_up_to: int | None = None
            if self.cursor is None:
                latest, resumable = await _resume_point(self.since)
                if self.since is None:
                    resync = "initial"
                elif self.since > latest:
                    resync = "ahead"
                elif latest - self.since > settings.REALTIME_MAX_REPLAY:
                    resync = "too_far"
                elif not resumable:
                    resync = "retention"
                self.cursor, catch_up_to = (latest, None) if resync else (self.since, latest)
            try:
                await self._send(
                    {
                        "type": "subscribed",
                        "layers": self.layers,
                        "denied": [name for name in self.requested if name not in self.grants],
                        "bbox": list(self.bbox) if self.bbox else None,
                        "seq": self.cursor,
                    }
                )
                if resync:
                    await self._send({"type": "resync", "seq": self.cursor, "reason": resync})
                elif catch_up_to is not None:
                    await self._catch_up(catch_up_to)
            except Overflow:
                return

    # --- events ---------------------------------------------------------------------------------

    async def event_wake(self, message: dict[str, Any]) -> None:
        """Committed events, in seq order (from ``command.eventlog.WakeSender``)."""
        if self.cursor is None or message["seq"] <= self.cursor or self.closing:
            return
        async with self.lock:
            events: list[dict[str, Any]] = message["events"]
            if self.cursor is None or events[-1]["seq"] <= self.cursor:
                return
            try:
                fresh = [event for event in events if event["seq"] > self.cursor]
                if all(event["seq"] == self.cursor + 1 + i for i, event in enumerate(fresh)):
                    await self._advance(fresh)
                else:  # a lost wake, or events of another process in between: read the log
                    await self._catch_up(events[-1]["seq"])
            except Overflow:
                return
            except DatabaseError as exc:  # the cursor stays: the next wake or heartbeat retries
                logger.warning("catching up from the log failed (%s)", exc)

    def tick(self, latest: int | None, grants: dict[str, LayerGrant] | None, reset: bool = False) -> None:
        """The hub's heartbeat (see realtime.hub), after the hub has handed out every event up
        to ``latest``; ``reset``: the log went back (a restored database). ``None``: the
        database could not be read this time; only the heartbeat goes out. The common case
        (nothing to catch up, the same layers) is done here and now: the heartbeat frame is
        written to the socket, no task; anything else runs as a task beside the wakes, under
        the same lock. A cursor past ``latest`` without ``reset`` had wakes after the hub's read."""
        if self.tick_task is not None and not self.tick_task.done():
            return
        if not reset and self._tick_now(latest, grants):
            return
        self.tick_task = asyncio.get_running_loop().create_task(self._tick(latest, grants, reset))

    def _tick_now(self, latest: int | None, grants: dict[str, LayerGrant] | None) -> bool:
        if self.closing or self.lock.locked() or self.cursor is None:
            return False
        if latest is not None and latest > self.cursor:
            return False
        if time.monotonic() - self.last_heard > settings.REALTIME_CLIENT_TIMEOUT_SECONDS:
            return False
        if grants is not None:
            if not grants or [name for name in self.requested if name in grants] != self.layers:
                return False
            self.grants = grants
        return self._put(heartbeat_frame(self.cursor), self.cursor)

    async def _tick(self, latest: int | None, grants: dict[str, LayerGrant] | None, reset: bool) -> None:
        if self.closing:
            return
        if time.monotonic() - self.last_heard > settings.REALTIME_CLIENT_TIMEOUT_SECONDS:
            await self._close(messages.CLOSE_TIMEOUT)
            return
        if grants is not None and not grants:
            await self._close(messages.CLOSE_FORBIDDEN)
            return
        async with self.lock:
            try:
                if grants is not None:
                    await self._regrant(grants)
                if self.cursor is None:
                    return
                if reset and latest is not None and latest < self.cursor:
                    # The log went back (a restored database, checked by the hub): start over.
                    self.cursor = latest
                    await self._send({"type": "resync", "seq": latest, "reason": "reset"})
                if latest is not None and latest > self.cursor:
                    await self._catch_up(latest)
                await self._send_frame(heartbeat_frame(self.cursor), self.cursor)
            except Overflow:
                return
            except DatabaseError as exc:  # the cursor stays: the next heartbeat retries
                logger.warning("heartbeat: catching up from the log failed (%s)", exc)

    async def _regrant(self, grants: dict[str, LayerGrant]) -> None:
        self.grants = grants
        layers = [name for name in self.requested if name in grants]
        if layers == self.layers:
            return
        revoked = [name for name in self.layers if name not in layers]
        granted = [name for name in layers if name not in self.layers]
        self.layers = layers
        await self._send({"type": "access", "layers": layers, "revoked": revoked, "granted": granted})
        if granted and self.cursor is not None:
            await self._send({"type": "resync", "seq": self.cursor, "reason": "granted"})

    async def _catch_up(self, upto: int) -> None:
        """Deliver everything after ``cursor`` up to ``upto`` from the log, in batches."""
        assert self.cursor is not None
        while self.cursor < upto and not self.closing:
            if not self.layers:
                self.cursor = upto
                break
            batch = await _read_events(self.cursor, upto, self.layers)
            await self._advance(batch)
            if len(batch) < REPLAY_BATCH:
                self.cursor = upto  # the rest are events of layers not delivered here

    async def _advance(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            assert self.cursor is not None
            if event["seq"] <= self.cursor:
                continue
            self.cursor = event["seq"]
            frame = self._event_frame(event)
            if frame is not None:
                await self._send_frame(frame, event["seq"])
                metrics.delivered.count += 1
                grant = self.grants[event["layer"]]
                if grant.personal_data and event["kind"] != "layer.reloaded":
                    self.unmasked.setdefault(event["layer"], (grant, []))[1].append(event["object_id"])

    def unmasked_take(self) -> list[dict[str, Any]]:
        """What this screen was shown unmasked since the last heartbeat, as the arguments of
        its access-log rows (``command.layers.layer_access_row``: one per layer, with this
        connection's request id); the hub writes the rows of all its screens in one statement."""
        batches, self.unmasked = self.unmasked, {}
        return [
            {
                "user": self.user,
                "channel": "websocket",
                "grant": grant,
                "object_ids": object_ids,
                "request_id": self.request_id,
            }
            for grant, object_ids in batches.values()
        ]

    async def _log_unmasked(self) -> None:
        """Write what this screen was shown unmasked and not yet logged (when it closes)."""
        if not getattr(self, "unmasked", None):
            return  # nothing shown, or the connection never got that far
        batches, self.unmasked = self.unmasked, {}

        def write() -> None:
            for grant, object_ids in batches.values():
                layer_access_log(user=self.user, channel="websocket", grant=grant, object_ids=object_ids)

        try:
            await database_sync_to_async(write)()
        except Exception:  # the database is away: keep them for the next heartbeat
            logger.exception("personal-data access log not written for user %s; retrying", self.user_id)
            for layer, (grant, object_ids) in batches.items():
                self.unmasked.setdefault(layer, (grant, []))[1][:0] = object_ids

    def _event_frame(self, event: dict[str, Any]) -> Frame | None:
        """The event as this subscriber may see it, encoded; None when it is not for them.
        Screens with the same grant share one encoding and one frame (cached per process)."""
        layer = event["layer"]
        grant = self.grants.get(layer)
        if grant is None or layer not in self.layers:
            return None
        payload = event["payload"]
        if self.bbox is not None and not geometry_in_bbox(payload.get("geometry"), self.bbox):
            return None
        if event["kind"] not in ("layer.reloaded", "record.deleted") and not feature_in_cells(
            layer, payload, grant.cells
        ):
            return None  # outside the grid cells this viewer is granted
        key = (event["seq"], event["created_at"], grant.profile)
        frame = _encoded.get(key)
        if frame is None:
            if event["kind"] == "layer.reloaded":
                properties = payload["properties"]  # counts only
            else:
                properties = redact(layer, payload["properties"], grant) or {}
            frame = frame_of(
                {
                    "type": "event",
                    "seq": event["seq"],
                    "kind": event["kind"],
                    "layer": layer,
                    "object_id": event["object_id"],
                    "payload": {"id": payload["id"], "geometry": payload.get("geometry"), "properties": properties},
                    "created_at": event["created_at"],
                }
            )
            _encoded[key] = frame
            if len(_encoded) > ENCODED_CACHE_SIZE:
                _encoded.popitem(last=False)
        return frame

    # --- sending --------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        seq = message.get("seq") if message["type"] in {"heartbeat", "subscribed", "resync"} else None
        await self._send_frame(frame_of(message), seq)

    def _put(self, frame: Frame, seq: int | None) -> bool:
        """Write ``frame`` straight to the socket (realtime.wire) and count it; False when that
        cannot be done here (no direct writer, the socket is not plainly open, or the client
        would fall too far behind: ``_send_frame`` deals with those)."""
        if self.write is None or self.sent_bytes + len(frame.data) - self.acked_bytes > self.max_unacked:
            return False
        if not self.write(frame.data):
            return False
        self._count(frame, seq)
        return True

    def _count(self, frame: Frame, seq: int | None) -> None:
        self.sent_bytes += len(frame.data)
        if seq is not None:
            self.marks.append((seq, self.sent_bytes))

    async def _send_frame(self, frame: Frame, seq: int | None) -> None:
        """Send, and keep what the client has not acknowledged bounded."""
        if self.closing:
            raise Overflow
        if self._put(frame, seq):
            return
        await self.send(text_data=frame.text)
        self._count(frame, seq)
        if self.sent_bytes - self.acked_bytes > self.max_unacked:
            # The client does not keep up (or does not ack): bound what waits in buffers for it.
            await self.send(text_data=_dumps({"type": "resync", "seq": self.cursor or 0, "reason": "slow"}))
            await self._close(messages.CLOSE_SLOW)
            raise Overflow

    async def _error(self, code: str, detail: str) -> None:
        # The detail may quote the client's input (a field name): never echo more than a line.
        if len(detail) > ERROR_DETAIL_CHARS:
            detail = detail[: ERROR_DETAIL_CHARS - 1] + "…"
        await self.send(text_data=_dumps({"type": "error", "code": code, "detail": detail}))

    async def _close(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            hub_for_loop().leave(self)
            await self.close(code=code)
