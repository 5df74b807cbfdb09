"""The mobile web app at /field/: an installable PWA (manifest + service worker) served from
our own files, so it works with no request leaving the server.

The app shell, its script and the service worker are served here rather than from /static/
so that the service worker's scope is /field/ and the app works whether or not
``collectstatic`` ran.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from command.models import Category, Household, Person

ASSETS = Path(__file__).resolve().parent / "static" / "field"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# Category icon names (command/reference.py) as symbols that need no font or image download.
ICON_SYMBOLS = {
    "sos": "🆘",
    "gas": "🔥",
    "fire": "🧯",
    "car-crash": "🚗",
    "falling": "⚠️",
    "elevator": "🛗",
    "dispute": "🗣️",
    "parking": "🅿️",
    "road": "🚧",
    "broom": "🧹",
    "other": "📌",
}


@lru_cache(maxsize=32)
def _asset(name: str) -> tuple[bytes, str]:
    if "\x00" in name or len(name) > 200:
        raise Http404  # no such file (a NUL byte would make the path raise, a 500)
    path = (ASSETS / name).resolve()
    if ASSETS not in path.parents or not path.is_file():
        raise Http404
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:16]


def _serve(request: HttpRequest, name: str, *, extra_headers: dict[str, str] | None = None) -> HttpResponse:
    try:
        data, etag = _asset(name)
    except Http404:
        raise
    quoted = f'"{etag}"'
    if request.headers.get("If-None-Match") == quoted:
        return HttpResponseNotModified()
    response = HttpResponse(data, content_type=CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"))
    response["ETag"] = quoted
    response["Cache-Control"] = "no-cache"  # revalidate; the service worker keeps the offline copy
    for key, value in (extra_headers or {}).items():
        response[key] = value
    return response


def app_version() -> str:
    names = ["app.js", "app.css", "sw.js", "icons/icon-192.png", "icons/icon-512.png"]
    return hashlib.sha256("".join(_asset(n)[1] for n in names).encode()).hexdigest()[:12]


def _strings() -> dict[str, Any]:
    return {
        "queued": _("queued"),
        "sending": _("sending"),
        "delivered": _("delivered"),
        "rejected": _("rejected"),
        "conflict": _("conflict"),
        "retry_in": _("retry in %(s)s s"),
        "receipt": _("receipt"),
        "no_fix": _("waiting for GPS…"),
        "accuracy": _("accuracy ±%(m)s m"),
        "pick_category": _("Pick a category."),
        "need_fix": _("No position yet: wait for the GPS fix."),
        "login_failed": _("Login failed."),
        "offline": _("offline: reports wait on this phone"),
        "online": _("online"),
        "accept": _("Accept"),
        "arrive": _("Arrived"),
        "resolve": _("Resolve"),
        "hand_back": _("Hand back"),
        "resolution_note": _("How was it resolved?"),
        "hand_back_reason": _("Why do you hand it back?"),
        "no_assignments": _("No open assignments."),
        "new_assignment": _("New assignment: #%(id)s"),
        "metres": _("%(m)s m"),
        "too_many_photos": _("At most 6 photos."),
        "saved": _("Saved on the phone; it will be sent when possible."),
        "due": _("due"),
        "status_new": _("new"),
        "status_dispatched": _("dispatched"),
        "status_accepted": _("accepted"),
        "status_on_scene": _("on scene"),
        "visited": _("visited"),
        "absent": _("nobody home"),
        "refused": _("refused"),
        "lookup": _("Who lives here?"),
        "no_campaigns": _("No active campaign in your grid cells."),
        "no_targets": _("Every target is marked."),
        "cell_open": _("%(cell)s: %(n)s not covered"),
        "building_open": _("%(n)s not covered here"),
        "nobody_found": _("Nobody of that name or number in this building."),
        "households_count": _("%(n)s households"),
        "phone": _("phone"),
        "visit_of": _("Visit: %(unit)s"),
        "purpose_needed": _("State the purpose (at least two characters)."),
        "visit_label": _("visit %(unit)s"),
        "vulnerable": {value: str(label) for value, label in Household.Vulnerable.choices},
        "relation": {value: str(label) for value, label in Person.Relation.choices},
    }


def _basemap() -> dict[str, str]:
    """The pin map's tiles: only a WGS 84 / CGCS2000 basemap (a GCJ-02 one would show the pin
    ~500 m off); without one the map shows the pin and its accuracy on a plain background."""
    url = getattr(settings, "BASEMAP_URL", "")
    if getattr(settings, "BASEMAP_CRS", "wgs84") not in {"wgs84", "cgcs2000"}:
        url = ""
    return {"url": url, "attribution": getattr(settings, "BASEMAP_ATTRIBUTION", "")}


@require_GET
@ensure_csrf_cookie  # the app trades a signed-in session for its token (SessionTokenView)
def field_app(request: HttpRequest) -> HttpResponse:
    zh = (get_language() or "zh-hans").startswith("zh")
    categories = [
        {
            "code": c.code,
            "name": c.name_zh if zh else c.name_en,
            "icon": ICON_SYMBOLS.get(c.icon, "📌"),
            "priority": c.priority,
        }
        for c in Category.objects.order_by("priority", "code")
    ]
    response = render(
        request,
        "field_api/app.html",
        {
            "categories": categories,
            "strings": _strings(),
            "version": app_version(),
            "basemap": _basemap(),
            "vulnerable_groups": Household.Vulnerable.choices,
        },
    )
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def field_asset(request: HttpRequest, name: str) -> HttpResponse:
    return _serve(request, name)


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    response = _serve(request, "sw.js", extra_headers={"Service-Worker-Allowed": "/field/"})
    return response


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(
        {
            "name": _("GridCommand field app"),
            "short_name": _("Field report"),
            "lang": get_language() or "zh-hans",
            "start_url": "/field/",
            "scope": "/field/",
            "display": "standalone",
            "orientation": "portrait",
            "background_color": "#ffffff",
            "theme_color": "#c81e28",
            "icons": [
                {"src": "/field/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
                {"src": "/field/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
            ],
        },
        json_dumps_params={"ensure_ascii": False},
    )
    response["Content-Type"] = "application/manifest+json"
    return response
