"""One heartbeat per Daphne process, shared by all its live connections.

Every ``REALTIME_HEARTBEAT_SECONDS`` the hub reads the latest committed ``seq`` and each
connected user's current grants from the database — a few queries per process, not per
screen — and hands both to every connection (``LiveConsumer.tick``). The heartbeat does not
go through Redis, so it heals lost wakes, a crash between commit and wake, and a Redis
restart alike; and it is how revoked layers stop within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model

from command import metrics
from command.access import access_log_write_many, cells_area_warm
from command.eventlog import PROCESS_ORIGIN, WAKE_GROUP, events_after, latest_seq, wake_listener_set
from command.health import delivery_probe_set
from command.layers import LayerGrant, layer_access_row, layers_for_user
from command.loops import loop_local

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

HEAL_BATCH = 500  # events the heartbeat reads for every screen at once; screens further behind read their own
HEARTBEAT_SLICE = 100  # members ticked between two pauses
HEARTBEAT_SPREAD_SECONDS = 0.5  # at most, over which the slices of one heartbeat are spread


# How a connection logged in: ("token", key) or ("session", session key). A connection lives
# only as long as its login: a revoked token, a logged-out (flushed) or expired session ends it
# at the next heartbeat, as a deactivated user or a removed grant does.
Credential = tuple[str, str]


class Member(Protocol):
    user_id: int
    credential: Credential | None

    def tick(self, latest: int | None, grants: dict[str, LayerGrant] | None, reset: bool = False) -> None: ...

    async def event_wake(self, message: dict[str, Any]) -> None: ...


_LIVE_TOKENS_SQL = "SELECT key, user_id FROM authtoken_token WHERE key = ANY(%s)"
_LIVE_SESSIONS_SQL = "SELECT session_key FROM django_session WHERE session_key = ANY(%s) AND expire_date > now()"


def credentials_alive(members: Iterable[tuple[int, Credential | None]]) -> set[tuple[int, Credential]]:
    """Which of the members' logins still hold: the token exists (for that user), the session
    is stored and not expired. Two queries for the whole process, whatever the number of screens."""
    from django.db import connection

    tokens = {c[1] for _u, c in members if c is not None and c[0] == "token"}
    sessions = {c[1] for _u, c in members if c is not None and c[0] == "session"}
    alive: set[tuple[int, Credential]] = set()
    with connection.cursor() as cursor:
        if tokens:
            cursor.execute(_LIVE_TOKENS_SQL, [sorted(tokens)])
            alive.update((int(user_id), ("token", key)) for key, user_id in cursor.fetchall())
        if sessions:
            cursor.execute(_LIVE_SESSIONS_SQL, [sorted(sessions)])
            live = {row[0] for row in cursor.fetchall()}
            alive.update((u, c) for u, c in members if c is not None and c[0] == "session" and c[1] in live)
    return alive


@database_sync_to_async
def hub_state(
    members: Iterable[tuple[int, Credential | None]],
) -> tuple[int, dict[int, dict[str, LayerGrant]], set[tuple[int, Credential]]]:
    """The latest seq, the grants of each user as the policy answers right now (a deactivated
    or deleted user gets none), and the members' logins that still hold."""
    members = list(members)
    users = get_user_model().objects.filter(pk__in={user_id for user_id, _c in members})
    grants = {user.pk: layers_for_user(user) for user in users}
    for user_grants in grants.values():
        cells_area_warm(user_grants)
    return latest_seq(), grants, credentials_alive(members)


class Hub:
    """The process's members (live connections), its heartbeat, and its one subscription to
    the wake group: each wake arrives once per process and is handed to every member here."""

    def __init__(self) -> None:
        self.members: set[Member] = set()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._channel: str | None = None
        self._joined = asyncio.Event()
        self._wakes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._courier: asyncio.Task[None] | None = None
        self._seen: int | None = None  # the newest seq handed to the members (wakes and heals)
        self._unlogged: list[dict[str, Any]] = []  # access-log views a failed write left for the next heartbeat
        self._viewers: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    def viewer(self, user: Any) -> Any:
        """One user object for all the screens of a user in this process (a screen keeps its
        user for its name and the access log's rows; a user object with its permission caches
        is ~2-5 kB, once per user rather than per screen). Grants are never read from it: the
        heartbeat reads them from the database."""
        shared = self._viewers.get(user.pk)
        if shared is None:
            self._viewers[user.pk] = shared = user
        return shared

    def cursors(self) -> list[int | None]:
        """Where each screen of this process is in the event log (``/healthz``'s lag)."""
        return [getattr(member, "cursor", None) for member in list(self.members)]

    def join(self, member: Member) -> None:
        self.members.add(member)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime-hub")

    async def subscribed(self, timeout: float = 2.0) -> None:
        """Return once this process is in the wake group (a connection reads its cursor after
        this, so no later wake is missed). With Redis down it returns after ``timeout``: the
        heartbeat delivers meanwhile."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="realtime-wakes")
        if not self._joined.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._joined.wait(), timeout)

    async def _join_group(self) -> bool:
        """Join, or renew (RedisChannelLayer keeps groups in Redis: lost when it restarts)."""
        layer = get_channel_layer()
        if layer is None:
            return False
        try:
            if self._channel is None:
                self._channel = await layer.new_channel()
            await layer.group_add(WAKE_GROUP, self._channel)
        except Exception as exc:
            logger.warning("channel layer unreachable (%s); the heartbeat delivers meanwhile", exc)
            return False
        self._joined.set()
        return True

    async def _listen(self) -> None:
        layer = get_channel_layer()
        while layer is not None:
            if not await self._join_group():
                await asyncio.sleep(1)
                continue
            assert self._channel is not None
            try:
                while True:
                    message = await layer.receive(self._channel)
                    # A wake this process sent was handed to its screens when it was written.
                    if message.get("type") == "event.wake" and message.get("origin") != PROCESS_ORIGIN:
                        self.local_wake(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: join again, the heartbeat covers the gap
                logger.warning("wake subscription lost (%s); joining again in 1 s", exc)
                await asyncio.sleep(1)

    def leave(self, member: Member) -> None:
        self.members.discard(member)

    def local_wake(self, message: dict[str, Any]) -> None:
        """A wake, from the channel layer or written by this process (command.eventlog, so its
        screens need not wait for Redis; they drop the copy that comes back: a consumer never
        resends a seq). Wakes are handed on in the order they came, by one task."""
        self._wakes.put_nowait(message)
        if self._courier is None or self._courier.done():
            self._courier = asyncio.get_running_loop().create_task(self._carry(), name="realtime-wake-courier")

    async def _carry(self) -> None:
        while True:
            message = await self._wakes.get()
            try:
                await self._deliver(list(self.members), message)
                if self._seen is not None:
                    self._seen = max(self._seen, message["seq"])
            finally:
                self._wakes.task_done()

    async def _heal(self, latest: int) -> tuple[int, bool]:
        """Bring every member to ``latest`` with one read of the log for the whole process (what
        lost wakes, a crash between commit and wake or a Redis restart left out), handed out
        as a wake; a member never reads the log for what the process has seen. Returns the
        latest seq and whether the log went back (a restored database: members ahead of it
        resync). A read that wakes outran (``latest`` below what was handed out) is not a reset."""
        if self._seen is None:
            self._seen = latest
            return latest, False
        if latest < self._seen:  # wakes outran the read, or the log went back: read again
            latest = await database_sync_to_async(latest_seq)()
            if latest < self._seen:
                self._seen = latest
                return latest, True
        if latest > self._seen:
            events = await database_sync_to_async(events_after)(self._seen, upto_seq=latest, limit=HEAL_BATCH)
            if events:
                self.local_wake({"type": "event.wake", "seq": events[-1]["seq"], "events": events})
            with contextlib.suppress(TimeoutError):  # handed to every member before their heartbeat
                await asyncio.wait_for(self._wakes.join(), settings.REALTIME_HEARTBEAT_SECONDS)
        return latest, False

    async def _deliver(self, members: list[Member], message: dict[str, Any]) -> None:
        """To each member in turn (no task per screen); a member that is busy (catching up from
        the log under its lock) gets its own task, so it delays nobody else. Its lock is FIFO,
        so its wakes still apply in order."""
        loop = asyncio.get_running_loop()
        for member in members:
            lock = getattr(member, "lock", None)
            if lock is not None and lock.locked():
                task = loop.create_task(self._deliver_one(member, message))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
            else:
                await self._deliver_one(member, message)
        if members:  # handed to every screen of this process: the wake's delivery lag
            metrics.delivery_lag_observe(message["events"][-1].get("created_at"))
            metrics.events_delivered_flush()

    async def _deliver_one(self, member: Member, message: dict[str, Any]) -> None:
        try:
            await member.event_wake(message)
        except Exception:  # one screen's failure is its own; the others still get theirs
            logger.exception("wake for seq %s failed on one connection", message["seq"])

    async def _run(self) -> None:
        while self.members:
            await asyncio.sleep(settings.REALTIME_HEARTBEAT_SECONDS)
            if not self.members:
                break
            if self._channel is not None:
                await self._join_group()
            latest: int | None
            grants: dict[int, dict[str, LayerGrant]] | None
            alive: set[tuple[int, Credential]] = set()
            members = list(self.members)
            try:
                latest, grants, alive = await hub_state([(m.user_id, m.credential) for m in members])
            except Exception as exc:
                # Heartbeats go on (the clients keep acking, so nobody is taken for silent);
                # catching up and re-checking grants wait for the database.
                logger.warning("heartbeat: database not reachable (%s); retrying", exc)
                latest, grants = None, None
            reset = False
            if latest is not None:
                metrics.LATEST_SEQ.set(latest)
                try:
                    latest, reset = await self._heal(latest)
                except Exception as exc:  # the members catch up on their own
                    logger.warning("heartbeat: reading the log failed (%s)", exc)
            metrics.events_delivered_flush()
            # Most members write their heartbeat frame at once (LiveConsumer.tick); in slices,
            # spread over a part of the interval, so that a wake arriving meanwhile waits for
            # one slice, not for every screen, and the acks come back spread out too.
            pause = min(HEARTBEAT_SPREAD_SECONDS, settings.REALTIME_HEARTBEAT_SECONDS / 4) / (
                1 + len(members) // HEARTBEAT_SLICE
            )
            for i, member in enumerate(members):
                if i and i % HEARTBEAT_SLICE == 0:
                    await asyncio.sleep(pause)
                if grants is None:
                    member.tick(latest, None, reset)
                elif member.credential is not None and (member.user_id, member.credential) not in alive:
                    member.tick(latest, {}, reset)  # logged out, token revoked, session expired: closed
                else:
                    member.tick(latest, grants.get(member.user_id, {}), reset)
            await self._log_unmasked(members)

    async def _log_unmasked(self, members: list[Member]) -> None:
        """The personal-data access log of every screen of this process for this heartbeat: a
        row per screen and layer it was shown unmasked (who saw what, with the connection's
        request id), written in one statement, one thread hop, not one per screen."""
        views = [view for m in members if getattr(m, "unmasked", None) for view in m.unmasked_take()]  # type: ignore[attr-defined]
        views, self._unlogged = self._unlogged + views, []
        if not views:
            return

        def write() -> None:
            access_log_write_many([row for view in views if (row := layer_access_row(**view)) is not None])

        try:
            await database_sync_to_async(write)()
        except Exception:  # the database is away: keep them for the next heartbeat
            logger.exception("personal-data access log of %s views not written; retrying", len(views))
            self._unlogged = views


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub_for_loop() -> Hub:
    """The hub of the running event loop (Daphne runs one loop per process)."""
    return loop_local(_hubs, _hub_made)


def _hub_made(loop: asyncio.AbstractEventLoop) -> Hub:
    hub = Hub()
    wake_listener_set(loop, hub.local_wake)
    delivery_probe_set(loop, hub.cursors)
    return hub
