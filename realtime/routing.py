"""Websocket routes: one endpoint, ``/ws/live/`` (docs/websocket-api.md)."""

from __future__ import annotations

from channels.routing import URLRouter
from django.urls import path

from realtime.auth import LiveAuthMiddlewareStack
from realtime.consumers import LiveConsumer

websocket_urlpatterns: list = [path("ws/live/", LiveConsumer.as_asgi())]
websocket_application = LiveAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
