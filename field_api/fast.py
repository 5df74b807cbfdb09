"""The lean path for the hottest request: a phone's new report as JSON.

``POST /api/v1/reports/`` through Django + DRF costs ~3.5 ms of request handling (a thread, a
GEOS context and a pooled connection per request) and ~3 ms of DRF before the service runs;
this ASGI app, mounted in front of Django by command/asgi.py, takes the common case on Daphne's
event loop instead: ``Authorization: Token``, a JSON body with ``client_id``, ``category``, a
GeoJSON ``location`` and optionally ``accuracy``, ``note`` and ``client_time``, a report not
stored yet. It calls the same service (``report_submit_async``: the same statement and events
as ``report_submit``, which also checks the token and the category), the same throttle and the
same receipt (``stored_output``, the shape of ``report_output``), and answers with the headers
Django's middleware would add.

Everything else goes to Django unchanged (with the body it already read): other paths, methods
and content types, sessions and device keys, photos, and every request that is not plainly
valid — so each error still comes from the one DRF view with its per-field reasons, and a retry
of a stored report (200 with the first receipt, or 409) is answered there too. The fast path
never answers an error itself, and writes nothing before it is sure to answer.

``GRIDCOMMAND_FAST_PATHS=0`` turns it off (README).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from command.jsonbody import json_loads
from command.lean import lean_paths_on, lean_refused, lean_request, lean_response, lean_send
from command.logins import BadCredentials, auser_id_for_token, token_from_authorization
from command.report_input import REPORT_INPUT, UNSURE
from command.services.reports import ReportNotTaken, report_submit_async
from field_api.serializers import CATEGORY_CODE, stored_output
from field_api.throttles import REPORT_COUNTED, ReportThrottle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

logger = logging.getLogger(__name__)

PATH = "/api/v1/reports/"
REQUIRED = frozenset({"client_id", "category", "location"})
FIELDS = REQUIRED | {value.name for value in REPORT_INPUT}  # and the declared values (command/report_input.py)


def report_fast_app(fallback: ASGIApp) -> ASGIApp:
    """``fallback`` (Django) behind the lean report path."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("query_string")
            or not lean_paths_on()
        ):
            return await fallback(scope, receive, send)
        headers = _headers(scope)
        key = _token(headers.get(b"authorization", b""))
        length = _int(headers.get(b"content-length"))
        limit = int(getattr(settings, "FIELD_API_MAX_JSON_BYTES", 64 * 1024))
        if (
            key is None
            or headers.get(b"content-type", b"").split(b";")[0].strip().lower() != b"application/json"
            or length is None
            or length > limit
        ):
            return await fallback(scope, receive, send)
        body, more = await _body(receive, length)
        replay = _replaying(body, more, receive)
        try:
            answer = await _submit(scope, headers, key, body) if not more else None
        except Exception:
            # Whatever failed, Django answers: a report already stored is found there by its
            # client id (a retry, answered 200), so handing on never stores one twice.
            logger.exception("lean report path failed; handing the request to Django")
            answer = None
        if answer is None:
            return await fallback(scope, replay, send)
        await lean_send(answer, send)

    return app


async def _submit(scope: Scope, headers: dict[bytes, bytes], key: str, body: bytes) -> HttpResponse | None:
    """The 201 response, or None for Django to answer (with nothing written)."""
    valid = _valid(body)
    if valid is None:
        return None
    user_id = await _token_user(key)
    if user_id is None:
        return None  # DRF answers 401 with its reason
    request = lean_request(scope)
    if lean_refused(request):  # a disallowed Host (400), the HTTPS redirect: Django answers
        return None
    user = SimpleNamespace(pk=user_id, id=user_id, is_authenticated=True)
    if not ReportThrottle().allow_request(SimpleNamespace(user=user, META=request.META), None):
        return None  # DRF answers 429 with Retry-After (a refused request is not counted)
    try:
        result = await report_submit_async(
            token=key,
            client_id=valid["client_id"],
            category_code=valid["category"],
            lon=valid["lon"],
            lat=valid["lat"],
            **valid["values"],
        )
    except (ReportNotTaken, ValidationError):
        scope[REPORT_COUNTED] = True  # the throttle above counted this request already
        return None
    data = stored_output(result, category_code=valid["category"])
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")),
        status=201,
        content_type="application/json",
    )
    response["Allow"] = "POST, OPTIONS"
    return lean_response(request, response)


# Token key -> user id, for the throttle (keyed by user, as DRF's). A key names one user for its
# whole life (revoking deletes it), so a cached pair never goes wrong; whether the key is still
# valid and its user active is checked by the submit statement itself, every time.
_token_users: OrderedDict[str, int] = OrderedDict()
TOKEN_CACHE_SIZE = 10_000


async def _token_user(key: str) -> int | None:
    found = _token_users.get(key)
    if found is not None:
        return found
    user_id = await auser_id_for_token(key)
    if user_id is None:
        return None
    _token_users[key] = user_id
    if len(_token_users) > TOKEN_CACHE_SIZE:
        _token_users.popitem(last=False)
    return user_id


def _valid(body: bytes) -> dict[str, Any] | None:
    """The report's fields when they are plainly valid (as DRF's ReportInputSerializer would
    take them), else None: anything doubtful goes to DRF for its per-field reasons."""
    try:
        data = json_loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not FIELDS.issuperset(data) or not set(data) >= REQUIRED:
        return None
    client_id, category, location = data["client_id"], data["category"], data["location"]
    if not isinstance(client_id, str) or not isinstance(category, str) or not CATEGORY_CODE.fullmatch(category):
        return None
    try:
        parsed_id = uuid.UUID(hex=client_id)
    except ValueError:
        return None
    if not isinstance(location, dict) or set(location) != {"type", "coordinates"} or location["type"] != "Point":
        return None
    coords = location["coordinates"]
    if not isinstance(coords, list) or len(coords) != 2 or not all(_number(c) for c in coords):
        return None
    lon, lat = float(coords[0]), float(coords[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    values = {}
    for value in REPORT_INPUT:  # each as DRF's field for it would take it (command/report_input.py)
        taken = value.lean(data.get(value.name, UNSURE))
        if taken is UNSURE:
            return None
        values[value.column] = taken
    return {"client_id": parsed_id, "category": category, "lon": lon, "lat": lat, "values": values}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        if name in found:  # a repeated header: let Django decide what it means
            found[name] = b""
        else:
            found[name] = value
    return found


def _token(header: bytes) -> str | None:
    """The key of ``Authorization: Token <key>`` (``command.logins``); anything else, a malformed
    key included, is Django's to answer (401 with its reason)."""
    try:
        return token_from_authorization(header)
    except BadCredentials:
        return None


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _body(receive: Receive, length: int) -> tuple[bytes, list[Message]]:
    """The body, when it arrives whole within ``length`` bytes; otherwise what was read, with
    the messages to hand on."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > length:
            return b"".join(chunks), [{"type": "http.request", "body": b"", "more_body": message.get("more_body")}]
        if not message.get("more_body"):
            return b"".join(chunks), []


def _replaying(body: bytes, more: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives Django the body already read, then the rest as it comes."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": bool(more)}]
    if more and more[0]["type"] != "http.request":
        pending = [{"type": "http.request", "body": body, "more_body": False}, *more]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
