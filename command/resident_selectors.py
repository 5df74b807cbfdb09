"""Reads of the resident services, through the one access policy (command.layers)."""

from __future__ import annotations

from typing import Any

from command.features import feature_of
from command.layers import layer_access_log, layers_for_user, redact
from command.models import AlarmDevice, AlarmEvent, Incident

ALARM_PURPOSE = "alarm response"


def alarm_devices_for_incident(user: Any, incident_id: int, *, channel: str = "rest") -> list[dict[str, Any]] | None:
    """The alarm devices whose alarms went into the incident, each with its household, as
    ``user`` may see them (the ``alarm_devices`` and ``households`` layers' grants: the wearer, the
    emergency contact, the head of household and phone only with personal-data access, and then
    logged). None when the user may not see the incident or the devices: "not found" alike."""
    # An alarm is answered by calling its contact: the operator sees them unmasked, logged with
    # this purpose (roles that may not unmask get them masked; command/layers.py).
    grants = layers_for_user(user, purpose=ALARM_PURPOSE)
    device_grant, household_grant = grants.get("alarm_devices"), grants.get("households")
    if device_grant is None or "incidents" not in grants or not Incident.objects.filter(pk=incident_id).exists():
        return None
    alarms = (
        AlarmEvent.objects.filter(report__incident_id=incident_id)
        .select_related("device__household__building")
        .order_by("received_at")
    )
    devices: dict[int, dict[str, Any]] = {}
    for alarm in alarms:
        device: AlarmDevice = alarm.device
        entry = devices.get(device.pk)
        if entry is None:
            household = feature_of(device.household, "households", masked=False)["properties"]
            device_properties = feature_of(device, "alarm_devices", masked=False)["properties"]
            entry = devices[device.pk] = {
                "device": redact("alarm_devices", device_properties, device_grant),
                "household": redact("households", household, household_grant),
                "address": device.household.building.address,
                "alarms": [],
            }
        entry["alarms"].append(
            {"kind": alarm.kind, "received_at": alarm.received_at.isoformat(), "report_id": alarm.report_id}
        )
    shown = list(devices.values())
    if shown:
        ids = [d["device"]["id"] for d in shown]
        detail = f"incident {incident_id}"
        layer_access_log(user=user, channel=channel, grant=device_grant, object_ids=ids, detail=detail)
        if household_grant is not None:
            households = [d["household"]["id"] for d in shown]
            layer_access_log(user=user, channel=channel, grant=household_grant, object_ids=households, detail=detail)
    return shown
