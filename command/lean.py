"""What the lean ASGI paths (field_api/fast.py, maps/fast.py) share: the switch, the middleware
list whose effect on an answer they reproduce (with another list they step aside and Django
answers everything, so a new middleware can never be silently skipped), and the request and
response steps of those middleware, run by Django's own classes."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import translation

KNOWN_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "field_api.middleware.api_json_errors",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "command.middleware.security_headers",  # request id; CSP on HTML only (the lean paths answer none)
)


def lean_paths_on() -> bool:
    """``GRIDCOMMAND_FAST_PATHS`` is on and the middleware are the ones the lean paths know."""
    return bool(getattr(settings, "FAST_PATHS", True)) and tuple(settings.MIDDLEWARE) == KNOWN_MIDDLEWARE


def _unused(request: Any) -> HttpResponse:
    raise AssertionError("only the request and response steps of these middleware run here")


def lean_request(scope: MutableMapping[str, Any]) -> ASGIRequest:
    """The request as Django's middleware and views read it (META, COOKIES, host, scheme), without
    its body (the lean paths read that themselves)."""
    return ASGIRequest(dict(scope), io.BytesIO())


class _Middleware:
    """The middleware instances the lean paths run, made once per process. SecurityMiddleware
    reads its settings when made, so a settings change (override_settings in tests) makes them
    again; making them per request cost 20 us (MiddlewareMixin inspects get_response each time)."""

    def __init__(self) -> None:
        self.locale = LocaleMiddleware(_unused)
        self.responses = (XFrameOptionsMiddleware(_unused), CommonMiddleware(_unused), self.locale)
        self.security = SecurityMiddleware(_unused)


_middleware: _Middleware | None = None


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    global _middleware
    _middleware = None


def _instances() -> _Middleware:
    global _middleware
    if _middleware is None:
        _middleware = _Middleware()
    return _middleware


def lean_refused(request: ASGIRequest) -> bool:
    """Would Django answer this request otherwise than its view does: a Host outside
    ALLOWED_HOSTS (400), or SecurityMiddleware's HTTPS redirect?"""
    try:
        request.get_host()
    except DisallowedHost:
        return True
    return _instances().security.process_request(request) is not None


def lean_response(request: ASGIRequest, response: HttpResponse) -> HttpResponse:
    """``response`` (the view's) as it leaves KNOWN_MIDDLEWARE: the steps that add headers to a
    plain answer — the language (LocaleMiddleware), X-Frame-Options, Content-Length, the security
    headers — run by Django's own middleware classes."""
    middleware = _instances()
    middleware.locale.process_request(request)
    try:
        for step in middleware.responses:
            step.process_response(request, response)
        middleware.security.process_response(request, response)
    finally:
        translation.deactivate()
    return response


async def lean_send(response: HttpResponse, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Send ``response`` as Django's ASGI handler would (a plain, non-streaming answer)."""
    headers = [(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
