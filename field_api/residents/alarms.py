"""The home-alarm webhook and the operator's view of an alarm incident's devices.

``POST /api/v1/alarms/webhook/``: a device's signed call (command/services/alarms.py says how it
is signed and checked). No login: the signature is the credential. Answers: 201 an alarm taken
(with its incident), 200 a heartbeat, 400 a body or timestamp it cannot take, 401 an unknown
device or a wrong signature (one answer), 409 a replay, each with a reason.
``GET /api/v1/incidents/<id>/alarms/``: for the operator, the devices that raised the incident,
their household and emergency contact (personal data: each unmasked view is logged).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command.resident_selectors import alarm_devices_for_incident
from command.services.alarms import AlarmOutcome, AlarmRefused, alarm_call_receive

REFUSAL_STATUS = {"signature": 401, "timestamp": 400, "body": 400, "replay": 409}


WEBHOOK_HEADERS = ("X-GC-Device", "X-GC-Timestamp", "X-GC-Signature")


def alarm_answer(outcome: AlarmOutcome) -> JsonResponse:
    """The answer to a call taken (both paths: this view and the lean one, field_api/residents/fast.py)."""
    if outcome.report_id is None:
        return JsonResponse({"type": "heartbeat", "device": outcome.device_code, "status": outcome.status})
    return JsonResponse(
        {
            "type": "alarm",
            "device": outcome.device_code,
            "status": outcome.status,
            "report_id": outcome.report_id,
            "incident_id": outcome.incident_id,
        },
        status=201,
    )


@csrf_exempt
@require_POST
def alarm_webhook(request: HttpRequest) -> JsonResponse:
    device, timestamp, signature = (request.headers.get(name, "") for name in WEBHOOK_HEADERS)
    try:
        outcome = alarm_call_receive(device_code=device, timestamp=timestamp, signature=signature, body=request.body)
    except AlarmRefused as refused:
        return JsonResponse({"error": refused.reason, "detail": str(refused)}, status=REFUSAL_STATUS[refused.reason])
    return alarm_answer(outcome)


class IncidentAlarmsView(APIView):
    """The alarm devices of an incident, their household and emergency contact."""

    @extend_schema(
        responses=inline_serializer(
            "IncidentAlarms",
            {
                "incident_id": serializers.IntegerField(),
                "devices": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request: Request, pk: int) -> Response:
        shown = alarm_devices_for_incident(request.user, pk)
        if shown is None:
            raise NotFound()
        return Response({"incident_id": pk, "devices": shown})
