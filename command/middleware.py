"""Per-request hardening for every page Django serves:

- a request id (``request.request_id`` and ``command.access.request_id_var``): the access log
  writes it beside each unmasked view, so a row leads to the request that made it;
- a Content-Security-Policy on HTML answers: scripts only from our own origin, plus the exact
  inline scripts of that page by their SHA-256 (folium's map pages, the admin and Swagger UI
  write inline scripts; an injected script has another hash and does not run); no plugins,
  no framing, forms post to us only. Styles allow ``'unsafe-inline'`` (folium and Leaflet
  write style attributes; CSS cannot run script). Images also from the basemap's origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from functools import cache
from urllib.parse import urlparse

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from command.access import new_request_id, request_id_var

INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


@cache
def _basemap_origin(url: str) -> str:
    if not url:
        return ""
    parsed = urlparse(url.replace("{s}", "a"))
    host = parsed.netloc
    if url.startswith(("http://{s}.", "https://{s}.")):
        host = "*." + host.split(".", 1)[1]
    return f"{parsed.scheme}://{host}" if parsed.scheme and host else ""


def content_security_policy(body: bytes) -> str:
    """The policy of one HTML page: its inline scripts allowed by hash, nothing else inline."""
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
            for m in INLINE_SCRIPT.finditer(body)
            if m.group(1).strip()
        }
    )
    basemap = _basemap_origin(getattr(settings, "BASEMAP_URL", ""))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src " + " ".join(["'self'", *hashes]),
            "style-src 'self' 'unsafe-inline'",
            "img-src " + " ".join(filter(None, ["'self'", "data:", "blob:", basemap])),
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


def security_headers(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = get_response(request)
        finally:
            request_id_var.reset(token)
        if (
            not getattr(response, "streaming", False)
            and response.status_code != 304
            and response.content
            and response.get("Content-Type", "").startswith("text/html")
            and "Content-Security-Policy" not in response
        ):
            response["Content-Security-Policy"] = content_security_policy(response.content)
        return response

    return middleware
