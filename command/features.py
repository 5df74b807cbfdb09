"""Objects as GeoJSON features for the event log: every field, personal data masked (the log never
holds it unmasked, command/eventlog.py); what else a viewer may not see is redacted per viewer."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib.gis.geos import GEOSGeometry

from command.layers import LAYERS, mask_properties
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


def _properties(obj: Any, layer_name: str, masked: bool = True) -> dict[str, Any]:
    layer = LAYERS[layer_name]
    properties = {name: _value(getattr(obj, name)) for name in layer.all_fields}
    return mask_properties(layer_name, properties) if masked else properties


def _layer_geometry(obj: Any, layer_name: str) -> GEOSGeometry | None:
    value = obj
    for part in LAYERS[layer_name].geometry.split("__"):  # "building__footprint": a related row's
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def feature_of(obj: Any, layer_name: str, *, masked: bool = True) -> dict[str, Any]:
    """``obj`` as a feature of ``layer_name``: the layer's geometry and every field it declares,
    personal data masked (as the event log holds it); ``masked=False`` for a reader that hands
    it on through a viewer's grant (``command.layers.redact`` masks what that grant masks)."""
    return {
        "id": str(obj.pk),
        "geometry": _geometry(_layer_geometry(obj, layer_name)),
        "properties": _properties(obj, layer_name, masked),
    }


def incident_feature(incident: Incident) -> dict[str, Any]:
    return feature_of(incident, "incidents")


def report_feature(report: Report) -> dict[str, Any]:
    return feature_of(report, "reports")


def worker_feature(worker: Worker) -> dict[str, Any]:
    return feature_of(worker, "workers")


def camera_feature(camera: Camera) -> dict[str, Any]:
    return feature_of(camera, "cameras")
