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
from typing import Any, cast

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg.rows import class_row, dict_row

from command import db_async
from command.event_payloads import payload_validate
from command.eventlog import event_append, event_record, wakes_send
from command.features import feature_of
from command.models import AlarmDevice, AlarmSignatureSeen, Building, Event, Household, Report
from command.services.report_rows import CONSTANTS, INPUT_NAMES, input_row_sql, sql_attributes, sql_field
from command.services.reports import report_params

SECRET_BYTES = 32
BODY_MAX_BYTES = 4096
# The category each kind of device reports (command/reference.py: all priority 1).
DEVICE_EVENT = "alarm_device.updated"
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


# ---------------------------------------------------------------------------------------------
# ruff: noqa: S608, RUF009 -- statements built from the models and the declared shapes; fields carry their SQL type
# A webhook call. Two statements, the same on both paths (Django's view below, and the lean path
# on Daphne's event loop, field_api/residents/fast.py): DEVICE_SQL reads the device with its
# building; Python checks the call (alarm_call_check: the signature, the timestamp window, the
# body) and builds what the call writes; RECEIVE_SQL runs ``gc_alarm_receive``
# (command/services/alarm_function.py), which, in one transaction, locks the device and re-checks
# what the caller read of it, stores the signature (a replay stops there), submits the alarm's
# report (``gc_report_submit``, as a phone's report: incident, routing, both events), records the
# AlarmEvent, updates the device and appends its ``alarm_device.updated`` when its status changes.


@dataclass(frozen=True, slots=True)
class AlarmInput:
    """One checked call as ``gc_alarm_receive`` takes it (the composite type ``gc_alarm_input``)."""

    device_id: int = sql_field("bigint")
    # What the caller read of the device: the function refuses ('changed') when the row differs
    # (a rotation, a revocation, another call in between), so the event below is never stale.
    secret: str = sql_field("text")
    seen_status: str = sql_field("text")
    seen_battery: int | None = sql_field("integer")
    signature: str = sql_field("text")
    sent_at: int = sql_field("bigint")
    kind: str = sql_field("text")  # alarm | heartbeat
    battery: int | None = sql_field("integer")  # NULL: unchanged
    status: str = sql_field("text")  # the device's status after the call
    received_at: datetime = sql_field("timestamptz")
    device_event: Any = sql_field("jsonb")  # the device's feature after the call (when its status changes)


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """What ``gc_alarm_receive`` answers (the composite type ``gc_alarm_result``), read by name."""

    status: str = sql_field("text")  # taken | replay | changed
    report_id: int | None = sql_field("bigint")
    incident_id: int | None = sql_field("bigint")
    events: Any = sql_field("jsonb")  # the wire form of the report's events (an alarm)
    device_seq: int | None = sql_field("bigint")  # the seq of the device's event, when appended


ALARM_INPUT_TYPE = "gc_alarm_input"
ALARM_RESULT_TYPE = "gc_alarm_result"
_DEVICE = AlarmDevice._meta
DEVICE_COLUMNS = tuple(f.column for f in _DEVICE.concrete_fields)
# The device by its code, with its household's building and footprint (the alarm's place and the
# event's geometry); the Django path adds FOR UPDATE OF d inside its transaction.
DEVICE_SQL = (
    f"SELECT {', '.join(f'd.{c}' for c in DEVICE_COLUMNS)}, h.building_id, ST_AsHEXEWKB(b.footprint) AS footprint, "
    # the alarm's place: a point inside the building (GEOS's point on surface, as PostGIS computes it)
    "ST_X(ST_PointOnSurface(b.footprint)) AS lon, ST_Y(ST_PointOnSurface(b.footprint)) AS lat "
    f"FROM {_DEVICE.db_table} d JOIN {Household._meta.db_table} h ON h.id = d.household_id "
    f"JOIN {Building._meta.db_table} b ON b.id = h.building_id "
    "WHERE d.code = %(code)s AND d.revoked_at IS NULL"
)
_ALARM_ROW = f"ROW({', '.join(f'%(alarm_{n})s' for n, _k in sql_attributes(AlarmInput))})::{ALARM_INPUT_TYPE}"
RECEIVE_SQL = (
    f"SELECT * FROM gc_alarm_receive({_ALARM_ROW}, "
    f"{input_row_sql({n: f'%({n})s' for n in INPUT_NAMES})}, {', '.join(f'%({n})s' for n in CONSTANTS)})"
)
alarm_row = class_row(AlarmRow)


class AlarmChanged(Exception):
    """The device row changed between the read and the write (the lean path hands the call to
    Django, whose read holds the row): nothing was written."""


@dataclass(frozen=True)
class AlarmOutcome:
    device_code: str
    kind: str  # "alarm" | "heartbeat"
    status: str  # the device's status after the call
    report_id: int | None = None
    incident_id: int | None = None


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


def _device_of(row: dict[str, Any]) -> AlarmDevice:
    """The device (with its household and building footprint) from a row of DEVICE_SQL."""
    device = AlarmDevice(**{f.attname: row[f.column] for f in _DEVICE.concrete_fields})
    device._state.adding = False
    device._state.db = "default"
    household = Household(pk=row["household_id"], building_id=row["building_id"])
    device.household = household
    return device


def _with_footprint(device: AlarmDevice, row: dict[str, Any]) -> AlarmDevice:
    """The device's building with its footprint (the event's geometry), parsed only for an event."""
    device.household.building = Building(pk=row["building_id"], footprint=cast(Polygon, GEOSGeometry(row["footprint"])))
    return device


@dataclass(frozen=True)
class AlarmCall:
    """A call that passed the checks, and what it writes."""

    device: AlarmDevice  # as it will be after the call
    kind: str
    params: dict[str, Any]  # RECEIVE_SQL's


def alarm_call_check(
    row: dict[str, Any] | None, *, device_code: str, timestamp: str, signature: str, body: bytes, now: datetime
) -> AlarmCall:
    """Check one call against the device's row (DEVICE_SQL; None: no such live device): the
    signature, the timestamp window, the body, in this order; raises AlarmRefused. Returns the
    statement's parameters: the device after the call, its event, and the alarm's report."""
    signature = signature.removeprefix("sha256=").strip().lower()
    expected = alarm_signature(row["secret"] if row else "x" * 64, timestamp, body)
    if row is None or len(signature) != 64 or not hmac.compare_digest(expected, signature):
        raise AlarmRefused("signature", _("Unknown device or wrong signature."))
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
    device = _device_of(row)
    seen_status, seen_battery = device.status, device.battery
    device.last_heartbeat_at = now
    if battery is not None:
        device.battery = battery
    if kind == "alarm":
        device.status = AlarmDevice.Status.ALARM
        device.last_alarm_at = now
    elif device.status == AlarmDevice.Status.OFFLINE:
        device.status = AlarmDevice.Status.ONLINE
    event = None
    if device.status != seen_status:
        feature = feature_of(_with_footprint(device, row), "alarm_devices")
        event = json.dumps(payload_validate(DEVICE_EVENT, "alarm_devices", feature))
    alarm = AlarmInput(
        device_id=device.pk,
        secret=row["secret"],
        seen_status=seen_status,
        seen_battery=seen_battery,
        signature=signature,
        sent_at=sent_at,
        kind=kind,
        battery=battery,
        status=device.status,
        received_at=now,
        device_event=event,
    )
    params = {f"alarm_{n}": getattr(alarm, n) for n, _k in sql_attributes(AlarmInput)}
    if kind == "alarm":
        params.update(_report_params(device, (row["lon"], row["lat"]), sent_at=sent_at, signature=signature, now=now))
    else:
        params.update(dict.fromkeys((*INPUT_NAMES, *CONSTANTS)))  # no report: gc_report_input is NULL
    return AlarmCall(device, kind, params)


def _report_params(
    device: AlarmDevice, lon_lat: tuple[float, float], *, sent_at: int, signature: str, now: datetime
) -> dict[str, Any]:
    """gc_report_input's parameters of the alarm's report. An alarm goes in as a report (source
    ``alarm``) at a point inside the household's building (``lon_lat``, DEVICE_SQL's), in the
    category of the device's kind; its client id is the signed call's, so it is stored once."""
    return report_params(
        reporter_id=None,
        client_id=uuid.uuid5(uuid.NAMESPACE_URL, f"gridcommand:alarm:{device.pk}:{signature}"),
        category_code=KIND_CATEGORIES[device.kind],
        lon_lat=lon_lat,
        source=Report.Source.ALARM,
        received_at=now,
        note=_("%(kind)s from device %(code)s") % {"kind": device.get_kind_display(), "code": device.code},
        client_time=datetime.fromtimestamp(sent_at, UTC),
    )


def alarm_call_result(call: AlarmCall, row: AlarmRow) -> tuple[AlarmOutcome, list[dict[str, Any]]]:
    """The outcome of a call ``gc_alarm_receive`` answered, and the wires of its events (to wake the
    screens with after commit). Raises AlarmRefused (a replay) or AlarmChanged: nothing written."""
    if row.status == "replay":
        raise AlarmRefused("replay", _("This call was received before (a replay); a new call needs a new signature."))
    if row.status != "taken":
        raise AlarmChanged(row.status)
    wires = [*(json.loads(row.events) if isinstance(row.events, str) else row.events or [])]
    if row.device_seq is not None:
        params = call.params
        event = Event(
            seq=row.device_seq,
            kind=DEVICE_EVENT,
            layer="alarm_devices",
            object_id=str(call.device.pk),
            actor_id=None,
            payload=json.loads(params["alarm_device_event"]),
            created_at=params["alarm_received_at"],
        )
        wires.append(event_record(event))
    device = call.device
    return AlarmOutcome(device.code, call.kind, device.status, row.report_id, row.incident_id), wires


def _code_refused(device_code: str, timestamp: str) -> bool:
    return not device_code or len(device_code) > 32 or len(timestamp) > 12


def alarm_call_receive(
    *, device_code: str, timestamp: str, signature: str, body: bytes, now: datetime | None = None
) -> AlarmOutcome:
    """Check and act on one webhook call (see the module's docstring), through Django's connection."""
    now = now or timezone.now()
    with transaction.atomic():
        found = None
        if not _code_refused(device_code, timestamp):
            with connection.cursor() as cursor:
                cursor.execute(DEVICE_SQL + " FOR UPDATE OF d", {"code": device_code})
                fetched = cursor.fetchone()
                if fetched is not None:
                    found = dict(zip([c.name for c in cursor.description], fetched, strict=True))
        call = alarm_call_check(
            found, device_code=device_code, timestamp=timestamp, signature=signature, body=body, now=now
        )
        with connection.cursor() as cursor:
            cursor.execute(RECEIVE_SQL, call.params)
            answered = cursor.fetchone()
        assert answered is not None
        outcome, wires = alarm_call_result(call, AlarmRow(*answered))
        transaction.on_commit(lambda: wakes_send(wires))
        return outcome


async def alarm_call_receive_async(*, device_code: str, timestamp: str, signature: str, body: bytes) -> AlarmOutcome:
    """``alarm_call_receive`` on the running event loop (command.db_async): the same statements
    and checks, two round trips. Raises AlarmRefused or AlarmChanged, having written nothing."""
    now = timezone.now()
    found = None
    async with (await db_async.pool()).connection() as conn:
        if not _code_refused(device_code, timestamp):
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(DEVICE_SQL, {"code": device_code})
            found = await cursor.fetchone()
        call = alarm_call_check(
            found, device_code=device_code, timestamp=timestamp, signature=signature, body=body, now=now
        )
        receiver = conn.cursor(row_factory=alarm_row)
        await receiver.execute(RECEIVE_SQL, call.params)
        answered = await receiver.fetchone()
    assert answered is not None
    outcome, wires = alarm_call_result(call, answered)
    wakes_send(wires)
    return outcome


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
