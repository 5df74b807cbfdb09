"""The lean path of the home-alarm webhook, in front of Django (command/asgi.py), as
field_api/fast.py is for a phone's report.

``POST /api/v1/alarms/webhook/`` through Django costs a thread, a request object and Django's
middleware before the service runs; an alarm's time to the wall was 2.3x a report's
(bench/alarm.py). Here the call is taken on Daphne's event loop with ``alarm_call_receive_async``:
the same statements (the device's row, then ``gc_alarm_receive``), the same checks in the same
order (``alarm_call_check``: the signature, the timestamp window, the body; the replay store in
the function), the same answer (``alarm_answer``) with the headers Django's middleware would add.

Anything else goes to Django unchanged, with the body already read: other methods, a query
string, a missing or repeated signing header, a body longer than the service takes or without a
length, and **every call the checks refuse** — so each 4xx comes from the one Django view with its
reason in the request's language; the lean path writes nothing before it answers 200/201.
``GRIDCOMMAND_FAST_PATHS=0`` turns it off.
"""

from __future__ import annotations

import logging
from functools import cache

from django.urls import reverse

from command.lean import lean_paths_on, lean_refused, lean_request, lean_response, lean_send
from command.services.alarms import BODY_MAX_BYTES, AlarmChanged, AlarmRefused, alarm_call_receive_async
from field_api.fast import ASGIApp, Receive, Scope, Send, _body, _headers, _int, _replaying
from field_api.residents.alarms import WEBHOOK_HEADERS, alarm_answer

logger = logging.getLogger(__name__)


@cache
def _path() -> str:
    return reverse("residents:alarm-webhook")


def alarm_fast_app(fallback: ASGIApp) -> ASGIApp:
    """``fallback`` (Django) behind the lean alarm webhook."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("query_string")
            or scope["path"] != _path()
            or not lean_paths_on()
        ):
            return await fallback(scope, receive, send)
        headers = _headers(scope)
        signing = [headers.get(name.lower().encode(), b"") for name in WEBHOOK_HEADERS]
        length = _int(headers.get(b"content-length"))
        if not all(signing) or length is None or length > BODY_MAX_BYTES:
            return await fallback(scope, receive, send)
        body, more = await _body(receive, length)
        answer = None
        if not more:
            try:
                request = lean_request(scope)
                if not lean_refused(request):  # a disallowed Host, the HTTPS redirect: Django answers
                    device, timestamp, signature = (value.decode("latin-1") for value in signing)
                    outcome = await alarm_call_receive_async(
                        device_code=device, timestamp=timestamp, signature=signature, body=body
                    )
                    answer = lean_response(request, alarm_answer(outcome))
            except (AlarmRefused, AlarmChanged):
                answer = None  # nothing written: Django checks again and answers with its reason
            except Exception:
                logger.exception("lean alarm path failed; handing the call to Django")
                answer = None
        if answer is None:
            return await fallback(scope, _replaying(body, more, receive), send)
        await lean_send(answer, send)

    return app
