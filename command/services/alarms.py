"""Home alarms: devices registered to a household, their signed webhook calls (an alarm or a
heartbeat), and the periodic check that marks silent devices offline.

A call is ``POST`` with headers ``X-GC-Device`` (the device code), ``X-GC-Timestamp`` (Unix
seconds) and ``X-GC-Signature: sha256=<hex>``, the HMAC-SHA256 with the device's secret of
``<timestamp>.<body>``; the body is JSON ``{"type": "alarm"|"heartbeat", "battery": 0-100}``.
``alarm_call_receive`` checks, in this order, that the device is known and live and the
signature right (one answer for both: ``AlarmRefused("signature")``), that the timestamp is
within ``ALARM_TIMESTAMP_WINDOW_SECONDS`` of now, and that this signature was not accepted before
(``AlarmSignatureSeen``, unique per device, kept for twice the window): a replay is refused.
All in one transaction with what the call does, so a refused or failed call leaves nothing.

An alarm goes in as a report (source ``alarm``) through the report service at the household's
building: the category of the device's kind (an SOS button: ``emergency_call``, priority 1), so it
opens a top-priority incident there (or joins the one already open) and reaches the screens as
every report does; the device's own ``alarm_device.updated`` event follows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import feature_of
from command.models import AlarmDevice, AlarmEvent, AlarmSignatureSeen, Category, Household, Report
from command.services.reports import report_submit

SECRET_BYTES = 32
BODY_MAX_BYTES = 4096
# The category each kind of device reports (command/reference.py: all priority 1).
KIND_CATEGORIES = {"sos": "emergency_call", "gas": "gas_alarm", "smoke": "fire_hazard"}
_CHECK_LOCK = 0x6763_616C_6172  # pg_try_advisory_xact_lock: one offline check at a time ("gcalar")


class AlarmRefused(Exception):
    """The call is refused; ``reason`` is one of ``signature`` (unknown/revoked device or a wrong
    signature: one answer), ``timestamp``, ``replay``, ``body``; ``str()`` says it to a person."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def alarm_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a device sends in ``X-GC-Signature`` (after ``sha256=``)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _announce(device: AlarmDevice, actor_id: int | None = None) -> None:
    event_append(
        kind="alarm_device.updated",
        layer="alarm_devices",
        object_id=device.pk,
        actor_id=actor_id,
        payload=feature_of(device, "alarm_devices"),
    )


def _device_check(*, kind: str, heartbeat_seconds: int, contact_phone: str) -> None:
    errors: dict[str, str] = {}
    if kind not in AlarmDevice.Kind.values:
        errors["kind"] = _("The kind must be one of: %(kinds)s.") % {"kinds": ", ".join(AlarmDevice.Kind.values)}
    if not 10 <= heartbeat_seconds <= 86400:
        errors["heartbeat_seconds"] = _("The heartbeat interval must be between 10 seconds and one day.")
    if contact_phone and not all(ch.isdigit() or ch in "+- " for ch in contact_phone):
        errors["contact_phone"] = _("A phone number has digits, spaces, + and - only.")
    if errors:
        raise ValidationError(errors)


def alarm_device_register(
    *,
    actor: Any,
    code: str,
    kind: str,
    household_id: int,
    wearer_name: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    heartbeat_seconds: int = 300,
) -> tuple[AlarmDevice, str]:
    """Register a device to a household; returns it and its secret (shown once: give it to the
    installer, it is what the device signs with)."""
    code = (code or "").strip()
    if not code or len(code) > 32:
        raise ValidationError({"code": _("Give the device code printed on the device (at most 32 characters).")})
    _device_check(kind=kind, heartbeat_seconds=heartbeat_seconds, contact_phone=contact_phone)
    secret = secrets.token_hex(SECRET_BYTES)
    now = timezone.now()
    with transaction.atomic():
        household = Household.objects.select_related("building").filter(pk=household_id).first()
        if household is None:
            raise ValidationError({"household_id": _("No household %(id)s.") % {"id": household_id}})
        if AlarmDevice.objects.filter(code=code).exists():
            raise ValidationError({"code": _("A device with this code is already registered.")})
        device = AlarmDevice.objects.create(
            code=code,
            kind=kind,
            household=household,
            secret=secret,
            wearer_name=wearer_name[:64],
            contact_name=contact_name[:64],
            contact_phone=contact_phone[:32],
            heartbeat_seconds=heartbeat_seconds,
            registered_at=now,
            last_heartbeat_at=now,
        )
        _announce(device, getattr(actor, "pk", None))
    return device, secret


def alarm_device_rotate_secret(*, actor: Any, device_id: int) -> tuple[AlarmDevice, str]:
    secret = secrets.token_hex(SECRET_BYTES)
    with transaction.atomic():
        device = AlarmDevice.objects.select_for_update().select_related("household").get(pk=device_id)
        device.secret = secret
        device.save(update_fields=["secret"])
        _announce(device, getattr(actor, "pk", None))
    return device, secret


def alarm_device_revoke(*, actor: Any, device_id: int) -> AlarmDevice:
    with transaction.atomic():
        device = AlarmDevice.objects.select_for_update().select_related("household").get(pk=device_id)
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.save(update_fields=["revoked_at"])
            _announce(device, getattr(actor, "pk", None))
    return device


@dataclass(frozen=True)
class AlarmOutcome:
    device: AlarmDevice
    kind: str  # "alarm" | "heartbeat"
    report: Report | None = None


def _parse_body(body: bytes) -> tuple[str, int | None]:
    if len(body) > BODY_MAX_BYTES:
        raise AlarmRefused("body", _("The body is longer than %(max)s bytes.") % {"max": BODY_MAX_BYTES})
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AlarmRefused("body", _("The body is not JSON.")) from None
    if not isinstance(data, dict) or data.get("type") not in ("alarm", "heartbeat"):
        raise AlarmRefused("body", _('The body must be a JSON object with "type": "alarm" or "heartbeat".'))
    battery = data.get("battery")
    if battery is not None and (isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100):
        raise AlarmRefused("body", _('"battery" must be a whole number from 0 to 100.'))
    return str(data["type"]), battery


def alarm_call_receive(
    *, device_code: str, timestamp: str, signature: str, body: bytes, now: datetime | None = None
) -> AlarmOutcome:
    """Check and act on one webhook call (see the module's docstring)."""
    now = now or timezone.now()
    signature = signature.removeprefix("sha256=").strip().lower()
    refused = AlarmRefused("signature", _("Unknown device or wrong signature."))
    if not device_code or len(device_code) > 32 or len(signature) != 64 or len(timestamp) > 12:
        raise refused
    with transaction.atomic():
        device = (
            AlarmDevice.objects.select_for_update(of=("self",))
            .select_related("household__building")  # the alarm's place and the event's geometry: no more queries
            .filter(code=device_code, revoked_at__isnull=True)
            .first()
        )
        expected = alarm_signature(device.secret if device else "x" * 64, timestamp, body)
        if device is None or not hmac.compare_digest(expected, signature):
            raise refused
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise AlarmRefused("timestamp", _("X-GC-Timestamp must be Unix seconds.")) from None
        window = settings.ALARM_TIMESTAMP_WINDOW_SECONDS
        if abs(now.timestamp() - sent_at) > window:
            raise AlarmRefused(
                "timestamp",
                _("The timestamp is more than %(window)s seconds from the server's clock; check the device's clock.")
                % {"window": window},
            )
        kind, battery = _parse_body(body)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO command_alarmsignatureseen (device_id, signature, timestamp, received_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (device_id, signature) DO NOTHING",
                [device.pk, signature, sent_at, now],
            )
            if cursor.rowcount != 1:
                raise AlarmRefused(
                    "replay", _("This call was received before (a replay); a new call needs a new signature.")
                )
        device.last_heartbeat_at = now
        if battery is not None:
            device.battery = battery
        fields = ["last_heartbeat_at", "battery"]
        report = None
        if kind == "alarm":
            report = _alarm_report(device, sent_at=sent_at, signature=signature, now=now)
            device.status = AlarmDevice.Status.ALARM
            device.last_alarm_at = now
            fields += ["status", "last_alarm_at"]
        elif device.status == AlarmDevice.Status.OFFLINE:
            device.status = AlarmDevice.Status.ONLINE
            fields.append("status")
        device.save(update_fields=fields)
        if "status" in fields:
            _announce(device)
        return AlarmOutcome(device, kind, report)


def _alarm_report(device: AlarmDevice, *, sent_at: int, signature: str, now: datetime) -> Report:
    building = device.household.building
    location = building.footprint.point_on_surface
    category = Category.objects.get(code=KIND_CATEGORIES[device.kind])
    result = report_submit(
        reporter_id=None,
        client_id=uuid.uuid5(uuid.NAMESPACE_URL, f"gridcommand:alarm:{device.pk}:{signature}"),
        category=category,
        location=Point(location.x, location.y, srid=4326),
        note=_("%(kind)s from device %(code)s") % {"kind": device.get_kind_display(), "code": device.code},
        client_time=datetime.fromtimestamp(sent_at, UTC),
        source=Report.Source.ALARM,
        received_at=now,
    )
    AlarmEvent.objects.create(
        device=device,
        kind=device.kind,
        received_at=now,
        device_time=datetime.fromtimestamp(sent_at, UTC),
        report=result.report,
    )
    return result.report


def alarm_device_clear(*, actor: Any, device_id: int) -> AlarmDevice:
    """The operator has dealt with the alarm: the device shows online again (the incident
    follows its own life). A device in any other state is left as it is."""
    from command.services.incidents import DISPATCH_PERMISSION

    if actor is None or not actor.is_active or not actor.has_perm(DISPATCH_PERMISSION):
        raise PermissionDenied(_("Only operators clear alarms."))
    with transaction.atomic():
        device = AlarmDevice.objects.select_for_update().select_related("household").filter(pk=device_id).first()
        if device is None:
            raise AlarmDevice.DoesNotExist(device_id)
        if device.status == AlarmDevice.Status.ALARM:
            device.status = AlarmDevice.Status.ONLINE
            device.save(update_fields=["status"])
            _announce(device, actor.pk)
    return device


def alarm_devices_check(*, now: datetime | None = None) -> list[AlarmDevice]:
    """Mark offline each live device whose last call is older than its heartbeat interval times
    ``ALARM_MISSED_HEARTBEATS``, with its ``alarm_device.updated`` event; forget accepted
    signatures older than twice the timestamp window. Safe to run from many processes at once
    (one at a time does the work; the others return at once). Returns the devices it marked."""
    now = now or timezone.now()
    missed = settings.ALARM_MISSED_HEARTBEATS
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_CHECK_LOCK])
            row = cursor.fetchone()
            if not row or not row[0]:
                return []
            cursor.execute(
                "SELECT id FROM command_alarmdevice WHERE revoked_at IS NULL AND status IN ('online', 'alarm') "
                "AND last_heartbeat_at < %s - make_interval(secs => heartbeat_seconds * %s) "
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                [now, missed],
            )
            ids = [r[0] for r in cursor.fetchall()]
        silent = list(AlarmDevice.objects.select_related("household").filter(pk__in=ids).order_by("pk"))
        for device in silent:
            device.status = AlarmDevice.Status.OFFLINE
            device.save(update_fields=["status"])
            _announce(device)
        cutoff = now - timedelta(seconds=2 * settings.ALARM_TIMESTAMP_WINDOW_SECONDS)
        AlarmSignatureSeen.objects.filter(received_at__lt=cutoff).delete()
    return silent
