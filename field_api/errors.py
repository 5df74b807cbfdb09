"""Every bad input answers 4xx with a reason a person can act on, never 500.

DRF handles its own exceptions; this handler adds Django's: a ``ValidationError`` from a
service (400, per field when the service names fields), oversized or overfull uploads (413 /
400), a report id reused for other content (409, from the view), and an unreachable database
(503 with Retry-After: not the client's fault, and worth retrying).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

DATABASE_RETRY_AFTER_SECONDS = 5


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def validation_error_detail(exc: DjangoValidationError) -> dict[str, Any]:
    if hasattr(exc, "error_dict"):
        return {name: [str(m) for m in ValidationErrorList(errors)] for name, errors in exc.error_dict.items()}
    return {"detail": " ".join(str(m) for m in exc.messages), "errors": [str(m) for m in exc.messages]}


def ValidationErrorList(errors: list[DjangoValidationError]) -> list[str]:
    return [message for error in errors for message in error.messages]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": _("The request body is too large. Send fewer or smaller photos.")},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFilesSent):
        max_files = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return Response(
            {"photos": [_("Too many files: at most %(n)s per request.") % {"n": max_files}]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, TooManyFieldsSent):
        return Response({"detail": _("Too many form fields in one request.")}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is away (restarting, failing over): the phone keeps the report and sends it
        # again; its client_id makes the retry store it once.
        return Response(
            {"detail": _("The database cannot be reached right now. Send it again shortly; it will be stored once.")},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    return drf_exception_handler(exc, context)
