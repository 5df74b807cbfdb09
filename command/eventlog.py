"""The event log: append inside the writing transaction, wake the screens after commit.

``seq`` is allocated from the single ``EventCounter`` row with ``UPDATE ... RETURNING``, in the
statement that inserts the event; the row lock is held until the transaction ends, so
transactions that write events commit in ``seq`` order and a reader never sees seq N+1 before N
(tests/command/test_seq_order.py proves it with concurrent writers). Services append their
events as their last step, so the lock is held only for the tail of the transaction.

After commit the events go, as a "wake", to the channel-layer group ``WAKE_GROUP`` (sent by
one thread per process, ``WakeSender``, so the writer never waits for Redis). Every event of
every layer goes to that one group, so a consumer that sees seq N+2 after N knows that N+1 was
lost (not merely of another layer). The wake carries the events themselves so the common case
costs subscribers no query. The wake is a hint: if it is lost, the consumers' heartbeat and gap
detection read the log with ``events_after`` (realtime/).

Retention: clients resume from the log for ``EVENT_RETENTION_HOURS``; ``events_prune`` deletes
what is older (``manage.py events_prune``), and ``event_resumable`` tells a consumer whether a
client's ``since`` can still be served from the log or needs a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, model_validator

from command.event_payloads import payload_model, payload_validate
from command.layers import mask_properties
from command.loops import loop_local
from command.models import Event

logger = logging.getLogger(__name__)

WAKE_GROUP = "gc.events"

EventKind = Literal[
    "report.created",
    "incident.created",
    "incident.updated",
    "incident.overdue",
    "alarm.acknowledged",
    "worker.moved",
    "worker.updated",
    "camera.updated",
    "building.updated",
    "layer.reloaded",
    "cell.updated",
    "road.updated",
    "household.updated",
    "person.updated",
    "business.updated",
    "campaign.updated",
    "campaign.progress",
    "campaign_target.updated",
    "alarm_device.updated",
    "request.created",
    "request.updated",
    "record.deleted",
    "reference.updated",
    "tip.created",
    "tip.updated",
    "hotspot.raised",
    "notice.published",
    "points.awarded",
    "grant.updated",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventRecord(_Strict):
    """An event as delivered: the schema every emitted event must satisfy (its payload: the
    schema of its kind, command.event_payloads, typed per layer from the layer declaration)."""

    seq: int
    kind: EventKind
    layer: str
    object_id: str
    actor_id: int | None
    payload: dict[str, Any]
    created_at: datetime

    @model_validator(mode="after")
    def _payload_fits_its_kind(self) -> EventRecord:
        payload_model(self.kind, self.layer).model_validate(self.payload)
        return self


def event_record(event: Event) -> dict[str, Any]:
    """The wire form of one event (also what the wake carries)."""
    return {
        "seq": event.seq,
        "kind": event.kind,
        "layer": event.layer,
        "object_id": event.object_id,
        "actor_id": event.actor_id,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


# One round trip: take the next seq from the counter row (its row lock is held until commit, so
# commit order is seq order) and insert the event with it. An upsert, so a flushed table
# (transactional tests) starts again at 1. (A report's two events are appended in the same way
# inside gc_report_submit, command/services/report_function.py.)
def seq_take_sql(count: int, indent: str = "  ") -> str:
    """The one statement that takes the next ``count`` seqs from the counter row (its row lock is
    held to commit, so commit order is seq order; an upsert, so a flushed table starts again at 1).
    ``event_append`` and the frozen SQL functions (report, alarm) all use this text, followed by
    their own ``RETURNING last_seq``."""
    assert isinstance(count, int) and count > 0 and not indent.strip()
    return (
        f"INSERT INTO command_eventcounter (id, last_seq) VALUES (1, {count})\n"  # noqa: S608 - an int
        f"{indent}ON CONFLICT (id) DO UPDATE SET last_seq = command_eventcounter.last_seq + {count}"
    )


_APPEND_SQL = f"""
WITH counter AS (
  {seq_take_sql(1)}
  RETURNING last_seq
)
INSERT INTO command_event (seq, kind, layer, object_id, actor_id, payload, created_at)
SELECT last_seq, %s, %s, %s, %s, %s::jsonb, %s FROM counter
RETURNING seq
"""  # noqa: S608 - built from a constant statement


def event_append(
    *, kind: EventKind, layer: str, object_id: Any, actor_id: int | None, payload: dict[str, Any]
) -> Event:
    """Append one event inside the current transaction; wake the screens after commit. Personal
    data is masked here, before it is written (command.layers.mask_properties): the log is
    delivered to many screens and kept for EVENT_RETENTION_HOURS, and every screen shows it
    masked anyway; the unmasked value stays in its own table, behind the unmask step."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_append must run inside the writing transaction (transaction.atomic)")
    if isinstance(payload, dict) and isinstance(payload.get("properties"), dict):
        payload = {**payload, "properties": mask_properties(layer, payload["properties"])}
    record = EventRecord.model_validate(
        {
            "seq": 0,
            "kind": kind,
            "layer": layer,
            "object_id": str(object_id),
            "actor_id": actor_id,
            "payload": payload,
            "created_at": timezone.now(),
        }
    )
    stored_payload = payload_validate(kind, layer, payload)
    with connection.cursor() as cursor:
        cursor.execute(
            _APPEND_SQL,
            [kind, layer, record.object_id, actor_id, json.dumps(stored_payload), record.created_at],
        )
        row = cursor.fetchone()
    assert row is not None
    event = Event(
        seq=int(row[0]),
        kind=kind,
        layer=layer,
        object_id=record.object_id,
        actor_id=actor_id,
        payload=stored_payload,
        created_at=record.created_at,
    )
    event._state.adding = False
    event._state.db = connection.alias
    wire = event_record(event)
    transaction.on_commit(lambda: wakes_send([wire]))
    return event


def latest_seq() -> int:
    """The seq of the last committed event (0 before the first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_seq FROM command_eventcounter WHERE id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def events_after(
    after_seq: int, *, upto_seq: int | None = None, layers: Iterable[str] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Committed events with ``after_seq < seq <= upto_seq`` in seq order, in wire form, at most
    ``limit``; only those of ``layers`` when given. Every event up to the latest committed seq
    is visible (commit order is seq order), so a reader that asks up to a seq it was told about
    gets every event before it."""
    query = Event.objects.filter(seq__gt=after_seq).order_by("seq")
    if upto_seq is not None:
        query = query.filter(seq__lte=upto_seq)
    if layers is not None:
        query = query.filter(layer__in=list(layers))
    return [event_record(event) for event in query[:limit]]


def retention_cutoff() -> datetime:
    return timezone.now() - timedelta(hours=settings.EVENT_RETENTION_HOURS)


def event_resumable(since: int, *, latest: int) -> bool:
    """Can a client that holds every event up to ``since`` be brought up to ``latest`` from the
    log? Not when ``since`` is ahead of the log (another database, a restored backup), nor
    when the next event is gone or older than the retention window."""
    if since > latest:
        return False
    if since == latest:
        return True
    created_at = Event.objects.filter(seq=since + 1).values_list("created_at", flat=True).first()
    return created_at is not None and created_at >= retention_cutoff()


def events_prune(*, before: datetime | None = None) -> int:
    """Delete events older than the retention window (or ``before``); returns how many.
    Clients whose ``since`` falls in the pruned part get ``resync`` and reload a snapshot."""
    cutoff = before or retention_cutoff()
    deleted, _ = Event.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def wakes_send(wires: list[dict[str, Any]]) -> None:
    """Tell every screen that ``wires`` (the events of one transaction, in seq order) committed.
    Called after commit; never blocks nor raises (a lost wake is healed by the heartbeat, the
    write has committed). They leave in one wake message: to the screens of this process
    directly (``wake_listener_set``), and to every process through the channel layer."""
    if not wires:
        return
    _local_wake({"type": "event.wake", "seq": wires[-1]["seq"], "events": wires})
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a thread (a sync view, a command): the process's sender thread sends
        _wake_sender().put_many(wires)
    else:  # a writer on an event loop (the lean paths): sent from that loop, no thread hop
        _loop_sender().put_nowait(wires)


# Screens on an event loop of this process take wakes without the Redis round trip (~1-2 ms):
# realtime's hub registers one listener per loop. The same wake still goes through the channel
# layer for the other processes; a consumer never sends a seq it has sent, so the copy that
# comes back through Redis is dropped, and a listener that misses a wake is healed as any lost
# wake is (the Redis copy, the heartbeat).
_local_listeners: dict[asyncio.AbstractEventLoop, Callable[[dict[str, Any]], None]] = {}
# Marks the wakes this process sent, so its listeners can drop the copy that comes back.
PROCESS_ORIGIN = uuid.uuid4().hex


def wake_listener_set(loop: asyncio.AbstractEventLoop, listener: Callable[[dict[str, Any]], None]) -> None:
    _local_listeners[loop] = listener


def _local_wake(message: dict[str, Any]) -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, listener in list(_local_listeners.items()):
        if loop.is_closed():
            _local_listeners.pop(loop, None)
        elif loop is running:
            listener(message)
        else:  # a writer in another thread (a sync view, a management command in-process)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(listener, message)


MAX_WAKE_EVENTS = 100  # events per wake message; larger batches are split


async def _send_wake(wires: list[dict[str, Any]]) -> None:
    """One wake message for ``wires`` (in seq order) to the channel-layer group; never raises."""
    from channels.layers import get_channel_layer

    message = {"type": "event.wake", "seq": wires[-1]["seq"], "events": wires, "origin": PROCESS_ORIGIN}
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            await layer.group_send(WAKE_GROUP, message)
        except Exception:
            # A pooled connection that a Redis restart broke fails once; a new one may not.
            await layer.group_send(WAKE_GROUP, message)
    except Exception:  # Redis down: the heartbeat delivers these from the log
        logger.warning(
            "wake for seq %s-%s not sent; the heartbeat will deliver it",
            wires[0]["seq"],
            wires[-1]["seq"],
            exc_info=True,
        )


class WakeSender:
    """One thread per process that sends the wakes, with its own event loop and Redis connection.

    The writing thread (a request, a management command) only appends to a queue after commit,
    so it never waits for Redis, nor for the Daphne event loop that serves the screens. Events
    that commit close together (the two events of a report) leave in one wake message, and each
    screen handles them in one dispatch.
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.pending = 0
        self.idle = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="gc-wake-sender", daemon=True)
        self.thread.start()

    def put_many(self, wires: list[dict[str, Any]]) -> None:
        with self.idle:
            self.pending += len(wires)
        for wire in wires:
            self.queue.put(wire)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued wake has been sent (or given up on)."""
        with self.idle:
            return self.idle.wait_for(lambda: self.pending == 0, timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            first = self.queue.get()
            if first is None:
                break
            wires = [first]
            while len(wires) < MAX_WAKE_EVENTS:
                try:
                    wire = self.queue.get_nowait()
                except queue.Empty:
                    break
                if wire is None:
                    self.queue.put(None)
                    break
                wires.append(wire)
            loop.run_until_complete(self._send(sorted(wires, key=lambda w: w["seq"])))
            with self.idle:
                self.pending -= len(wires)
                self.idle.notify_all()
        loop.close()

    async def _send(self, wires: list[dict[str, Any]]) -> None:
        await _send_wake(wires)

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued, then end the thread (at interpreter exit)."""
        self.queue.put(None)
        self.thread.join(timeout)


class _LoopSender:
    """The wakes of writers on one event loop, sent by one task of that loop in commit order
    (what WakeSender does for threads, without the thread hop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.task = loop.create_task(self._run(), name="gc-wake-sender")

    def put_nowait(self, wires: list[dict[str, Any]]) -> None:
        self.queue.put_nowait(wires)

    async def _run(self) -> None:
        while True:
            wires = list(await self.queue.get())
            while len(wires) < MAX_WAKE_EVENTS and not self.queue.empty():
                wires.extend(self.queue.get_nowait())
            await _send_wake(sorted(wires, key=lambda w: w["seq"]))


_loop_senders: dict[asyncio.AbstractEventLoop, _LoopSender] = {}


def _loop_sender() -> _LoopSender:
    return loop_local(_loop_senders, _LoopSender, usable=lambda sender: not sender.task.done())


def wakes_flush(timeout: float = 5.0) -> bool:
    """Block until this process has sent every wake queued so far (tests, management commands)."""
    return _sender.flush(timeout) if _sender is not None else True


_sender: WakeSender | None = None
_sender_lock = threading.Lock()


def _wake_sender() -> WakeSender:
    global _sender
    if _sender is None or not _sender.thread.is_alive():
        with _sender_lock:
            if _sender is None or not _sender.thread.is_alive():
                _sender = WakeSender()
                atexit.register(_sender.stop)
    return _sender
