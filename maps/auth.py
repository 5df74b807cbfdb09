"""Who is asking: the session (pages), or ``Authorization: Token`` / HTTP Basic for GIS clients
(QGIS, GDAL's OAPIF driver) that cannot log in through a form."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest


def request_viewer(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, credentials = header.partition(" ")
    if scheme.lower() == "token" and credentials:
        from django.contrib.auth.models import User

        # a raw query: every tile request comes here, and compiling the ORM join cost ~1 ms
        rows = list(
            User.objects.raw(
                "SELECT u.* FROM auth_user u JOIN authtoken_token t ON t.user_id = u.id "
                "WHERE t.key = %s AND u.is_active",
                [credentials.strip()[:40]],
            )
        )
        if rows:
            return rows[0]
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
