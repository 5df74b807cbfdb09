"""Per-device API keys (alarm buttons and other devices that report on their own)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from command.models import DeviceToken

KEY_BYTES = 32


def device_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def device_token_issue(*, user: Any, name: str) -> tuple[DeviceToken, str]:
    """A new key for a device acting as ``user``; the key itself is returned once, never stored."""
    key = secrets.token_urlsafe(KEY_BYTES)
    token = DeviceToken.objects.create(name=name[:100], user=user, key_hash=device_key_hash(key), prefix=key[:8])
    return token, key


@transaction.atomic
def device_token_revoke(*, token: DeviceToken) -> DeviceToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def device_token_for_key(key: str) -> DeviceToken | None:
    """The live token for ``key`` (None when unknown or revoked); stamps its last use."""
    if not key or len(key) > 128:
        return None
    token = (
        DeviceToken.objects.select_related("user")
        .filter(key_hash=device_key_hash(key), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            DeviceToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
