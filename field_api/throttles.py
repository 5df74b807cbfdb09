"""Rate limits per user (429 with Retry-After). Rates come from settings at request time, so a
deployment (or a test) changes them without a restart of the module.

The histories live in Django's default cache, in Redis: every Daphne process counts against the
same limit. When Redis is away (restarting, failing over) the limits let requests through and
log it, rather than refuse phones' reports: Redis carries hints and counters, never the truth."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)

DEFAULT_RATES = {
    "reports": "120/min",
    "pings": "60/min",
    "incident_actions": "120/min",
    "auth": "20/min",
    "reads": "600/min",
}


class ScopedUserThrottle(UserRateThrottle):
    """Per user (per client IP when anonymous), per scope; the view names its scope."""

    scope = "reads"

    def __init__(self) -> None:  # DRF reads THROTTLE_RATES at import time; we read it per request.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_rate(self) -> str | None:
        rates: dict[str, Any] = {**DEFAULT_RATES, **getattr(settings, "FIELD_API_RATES", {})}
        return rates.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            logger.warning("rate limit %s not counted, the cache is unreachable (%s)", self.scope, exc)
            return True


# Set in the ASGI scope by the lean report path (field_api/fast.py) when it counted a request
# and then handed it to the DRF view: the view must not count it twice.
REPORT_COUNTED = "gridcommand.report_counted"


class ReportThrottle(ScopedUserThrottle):
    scope = "reports"

    def allow_request(self, request: Any, view: Any) -> bool:
        asgi_scope = getattr(getattr(request, "_request", request), "scope", None)
        if isinstance(asgi_scope, dict) and asgi_scope.get(REPORT_COUNTED):
            return True
        return super().allow_request(request, view)


class PingThrottle(ScopedUserThrottle):
    scope = "pings"


class IncidentActionThrottle(ScopedUserThrottle):
    scope = "incident_actions"


class AuthThrottle(ScopedUserThrottle):
    scope = "auth"


class ReadThrottle(ScopedUserThrottle):
    scope = "reads"
