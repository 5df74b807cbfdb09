"""``/ws/resident/``: a resident's own requests, live (docs/websocket-api.md).

A resident has no map layers, so ``/ws/live/`` gives them nothing; this endpoint sends them the
``request.created`` / ``request.updated`` events of the requests they filed, and nothing else,
once and in order: it joins the process's hub like a live screen (the wakes carry the events;
the heartbeat brings the latest seq, and a gap is read from the event log), and keeps only the
events of requests the user filed. The event log keeps no requester (personal data is masked
at write), so whose a request is comes from the request's row, asked once per request and
remembered (a request's requester never changes). Each message: ``{"type": "request", "seq", "id",
"action", "status", "overdue", "rating", "updated_at"}``. Only users with
``command.use_resident_page`` connect; a logout or an expired session closes it at the next
heartbeat.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from command.eventlog import events_after, latest_seq
from command.layers import LayerGrant
from realtime.auth import CREDENTIAL
from realtime.hub import hub_for_loop
from realtime.messages import CLOSE_NOT_FOUND

RESIDENT_PERMISSION = "command.use_resident_page"
LAYER = "requests"


def _allowed(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.has_perm(RESIDENT_PERMISSION))


def _owned(request_id: int, user_id: int) -> bool:
    from command.resident_models import ServiceRequest

    return ServiceRequest.objects.filter(pk=request_id, requester_id=user_id).exists()


_owned_async = database_sync_to_async(_owned)
_read_log = database_sync_to_async(lambda after, upto: events_after(after, upto_seq=upto, layers=[LAYER], limit=5000))


class ResidentConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not await database_sync_to_async(_allowed)(self.user):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await hub_for_loop().subscribed()
        self.user_id: int = self.user.pk
        self.credential = self.scope.get(CREDENTIAL)
        self.lock = asyncio.Lock()
        self.mine: dict[int, bool] = {}  # request id -> filed by this user
        self.cursor: int = await database_sync_to_async(latest_seq)()
        await self.accept()
        hub_for_loop().join(self)
        await self.send(text_data=json.dumps({"type": "hello", "seq": self.cursor}))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "cursor"):
            hub_for_loop().leave(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # push-only

    async def _send_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.cursor = max(self.cursor, event["seq"])
            if event["layer"] != LAYER:
                continue
            properties = event["payload"]["properties"]
            request_id = int(event["object_id"])
            if request_id not in self.mine:
                self.mine[request_id] = await _owned_async(request_id, self.user_id)
            if not self.mine[request_id]:
                continue
            await self.send(
                text_data=json.dumps(
                    {
                        "type": "request",
                        "seq": event["seq"],
                        "id": request_id,
                        "action": properties.get("action"),
                        "status": properties["status"],
                        "overdue": properties["overdue"],
                        "rating": properties["rating"],
                        "updated_at": properties["updated_at"],
                    },
                    ensure_ascii=False,
                )
            )

    async def event_wake(self, message: dict[str, Any]) -> None:
        async with self.lock:
            events = [e for e in message["events"] if e["seq"] > self.cursor]
            if not events:
                return
            if events[0]["seq"] != self.cursor + 1:  # a lost wake: read the gap from the log
                await self._catch_up(events[-1]["seq"])
                return
            await self._send_events(events)

    async def _catch_up(self, upto: int) -> None:
        while self.cursor < upto:
            events = await _read_log(self.cursor, upto)
            if not events:
                self.cursor = upto
                break
            await self._send_events(events)

    def tick(self, latest: int | None, grants: dict[str, LayerGrant] | None, reset: bool = False) -> None:
        # Residents hold no layers, so ``grants`` says nothing here: the login is checked anew.
        asyncio.get_running_loop().create_task(self._tick(latest))

    async def _tick(self, latest: int | None) -> None:
        if not await database_sync_to_async(_allowed_fresh)(self.user_id):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if latest is not None and latest > self.cursor:
            async with self.lock:
                await self._catch_up(latest)


def _allowed_fresh(user_id: int) -> bool:
    from django.contrib.auth.models import User

    user = User.objects.filter(pk=user_id).first()
    return _allowed(user)
