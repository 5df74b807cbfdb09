"""Who is asking: the session (pages), or ``Authorization: Token`` / HTTP Basic for GIS clients
(QGIS, GDAL's OAPIF driver) that cannot log in through a form.

A token is read by ``command.logins`` (the one rule and query of every channel).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils.translation import gettext as _

from command.lockout import locked_for
from command.logins import BadCredentials, token_from_authorization, user_for_token


def request_viewer(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    header = request.META.get("HTTP_AUTHORIZATION", "")
    try:
        key = token_from_authorization(header)
    except BadCredentials:
        return user  # not one token key (a key with a suffix, say): anonymous, 401
    if key is not None:
        # one raw query for the user and their permissions: every tile request comes here
        return user_for_token(key) or user
    scheme, _sep, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return user
        username, _sep, password = decoded.partition(":")
        found = authenticate(request, username=username, password=password)
        if found is not None and found.is_active:
            return found
        retry_after = locked_for(request)
        if retry_after:
            from maps.params import BadRequest

            raise BadRequest(
                _("Too many failed logins for this account or address; try again in %(s)s s.") % {"s": retry_after},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
    return user
