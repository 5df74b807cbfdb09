"""Websocket routes (filled in by the real-time delivery work)."""

from __future__ import annotations

from channels.routing import URLRouter

websocket_urlpatterns: list = []
websocket_application = URLRouter(websocket_urlpatterns)
