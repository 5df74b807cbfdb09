"""A limit on password guesses, for every way a password is checked: the login form (site and
admin), the token endpoint of the field app and HTTP Basic of the GIS clients all call
``django.contrib.auth.authenticate``, which reaches ``LockoutBackend`` (settings.
AUTHENTICATION_BACKENDS).

Failures are counted per account (the user name as typed, case-folded) and per client address,
in Redis (the ``logins`` cache: shared by every Daphne process). ``LOGIN_MAX_FAILURES`` failures
of one account, or ``LOGIN_MAX_FAILURES_PER_ADDRESS`` from one address, within
``LOGIN_LOCKOUT_SECONDS`` lock it for ``LOGIN_LOCKOUT_SECONDS``: every attempt meanwhile is
refused without checking the password, right or wrong, and each channel answers plainly (429
with Retry-After; the login form says how long). A success clears the account's count, not the
address's (one valid login must not reset someone's guessing). Each lock is logged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

logger = logging.getLogger("gridcommand.logins")

CACHE = "logins"
LOCKED_ATTR = "gridcommand_login_locked"  # set on the request: seconds until the lock ends


class LoginLocked(PermissionDenied):
    """Refused without checking the password: too many failures for this account or address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; try again in {retry_after} s.")
        self.retry_after = retry_after


def _int_setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _keys(username: str | None, address: str | None) -> list[tuple[str, int]]:
    """(cache key stem, threshold) of the account and the address."""
    keys: list[tuple[str, int]] = []
    if username:
        digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
        keys.append((f"user:{digest}", _int_setting("LOGIN_MAX_FAILURES", 10)))
    if address:
        keys.append((f"addr:{address}", _int_setting("LOGIN_MAX_FAILURES_PER_ADDRESS", 50)))
    return keys


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    meta = getattr(request, "META", None) or {}
    return meta.get("REMOTE_ADDR") or None


def login_locked(username: str | None, address: str | None) -> int:
    """Seconds until the account or address may try again (0: not locked)."""
    cache = caches[CACHE]
    now = time.time()
    ends = cache.get_many([f"lock:{stem}" for stem, _limit in _keys(username, address)]).values()
    remaining = max((float(end) - now for end in ends), default=0.0)
    return max(int(remaining + 0.999), 0)


def login_failed(username: str | None, address: str | None) -> None:
    cache = caches[CACHE]
    window = _int_setting("LOGIN_LOCKOUT_SECONDS", 900)
    for stem, limit in _keys(username, address):
        key = f"fail:{stem}"
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
        if count >= limit:
            cache.set(f"lock:{stem}", time.time() + window, timeout=window)
            cache.delete(key)
            logger.warning(
                "login locked for %s s after %s failures: %s (account %r, address %s)",
                window,
                count,
                stem.split(":")[0],
                username,
                address,
            )


def login_succeeded(username: str | None) -> None:
    caches[CACHE].delete_many([f"fail:{stem}" for stem, _limit in _keys(username, None)])


class LockoutBackend(ModelBackend):
    """ModelBackend behind the guess limit."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(self._username_field())
        address = client_address(request)
        retry_after = login_locked(username, address)
        if retry_after:
            if request is not None:
                setattr(request, LOCKED_ATTR, retry_after)
            raise LoginLocked(retry_after)  # authenticate() stops here and answers None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failed(username, address)
        else:
            login_succeeded(username)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return str(get_user_model().USERNAME_FIELD)


def locked_for(request: Any) -> int:
    """Seconds of lock the last ``authenticate`` on this request met (0: none). DRF's Request
    wraps Django's; both are looked at."""
    for candidate in (request, getattr(request, "_request", None)):
        value = getattr(candidate, LOCKED_ATTR, 0) if candidate is not None else 0
        if value:
            return int(value)
    return 0
