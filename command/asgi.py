"""ASGI entry point (Daphne serves both): HTTP through Django, except the lean paths in front of
it (a phone's new report, map tiles: they answer the common case on the event loop and hand
everything else to Django), and websockets through realtime's router."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from field_api.fast import report_fast_app  # noqa: E402
from maps.fast import tile_fast_app  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

http_application = tile_fast_app(report_fast_app(django_asgi_app))
application = ProtocolTypeRouter({"http": http_application, "websocket": websocket_application})
