"""Under /api/ and /open311/ every answer is JSON: Django's own HTML error pages (a path that
matches no route, a CSRF failure, a bad request caught before the view) become JSON with the
same status and a plain reason."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/open311/")


def _reason(status: int) -> str:
    reasons = {
        400: _("Bad request."),
        403: _("Forbidden."),
        404: _("Not found: no such resource or address."),
        405: _("Method not allowed."),
        413: _("The request body is too large."),
    }
    return reasons.get(status, _("The request could not be served."))


def api_json_errors(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if (
            request.path.startswith(API_PREFIXES)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            reason = _reason(response.status_code)
            # Open311 clients expect its error form: a list of {code, description}.
            body: object = (
                [{"code": response.status_code, "description": reason}]
                if request.path.startswith("/open311/")
                else {"detail": reason}
            )
            replacement = HttpResponse(
                json.dumps(body, ensure_ascii=False),
                status=response.status_code,
                content_type="application/json",
            )
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response

    def process_exception(request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A value the database refuses (a NUL byte in text, a number beyond its column) came from
        the client: a 400 with that reason, for every view, instead of a 500. The statement failed,
        so nothing of it was written."""
        if not isinstance(exception, DataError):
            return None
        logger.warning("refused a value the database cannot take on %s: %s", request.path, exception)
        reason = _("The request holds a value the database cannot take (a NUL byte, or a number out of range).")
        if request.path.startswith("/open311/"):
            body: object = [{"code": 400, "description": reason}]
        else:
            body = {"detail": reason}
        return HttpResponse(json.dumps(body, ensure_ascii=False), status=400, content_type="application/json")

    middleware.process_exception = process_exception  # type: ignore[attr-defined]
    return middleware
