"""Who may open ``/ws/live/``: checked before the consumer runs, so a refused handshake costs
no channel-layer work and gets HTTP 403.

- An ``Origin`` header, when present, must match ``ALLOWED_HOSTS`` (browsers always send one;
  this stops other sites' pages from using a visitor's cookie: cross-site websocket hijacking).
- ``Authorization: Token <key>`` (the DRF token of the REST API, read by ``command.logins``)
  for non-browser clients.
- Or that token in the subprotocol list, ``gridcommand, gridcommand.token.<key>`` (browser
  pages without a session, the field app: a browser cannot set the header); the consumer then
  accepts with the protocol ``gridcommand``.
- Otherwise the session cookie, and only with a matching ``Origin``.
- Anything else, including an anonymous or inactive user, is refused.

A socket lives for hours, so the login is a step of the handshake, not a stack of wrappers
around the connection: channels' session and cookie middlewares would each keep a copy of the
scope, a session store and a coroutine for as long as the socket is open (idle screens, docs/
benchmarks.md). ``live_login`` reads the session only for a cookie login and hands the consumer
one scope.
"""

from __future__ import annotations

import contextvars
import logging
from importlib import import_module
from typing import Any
from urllib.parse import urlparse

from channels.auth import get_user
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie

from command.logins import BadCredentials, auser_for_token, token_from_authorization

logger = logging.getLogger(__name__)
Scope = dict[str, Any]
CREDENTIAL = "gridcommand_credential"  # the scope key of the login that opened the socket
SUBPROTOCOL = "gridcommand"
TOKEN_SUBPROTOCOL_PREFIX = "gridcommand.token."  # noqa: S105 - a protocol name, not a secret


def token_from_subprotocols(scope: Scope) -> str | None:
    """``Token <key>`` from a ``gridcommand.token.<key>`` subprotocol, for command.logins' rule."""
    for protocol in scope.get("subprotocols") or []:
        if isinstance(protocol, str) and protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return "Token " + protocol[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return str(value.decode("latin1"))
            except UnicodeDecodeError:
                return None
    return None


def origin_allowed(origin: str) -> bool:
    """``Origin`` matches ``ALLOWED_HOSTS`` (same rules as channels' AllowedHostsOriginValidator)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return OriginValidator(None, hosts).valid_origin(urlparse(origin))


async def _deny(receive: Any, send: Any, scope: Scope, reason: str) -> None:
    """Refuse the handshake (logged with its reason): a close before accept is answered with HTTP 403."""
    client = scope.get("client") or ("?", 0)
    logger.warning("websocket handshake refused (%s) from %s origin=%r", reason, client[0], _header(scope, b"origin"))
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 4403})


async def _session_login(session_key: str) -> tuple[Any, str | None]:
    """The user of a session cookie and the session's key (None once channels' ``get_user``
    flushed a session whose password hash no longer verifies). The store is made in a context of
    its own: Django's cache handler keeps a per-context copy, which would otherwise stay in the
    socket's task as long as it is open."""
    engine = import_module(settings.SESSION_ENGINE)
    session = contextvars.copy_context().run(engine.SessionStore, session_key)
    user = await get_user({"session": session})
    return user, session.session_key


async def live_login(scope: Scope, receive: Any, send: Any) -> Scope | None:
    """The scope to serve, with ``user`` (an active, authenticated user) and the login that
    opened the socket under ``CREDENTIAL``; or None once the handshake has been refused."""
    origin = _header(scope, b"origin")
    if origin is not None and not origin_allowed(origin):
        await _deny(receive, send, scope, "foreign origin")
        return None
    try:
        key = token_from_authorization(_header(scope, b"authorization") or token_from_subprotocols(scope))
    except BadCredentials:
        await _deny(receive, send, scope, "malformed token")
        return None
    credential: tuple[str, str] | None = None
    if key is not None:
        user = await auser_for_token(key) or AnonymousUser()
        credential = ("token", key)
    elif origin is not None:
        cookie = _header(scope, b"cookie")
        session_key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME) if cookie else None
        user, session_key = await _session_login(session_key) if session_key else (AnonymousUser(), None)
        credential = ("session", session_key) if session_key else None
    else:
        user = AnonymousUser()
    if not (user.is_authenticated and user.is_active) or credential is None:
        reason = (
            "unknown, revoked or expired token" if key is not None else "no session" if origin else "no credentials"
        )
        await _deny(receive, send, scope, reason)
        return None
    # realtime.hub re-checks the credential every heartbeat: logging out ends the socket
    return {**scope, "user": user, CREDENTIAL: credential}


class LiveAuthMiddleware:
    """Serves ``inner`` with ``live_login``'s scope, or refuses the handshake. (The live
    consumer logs in inside its own coroutine: one coroutine less per open socket.)"""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        served = await live_login(scope, receive, send)
        if served is not None:
            await self.inner(served, receive, send)
