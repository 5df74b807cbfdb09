"""One heartbeat per Daphne process, shared by all its live connections.

Every ``REALTIME_HEARTBEAT_SECONDS`` the hub reads the latest committed ``seq`` and each
connected user's current grants from the database — a few queries per process, not per
screen — and hands both to every connection (``LiveConsumer.tick``). The heartbeat does not
go through Redis, so it heals lost wakes, a crash between commit and wake, and a Redis
restart alike; and it is how revoked layers stop within seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from command.eventlog import latest_seq, wake_listener_set
from command.layers import LayerGrant, layers_for_user

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)


class Member(Protocol):
    user_id: int

    def tick(self, latest: int | None, grants: dict[str, LayerGrant] | None) -> None: ...

    async def event_wake(self, message: dict[str, Any]) -> None: ...


@database_sync_to_async
def hub_state(user_ids: Iterable[int]) -> tuple[int, dict[int, dict[str, LayerGrant]]]:
    """The latest seq, and the grants of each user as the policy answers right now (a
    deactivated or deleted user gets none)."""
    users = get_user_model().objects.filter(pk__in=set(user_ids))
    return latest_seq(), {user.pk: layers_for_user(user) for user in users}


class Hub:
    def __init__(self) -> None:
        self.members: set[Member] = set()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def join(self, member: Member) -> None:
        self.members.add(member)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime-hub")

    def leave(self, member: Member) -> None:
        self.members.discard(member)

    def local_wake(self, message: dict[str, Any]) -> None:
        """A wake written by this process (command.eventlog): straight to its screens, which
        drop the copy that comes back through the channel layer (they never resend a seq)."""
        task = asyncio.get_running_loop().create_task(self._deliver(list(self.members), message))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, members: list[Member], message: dict[str, Any]) -> None:
        for member in members:
            try:
                await member.event_wake(message)
            except Exception:  # one screen's failure is its own; the others still get theirs
                logger.exception("local wake for seq %s failed on one connection", message["seq"])

    async def _run(self) -> None:
        while self.members:
            await asyncio.sleep(settings.REALTIME_HEARTBEAT_SECONDS)
            if not self.members:
                break
            latest: int | None
            grants: dict[int, dict[str, LayerGrant]] | None
            try:
                latest, grants = await hub_state([m.user_id for m in self.members])
            except Exception as exc:
                # Heartbeats go on (the clients keep acking, so nobody is taken for silent);
                # catching up and re-checking grants wait for the database.
                logger.warning("heartbeat: database not reachable (%s); retrying", exc)
                latest, grants = None, None
            for member in list(self.members):
                member.tick(latest, None if grants is None else grants.get(member.user_id, {}))


_hubs: dict[Any, Hub] = {}


def hub_for_loop() -> Hub:
    """The hub of the running event loop (Daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for old in [key for key in _hubs if key.is_closed()]:
            del _hubs[old]
        hub = _hubs[loop] = Hub()
        wake_listener_set(loop, hub.local_wake)
    return hub
