"""Objects as GeoJSON features for the event log (all fields; redaction happens per viewer)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib.gis.geos import GEOSGeometry

from command.layers import LAYERS
from command.models import Camera, Incident, Report, Worker


def _geometry(geom: GEOSGeometry | None) -> dict[str, Any] | None:
    """GeoJSON of a geometry, built from its coordinates: ``geom.json`` goes through GDAL and
    looked the SRS up on every event (py-spy: ``import_epsg`` on the report hot path)."""
    if geom is None:
        return None
    kind = geom.geom_type
    if kind in ("Point", "LineString", "Polygon"):
        return {"type": kind, "coordinates": _lists(getattr(geom, "coords"))}  # noqa: B009 - not typed by the stubs
    return dict(json.loads(geom.json))  # multi-geometries: rare in events


def _lists(coords: Any) -> Any:
    if coords and isinstance(coords[0], (int, float)):
        return list(coords)
    return [_lists(c) for c in coords]


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
