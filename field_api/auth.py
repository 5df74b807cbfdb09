"""Authentication of the field API: ``Authorization: Token <key>`` checked in one raw query (the
report hot path), and ``Authorization: Device <key>`` for per-device keys
(command.services.devices)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from command.services.devices import device_token_for_key

KEYWORD = b"device"

_USER_BY_KEY_SQL = "SELECT u.* FROM auth_user u JOIN authtoken_token t ON t.user_id = u.id WHERE t.key = %s"


class FastTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, the same tokens and answers, in one raw query instead of the
    ORM's select_related look-up (measurably cheaper on the report hot path)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        found = list(User.objects.raw(_USER_BY_KEY_SQL, [key]))
        if not found:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = found[0]
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
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
    name = "fieldTokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'The same API token as tokenAuth, with the prefix "Token"',
        }
