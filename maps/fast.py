"""The lean ASGI path for vector tiles: ``GET /maps/tiles/<layer>/<z>/<x>/<y>.pbf`` answered on
Daphne's event loop, without Django's request handling.

Django's ASGI path costs ~3.5 ms per request before any view code (a thread per sync view, the
request object, the middleware chain), more than the render of most tiles. For the common
request (a signed-in viewer, a layer they may see, a valid address, a tile that unmasks no
personal data) this app answers itself, with the same SQL, policy and bytes as the view
``maps.views.layer_tile``:

- the viewer: ``Authorization: Token``, or the session cookie (the ``django_session`` row,
  decoded by the SessionStore, its auth hash checked as ``django.contrib.auth.get_user`` does),
  loaded with their permissions (``command.logins.viewer_sql``) in the same prepared statement as
  the tile's cache row (``maps.tiles.FRESH_SQL``: a cacheable tile has the public profile, so
  its cache key does not depend on the viewer);
- the policy: ``command.layers.layers_for_user``, on that user (no further query);
- the tile: ``maps.tiles.tile_steps``, the view's own decision logic and statements, on the async
  pool of ``command.db_async``; a new tile is stored after the answer is sent;
- the answer: the view's headers (ETag, Cache-Control, Vary, X-Tile-Cache, Content-Type, 304
  on If-None-Match) and those the middleware in ``settings.MIDDLEWARE`` adds to them.

Everything else goes to ``fallback`` (the Django ASGI app) unchanged, so that every refusal
and every error comes from the one view: other paths and methods (HEAD too: the view is GET
only), a request body, an address out of range, anonymous viewers, HTTP Basic, an unknown
token, a session that does not authenticate (expired, password changed, inactive user; Django
also deletes or flushes it), a layer the viewer may not see, tiles with personal data (the view
logs every view of them), a disallowed host, a plain-HTTP request that SecurityMiddleware
redirects, a malformed CSRF cookie (CsrfViewMiddleware answers a new one), settings this module
was not written for (another middleware list, session engine, auth backend ...), and any
failure before the first byte is sent. ``GRIDCOMMAND_FAST_PATHS=0`` (``settings.FAST_PATHS``)
sends every request to Django.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.utils.crypto import constant_time_compare
from psycopg import AsyncCursor

from command.access import access_prefetched_enough
from command.db_async import pool
from command.layers import LAYERS, LayerGrant, layers_for_user
from command.lean import lean_paths_on, lean_refused, lean_request, lean_response, lean_send
from command.logins import BadCredentials, token_from_authorization, viewer_from_row, viewer_sql
from maps.gcj02 import tile_affine
from maps.tiles import (
    FRESH_SQL,
    Statement,
    Tile,
    aexecute,
    alayer_tile_cached,
    tile_fresh_statement,
    tile_public_profile,
    tile_shared,
)
from maps.views import MAX_TILE_ZOOM, tile_response

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# maps/urls.py: "maps/tiles/<str:layer>/<int:z>/<int:x>/<int:y>.pbf". Longer numbers (leading
# zeros) are left to Django; the view's own limit on z is checked below.
TILE_PATH = re.compile(r"/maps/tiles/([^/]+)/([0-9]{1,2})/([0-9]{1,7})/([0-9]{1,7})\.pbf")

# ModelBackend behind the password-guess limit (command/lockout.py): the same users and sessions
MODEL_BACKEND = "command.lockout.LockoutBackend"
# Session engines that keep every session in django_session (cached_db writes through to it and
# deletes it there too), so the row this path reads is the session Django would load.
DB_SESSIONS = ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db")
SESSION_SQL = "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > %s"
CSRF_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
CSRF_TOKEN_LENGTHS = (32, 64)  # a secret, or a masked token (django.middleware.csrf)


class Fallback(Exception):
    """The request is Django's to answer."""


def tile_fast_app(fallback: ASGIApp) -> ASGIApp:
    """An ASGI3 app that answers tile requests itself and hands every other request, and every
    tile request it is not sure about, to ``fallback`` unchanged."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not lean_paths_on():
            return await fallback(scope, receive, send)
        match = TILE_PATH.fullmatch(scope["path"])
        if match is None or not await _serve(scope, match, send):
            return await fallback(scope, receive, send)

    return app


async def _serve(scope: Scope, match: re.Match[str], send: Send) -> bool:
    """Answer the request, or return False (having sent nothing) for Django to answer it."""
    sent = False
    try:
        request = _Request.parse(scope, match)
        async with (await pool()).connection() as conn:
            autocommit = conn.autocommit
            if not autocommit:
                await conn.set_autocommit(True)
            try:
                tile, store = await _tile(conn, request)
                response = _response(tile, request)
                sent = True  # from here the client may have the first bytes
                await lean_send(response, send)
                if store is not None:  # the cache write, after the answer: off the client's time
                    await asyncio.sleep(0)  # first let the server write the answer out
                    await aexecute(conn, store)
            finally:
                if not autocommit:
                    await conn.set_autocommit(False)
    except Fallback:
        return False
    except Exception:
        if sent:  # the client has its tile; the cache is written another time
            logger.exception("tile fast path: storing %s failed", scope["path"])
            return True
        # nothing sent yet: Django answers, or fails the same way
        logger.exception("tile fast path failed; handing %s to Django", scope["path"])
        return False
    return True


def _supported() -> bool:
    """The settings this module reproduces Django's answer for."""
    return (
        settings.AUTH_USER_MODEL == "auth.User"
        and list(settings.AUTHENTICATION_BACKENDS) == [MODEL_BACKEND]
        and settings.SESSION_ENGINE in DB_SESSIONS
        and not settings.SESSION_SAVE_EVERY_REQUEST
        and not settings.CSRF_USE_SESSIONS
        and not settings.FORCE_SCRIPT_NAME
        and not settings.PREPEND_WWW
        and not settings.DISALLOWED_USER_AGENTS
        and not getattr(settings, "WHITENOISE_ROOT", None)
        and not is_language_prefix_patterns_used(settings.ROOT_URLCONF)[0]
    )


def _csrf_cookie_ok(cookies: dict[str, str]) -> bool:
    """No cookie, or one CsrfViewMiddleware keeps (a malformed one is replaced in the answer)."""
    token = cookies.get(settings.CSRF_COOKIE_NAME)
    return token is None or (len(token) in CSRF_TOKEN_LENGTHS and CSRF_TOKEN_CHARS.issuperset(token))


@dataclass(frozen=True)
class _Request:
    """What the view and the middleware read of a tile request."""

    layer: str
    z: int
    x: int
    y: int
    django: ASGIRequest  # META, COOKIES, host and scheme, as Django's middleware read them

    @classmethod
    def parse(cls, scope: Scope, match: re.Match[str]) -> _Request:
        """The request, or ``Fallback`` for one that Django answers otherwise than with a tile
        (a redirect, an error) or whose answer carries more (a cookie)."""
        if scope.get("root_path") or not _supported():
            raise Fallback
        request = lean_request(scope)
        meta = request.META
        if meta.get("CONTENT_LENGTH", "0") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in meta:
            raise Fallback  # a body: unusual for a GET, Django reads it
        if lean_refused(request):
            raise Fallback  # a disallowed host (400), the HTTPS redirect
        layer, z, x, y = match[1], int(match[2]), int(match[3]), int(match[4])
        if layer not in LAYERS or not 0 <= z <= MAX_TILE_ZOOM or not (x < (1 << z) and y < (1 << z)):
            raise Fallback  # 404 / 400 from the view
        if not _csrf_cookie_ok(request.COOKIES):
            raise Fallback
        if settings.SESSION_COOKIE_NAME not in request.COOKIES and not _token_credentials(meta):
            raise Fallback  # anonymous (401), HTTP Basic (password hashing: a thread's work)
        return cls(layer, z, x, y, request)


def _token_credentials(meta: dict[str, Any]) -> str | None:
    """The key of ``Authorization: Token <key>`` (``command.logins``, as ``request_viewer``);
    None for no token or a malformed one (Django answers it: 401)."""
    try:
        return token_from_authorization(meta.get("HTTP_AUTHORIZATION"))
    except BadCredentials:
        return None


async def _tile(conn: Any, request: _Request) -> tuple[Tile, Statement | None]:
    """The viewer and the cached tile in one statement (two with a session), the policy, then
    the rest of ``tile_steps``: on a miss, the render."""
    layer, z, x, y = LAYERS[request.layer], request.z, request.x, request.y
    crs = settings.BASEMAP_CRS
    # the cache row is read before the viewer is known: a cacheable tile has the public profile
    fresh = tile_fresh_statement(tile_public_profile(layer), z, x, y, crs=crs)
    session_key = request.django.COOKIES.get(settings.SESSION_COOKIE_NAME)
    session: dict[str, Any] | None = None
    if session_key is not None:
        # the session's user comes first, as in request_viewer; a session that does not
        # authenticate makes Django flush or delete it in the answer: its case
        session = await _session(conn, session_key)
        how, credential = "id", session[SESSION_KEY]
    else:
        how, credential = "token", _token_credentials(request.django.META)
    row = await _prepared(conn, _viewer_and_fresh_sql(how), [*fresh[1], credential], binary=True)
    if row is None or row[FRESH_COLUMNS] is None:
        raise Fallback  # no such active user (token) or user (session)
    user = viewer_from_row(row[FRESH_COLUMNS:])
    if session is not None:
        _session_check(session, user)
    if not access_prefetched_enough(user):
        raise Fallback  # grants narrowed to cells, or grant rows to read: the view reads them
    grant: LayerGrant | None = layers_for_user(user).get(request.layer)
    if grant is None or not tile_shared(grant, z):
        raise Fallback  # 404 alike for missing and forbidden; personal data is logged; other profiles
    affine = tile_affine(z, x, y) if crs == "gcj02" else None
    prefetched = (fresh, row[:FRESH_COLUMNS])
    return await alayer_tile_cached(conn, grant, z, x, y, crs=crs, affine=affine, prefetched=prefetched)


FRESH_COLUMNS = 5  # maps.tiles.FRESH_SQL: etag, data, seq, latest, fresh


async def _prepared(conn: Any, sql: str, params: list[Any], *, binary: bool = False) -> tuple[Any, ...] | None:
    """The first row of a statement prepared on the connection (server-side binding, whatever
    the pool's cursor factory): planned once per connection instead of on every request."""
    async with AsyncCursor(conn) as cursor:
        await cursor.execute(sql, params, prepare=True, binary=binary)
        return await cursor.fetchone()


@cache
def _viewer_and_fresh_sql(how: str) -> str:
    """FRESH_SQL's row, then ``viewer_sql``'s (NULLs when there is no such viewer): prepared
    once per connection, answered in binary (a cached tile comes as bytes, not as hex)."""
    return f"SELECT f.*, v.* FROM ({FRESH_SQL}) f LEFT JOIN ({viewer_sql(how)}) v ON TRUE"  # noqa: S608


async def _session(conn: Any, session_key: str) -> dict[str, Any]:
    """The session's data, as SessionMiddleware loads it; ``Fallback`` unless it names a user."""
    from django.contrib.sessions.backends.db import SessionStore

    if len(session_key) < 8:
        raise Fallback
    row = await _prepared(conn, SESSION_SQL, [session_key, datetime.now(UTC)])
    if row is None:
        raise Fallback  # expired or unknown
    session: dict[str, Any] = SessionStore().decode(row[0])  # {} when the signature does not match
    if session.get(BACKEND_SESSION_KEY) != MODEL_BACKEND or SESSION_KEY not in session:
        raise Fallback
    try:
        session[SESSION_KEY] = User._meta.pk.to_python(session[SESSION_KEY])  # as auth.get_user reads it
    except ValidationError as exc:
        raise Fallback from exc
    return session


def _session_check(session: dict[str, Any], user: Any) -> None:
    """``django.contrib.auth.get_user``'s checks of the session's user, without writing: an
    active user (ModelBackend), and the session's auth hash of their password. Django cycles a
    hash of a fallback secret key and flushes a wrong one: its case."""
    session_hash = session.get(HASH_SESSION_KEY)
    if not user.is_active or not session_hash:
        raise Fallback
    if not constant_time_compare(session_hash, user.get_session_auth_hash()):
        raise Fallback


def _response(tile: Tile, request: _Request) -> HttpResponse:
    """The view's answer (``maps.views.tile_response``) as the middleware leave it."""
    if_none_match = request.django.META.get("HTTP_IF_NONE_MATCH", "")
    return lean_response(request.django, tile_response(tile, if_none_match=if_none_match))
