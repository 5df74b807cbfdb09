"""One login -> user path for every channel: REST, the lean report path, tiles, GeoJSON, OGC,
exports and the websocket all read an API token here, by the same rule, with the same query.

The rule: ``Authorization: Token <key>`` where ``<key>`` is exactly one DRF key (40 lowercase
hex digits, ``rest_framework.authtoken.models.Token.generate_key``). Anything else after the
``Token`` scheme (a valid key followed by junk, two words, other characters) is refused: it
names no token, and a prefix match would let a truncated or padded credential through.

``viewer_sql`` + ``viewer_from_row`` load a user *and* their permissions in one statement, as
Django's ModelBackend would cache them on the user (``_user_perm_cache``, ``_group_perm_cache``,
``_perm_cache``): ``command.layers.layers_for_user`` then answers without another query. Only
active users are found by token; a session's user (``how="id"``) is checked by the caller, as
ModelBackend does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

TOKEN_KEY = re.compile(r"[0-9a-f]{40}")
SCHEME = "token"


class BadCredentials(Exception):
    """``Authorization: Token`` with something that is not one token key."""

    def __init__(self, reason: str = "Send the API token as Authorization: Token <40 hex digits>.") -> None:
        super().__init__(reason)
        self.reason = reason


def token_key_valid(key: object) -> bool:
    return isinstance(key, str) and TOKEN_KEY.fullmatch(key) is not None


def token_from_authorization(header: str | bytes | None) -> str | None:
    """The key of ``Authorization: Token <key>``; None when the header is absent or another
    scheme (Basic, Device, a session's request); BadCredentials when the scheme is Token and
    what follows is not exactly one key."""
    if not header:
        return None
    if isinstance(header, bytes):
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            parts = header.split(None, 1)
            if parts and parts[0].lower() == SCHEME.encode():
                raise BadCredentials() from None
            return None
    parts = header.split()
    if not parts or parts[0].lower() != SCHEME:
        return None
    if len(parts) != 2 or not token_key_valid(parts[1]):
        raise BadCredentials()
    return parts[1]


def token_user_id_sql(key: str) -> str:
    """The user id of the API token ``key`` (an SQL expression: a bound parameter or a column),
    active users only. The lean report path puts it in its one statement, so the token is
    checked on every report at no extra round trip."""
    return (
        "SELECT t.user_id FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id "  # noqa: S608 - the key is bound
        f"WHERE t.key = {key} AND u.is_active"
    )


TOKEN_USER_ID_SQL = token_user_id_sql("%s")

# A user's permissions as ModelBackend reads them: a superuser has every permission.
_PERMISSIONS_SQL = """ARRAY(
  SELECT ct.app_label || '.' || p.codename
  FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
  WHERE u.is_active AND (u.is_superuser OR p.id IN ({ids})))"""
_USER_PERMISSION_IDS = "SELECT up.permission_id FROM auth_user_user_permissions up WHERE up.user_id = u.id"
_GROUP_PERMISSION_IDS = (
    "SELECT gp.permission_id FROM auth_user_groups ug "
    "JOIN auth_group_permissions gp ON gp.group_id = ug.group_id WHERE ug.user_id = u.id"
)


# The user's groups (their roles), and whether any access grant names the user or one of them
# (command/access.py: without one, the declared roles decide with no further query).
_ROLES_SQL = """ARRAY(SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
  WHERE ug.user_id = u.id), EXISTS(SELECT 1 FROM command_accessgrant a WHERE a.user_id = u.id OR a.role IN (
  SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id WHERE ug.user_id = u.id))"""


@cache
def _user_fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from django.contrib.auth.models import User

    fields = User._meta.concrete_fields
    return tuple(f.attname for f in fields), tuple(f.column for f in fields)


@cache
def viewer_sql(how: str) -> str:
    """``SELECT <auth_user columns>, <user permissions>, <group permissions>`` of one user:
    ``how="token"`` by API token (active users only), ``how="id"`` by primary key (a session's
    user; the caller checks ``is_active`` as ModelBackend does)."""
    _attnames, columns = _user_fields()
    where = {
        "token": "JOIN authtoken_token t ON t.user_id = u.id WHERE t.key = %s AND u.is_active",
        "id": "WHERE u.id = %s",
    }[how]
    return (
        f"SELECT {', '.join('u.' + c for c in columns)}, "  # noqa: S608 -- fixed columns; the key is bound
        f"{_PERMISSIONS_SQL.format(ids=_USER_PERMISSION_IDS)}, "
        f"{_PERMISSIONS_SQL.format(ids=_GROUP_PERMISSION_IDS)}, "
        f"{_ROLES_SQL} "
        f"FROM auth_user u {where}"
    )


def viewer_from_row(row: Sequence[Any]) -> Any:
    """The ``User`` of a ``viewer_sql`` row, its permission caches filled as ModelBackend fills
    them: ``has_perm``, ``get_all_permissions`` and ``layers_for_user`` query nothing more."""
    from django.contrib.auth.models import User

    attnames, _columns = _user_fields()
    n = len(attnames)
    user = User.from_db("default", list(attnames), list(row[:n]))
    user_perms, group_perms = set(row[n] or ()), set(row[n + 1] or ())
    user._user_perm_cache = user_perms  # type: ignore[attr-defined]
    user._group_perm_cache = group_perms  # type: ignore[attr-defined]
    user._perm_cache = user_perms | group_perms  # type: ignore[attr-defined]
    user._gc_roles = tuple(row[n + 2] or ())  # type: ignore[attr-defined]
    user._gc_has_grants = bool(row[n + 3])  # type: ignore[attr-defined]
    return user


def user_for_token(key: str) -> Any | None:
    """The active user of an API token (permissions loaded), or None; one query."""
    if not token_key_valid(key):
        return None
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(viewer_sql("token"), [key])
        row = cursor.fetchone()
    return viewer_from_row(row) if row is not None else None


async def auser_for_token(key: str) -> Any | None:
    """``user_for_token`` on the event loop's async pool (the websocket handshake)."""
    if not token_key_valid(key):
        return None
    from command import db_async

    async with (await db_async.pool()).connection() as conn:
        cursor = await conn.execute(viewer_sql("token"), [key])
        row = await cursor.fetchone()
    return viewer_from_row(row) if row is not None else None


async def auser_id_for_token(key: str) -> int | None:
    """The id of a token's active user, or None (the lean report path's throttle key)."""
    if not token_key_valid(key):
        return None
    from command import db_async

    async with (await db_async.pool()).connection() as conn:
        cursor = await conn.execute(TOKEN_USER_ID_SQL, [key])
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else None
