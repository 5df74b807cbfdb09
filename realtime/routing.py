"""Websocket routes: ``/ws/live/`` and ``/ws/resident/`` (docs/websocket-api.md).

Routed by a plain function, not channels' ``URLRouter`` and ``ProtocolTypeRouter``: each of
those is a coroutine (and ``URLRouter`` a copy of the scope) that waits, for as long as the
socket is open, for the consumer to finish. An open socket holds only its consumer's coroutine.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from realtime.auth import LiveAuthMiddleware
from realtime.consumers import LiveConsumer
from realtime.messages import CLOSE_NOT_FOUND
from realtime.resident import ResidentConsumer


class NoSuchEndpoint(AsyncWebsocketConsumer):
    """Any other path: the handshake is refused (HTTP 403), not a server error."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)


ENDPOINTS: dict[str, Any] = {
    "/ws/live/": LiveConsumer.as_asgi(),  # logs in inside its own coroutine (realtime.auth.live_login)
    "/ws/resident/": LiveAuthMiddleware(ResidentConsumer.as_asgi()),
}
_no_such_endpoint = NoSuchEndpoint.as_asgi()


def websocket_application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    """The consumer of the scope's path: its coroutine, awaited by the server directly."""
    path = scope["path"]
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return ENDPOINTS.get(path, _no_such_endpoint)(scope, receive, send)


websocket_application._asgi_single_callable = True  # type: ignore[attr-defined]  # ASGI 3 (asgiref)
