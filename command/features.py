"""Objects as GeoJSON features for the event log (all fields; redaction happens per viewer)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib.gis.geos import GEOSGeometry

from command.layers import LAYERS
from command.models import Camera, Incident, Report, Worker


def _geometry(geom: GEOSGeometry | None) -> dict[str, Any] | None:
    if geom is None:
        return None
    return json.loads(geom.json)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "hex") and not isinstance(value, (bytes, str, int, float)):
        return str(value)
    return value


def _properties(obj: Any, layer_name: str) -> dict[str, Any]:
    layer = LAYERS[layer_name]
    return {name: _value(getattr(obj, name)) for name in (*layer.public_fields, *layer.sensitive_fields)}


def incident_feature(incident: Incident) -> dict[str, Any]:
    return {
        "id": str(incident.pk),
        "geometry": _geometry(incident.location),
        "properties": _properties(incident, "incidents"),
    }


def report_feature(report: Report) -> dict[str, Any]:
    return {"id": str(report.pk), "geometry": _geometry(report.location), "properties": _properties(report, "reports")}


def worker_feature(worker: Worker) -> dict[str, Any]:
    return {
        "id": str(worker.pk),
        "geometry": _geometry(worker.last_position),
        "properties": _properties(worker, "workers"),
    }


def camera_feature(camera: Camera) -> dict[str, Any]:
    return {"id": str(camera.pk), "geometry": _geometry(camera.location), "properties": _properties(camera, "cameras")}
