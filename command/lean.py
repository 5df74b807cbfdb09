"""What the lean ASGI paths (field_api/fast.py, maps/fast.py) share: the switch, and the
middleware list whose effect on an answer they reproduce. With another list they step aside and
Django answers everything, so a new middleware can never be silently skipped."""

from __future__ import annotations

from django.conf import settings

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
)


def lean_paths_on() -> bool:
    """``GRIDCOMMAND_FAST_PATHS`` is on and the middleware are the ones the lean paths know."""
    return bool(getattr(settings, "FAST_PATHS", True)) and tuple(settings.MIDDLEWARE) == KNOWN_MIDDLEWARE
