"""Websocket routes: one endpoint, ``/ws/live/`` (docs/websocket-api.md)."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import path, re_path

from realtime.auth import LiveAuthMiddlewareStack
from realtime.consumers import LiveConsumer
from realtime.messages import CLOSE_NOT_FOUND
from realtime.resident import ResidentConsumer


class NoSuchEndpoint(AsyncWebsocketConsumer):
    """Any other path: the handshake is refused (HTTP 403), not a server error."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)


websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/resident/", ResidentConsumer.as_asgi()),
    re_path(r"", NoSuchEndpoint.as_asgi()),
]
websocket_application = LiveAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
