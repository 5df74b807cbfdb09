"""Authentication of the field API: ``Authorization: Token <key>`` checked in one raw query (the
report hot path), and ``Authorization: Device <key>`` for per-device keys
(command.services.devices)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from command.logins import BadCredentials, token_from_authorization, user_for_token
from command.services.devices import device_token_for_key

KEYWORD = b"device"


class FastTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, the same tokens, read by ``command.logins`` as on every other
    channel (one query, the user's permissions with it)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        try:
            key = token_from_authorization(get_authorization_header(request))
        except BadCredentials as exc:
            raise exceptions.AuthenticationFailed(_(exc.reason)) from exc
        return None if key is None else self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user = user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token, or its user is inactive."))
        return user, Token(key=key, user=user)


class DeviceTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Send the device key as Authorization: Device <key>."))
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid device key.")) from exc
        token = device_token_for_key(key)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked device key."))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return "Device"


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "field_api.auth.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A per-device key with the prefix "Device"',
        }


class FastTokenScheme(OpenApiAuthenticationExtension):
    target_class = "field_api.auth.FastTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Your API token, with the prefix "Token"',
        }
