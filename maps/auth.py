"""Who is asking: the session (pages), or ``Authorization: Token`` / HTTP Basic for GIS clients
(QGIS, GDAL's OAPIF driver) that cannot log in through a form.

``viewer_sql`` + ``viewer_from_row`` load a user *and* their permissions in one statement, as
Django's ModelBackend would cache them on the user (``_user_perm_cache``, ``_group_perm_cache``,
``_perm_cache``): ``command.layers.layers_for_user`` then answers without another query. The
Token branch below and the lean tile path (maps/fast.py, on an async connection) both use them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from functools import cache
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest

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


@cache
def _user_fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from django.contrib.auth.models import User

    fields = User._meta.concrete_fields
    return tuple(f.attname for f in fields), tuple(f.column for f in fields)


@cache
def viewer_sql(how: str) -> str:
    """``SELECT <auth_user columns>, <user permissions>, <group permissions>`` of one user:
    ``how="token"`` by API token (active users only, as ``request_viewer``), ``how="id"`` by
    primary key (a session's user; the caller checks ``is_active`` as ModelBackend does)."""
    _attnames, columns = _user_fields()
    where = {
        "token": "JOIN authtoken_token t ON t.user_id = u.id WHERE t.key = %s AND u.is_active",
        "id": "WHERE u.id = %s",
    }[how]
    return (
        f"SELECT {', '.join('u.' + c for c in columns)}, "  # noqa: S608 -- fixed columns; the key is bound
        f"{_PERMISSIONS_SQL.format(ids=_USER_PERMISSION_IDS)}, "
        f"{_PERMISSIONS_SQL.format(ids=_GROUP_PERMISSION_IDS)} "
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
    return user


def token_key(credentials: str) -> str:
    """The key looked up for ``Authorization: Token <credentials>``."""
    return credentials.strip()[:40]


def request_viewer(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, credentials = header.partition(" ")
    if scheme.lower() == "token" and credentials:
        from django.db import connection

        # one raw query for the user and their permissions: every tile request comes here
        with connection.cursor() as cursor:
            cursor.execute(viewer_sql("token"), [token_key(credentials)])
            row = cursor.fetchone()
        if row is not None:
            return viewer_from_row(row)
    elif scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return user
        username, _sep, password = decoded.partition(":")
        found = authenticate(request, username=username, password=password)
        if found is not None and found.is_active:
            return found
    return user
