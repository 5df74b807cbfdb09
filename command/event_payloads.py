"""Each event kind's payload schema, derived from the layer declarations (command/layers.py).

A feature event (``report.created``, ``incident.updated``, ``worker.moved`` ...) carries the
object as a GeoJSON feature whose ``properties`` are exactly its layer's fields, each typed by
its declared kind (a number, text, a boolean, an ISO 8601 time, a list of text); a field added
to a layer is a field of its events' schema with no other edit. ``incident.overdue`` and
``alarm.acknowledged`` carry the incident's feature too (what happened is the kind).
``layer.reloaded`` carries counts, ``record.deleted`` the id, ``reference.updated`` a team's or category's plain values.
``payload_validate`` is called for every event appended (command.eventlog), so a payload that
does not fit its kind is refused before it is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, create_model

from command.layers import ARRAY, BOOL, LAYERS, NUM, TEXT, TIME, Layer

REFERENCE_LAYER = "reference"  # teams and categories: no map layer, their own event
TIPS_LAYER = "tips"  # supervision tips: no map layer, so no screen receives them
POINTS_LAYER = "points"  # volunteer points: no map layer
NOTICES_LAYER = "notices"  # village notices: no map layer (residents read them on their page)
ACCESS_LAYER = "access"  # access grants (command/services/access.py): no map layer, never delivered

# The kinds of event and the layer each is about (None: any layer).
EVENT_KIND_LAYERS: dict[str, str | None] = {
    "report.created": "reports",
    "incident.created": "incidents",
    "incident.updated": "incidents",
    # The SLA job found the incident open past its due time (once per incident); the payload is
    # the incident's feature, like incident.updated.
    "incident.overdue": "incidents",
    # An operator acknowledged a top-priority incident's alarm on the wall; the incident's feature.
    "alarm.acknowledged": "incidents",
    "worker.moved": "workers",
    "worker.updated": "workers",
    "camera.updated": "cameras",
    "building.updated": "buildings",
    "cell.updated": "cells",
    "road.updated": "roads",
    "household.updated": "households",
    "person.updated": "persons",
    "business.updated": "businesses",
    "campaign.updated": "campaigns",
    "campaign.progress": "campaign_buildings",
    "campaign_target.updated": "campaign_targets",
    "alarm_device.updated": "alarm_devices",
    "request.created": "requests",
    "request.updated": "requests",
    "layer.reloaded": None,
    "record.deleted": None,
    "reference.updated": REFERENCE_LAYER,
    "tip.created": TIPS_LAYER,
    "tip.updated": TIPS_LAYER,
    "hotspot.raised": "hotspots",
    "notice.published": NOTICES_LAYER,
    "points.awarded": POINTS_LAYER,
    "grant.updated": ACCESS_LAYER,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _iso_time(value: str) -> str:
    datetime.fromisoformat(value)  # ValueError: not an ISO 8601 time
    return value


_TYPES: dict[str, Any] = {
    NUM: StrictInt | StrictFloat | None,
    TEXT: StrictStr | None,
    BOOL: StrictBool | None,
    TIME: Annotated[StrictStr, AfterValidator(_iso_time)] | None,
    ARRAY: list[StrictStr] | None,
}


class Geometry(_Strict):
    type: Literal["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"]
    coordinates: list[Any]


# What an incident's update says besides its fields: the action taken, and the reason given
# (redacted from every screen: not a field of the layer).
_INCIDENT_EXTRAS: dict[str, Any] = {
    "action": (
        Literal["accept", "arrive", "resolve", "hand_back", "dispatch", "dispatch_team", "close", "cancel", "priority"]
        | None,
        None,
    ),
    "reason": (StrictStr | None, None),
}


# What a request's event says besides its fields: the step taken.
_REQUEST_EXTRAS: dict[str, Any] = {
    "action": (
        Literal["submit", "triage", "publish", "take", "resolve", "rate", "cancel", "overdue"] | None,
        None,
    ),
}


def _feature_model(layer: Layer) -> type[BaseModel]:
    properties: dict[str, Any] = {f.name: (_TYPES[f.kind], ...) for f in layer.fields}
    if layer.name == "incidents":
        properties.update(_INCIDENT_EXTRAS)
    if layer.name == "requests":
        properties.update(_REQUEST_EXTRAS)
    props = create_model(f"{layer.name}_properties", __base__=_Strict, **properties)
    return create_model(
        f"{layer.name}_feature",
        __base__=_Strict,
        id=(StrictStr, ...),
        geometry=(Geometry | None, ...),
        properties=props,
    )


FEATURES: dict[str, type[BaseModel]] = {name: _feature_model(layer) for name, layer in LAYERS.items()}


class LayerReloaded(_Strict):
    """A layer changed wholesale (an import, a re-derived grid): screens reload it."""

    id: StrictStr
    geometry: None = None
    properties: dict[str, StrictInt]


class _DeletedProperties(_Strict):
    id: StrictInt | StrictStr


class RecordDeleted(_Strict):
    id: StrictStr
    geometry: None = None
    properties: _DeletedProperties


class ReferenceUpdated(_Strict):
    id: StrictStr
    geometry: None = None
    properties: dict[str, StrictStr | StrictInt | StrictFloat | StrictBool | None]


class _TipProperties(_Strict):
    topic: StrictStr
    status: StrictStr


class TipChanged(_Strict):
    """A tip was received or moved on: its topic and status only, never its text."""

    id: StrictStr
    geometry: None = None
    properties: _TipProperties


class _NoticeProperties(_Strict):
    title: StrictStr
    target_id: StrictInt | None
    published_at: Annotated[StrictStr, AfterValidator(_iso_time)]


class NoticePublished(_Strict):
    id: StrictStr
    geometry: None = None
    properties: _NoticeProperties


class _PointsProperties(_Strict):
    worker_id: StrictInt
    kind: Literal["order", "visit", "activity"]
    points: StrictInt


class PointsAwarded(_Strict):
    id: StrictStr
    geometry: None = None
    properties: _PointsProperties


class _GrantProperties(_Strict):
    action: Literal["granted", "changed", "revoked", "deleted"]
    user_id: StrictInt | None
    role: StrictStr
    layers: list[StrictStr]
    own_cells: StrictBool
    cells: list[StrictInt]
    neighbour_cover: StrictBool
    valid_from: Annotated[StrictStr, AfterValidator(_iso_time)] | None
    valid_until: Annotated[StrictStr, AfterValidator(_iso_time)] | None
    reason: StrictStr


class GrantUpdated(_Strict):
    """An access grant given, changed, revoked or deleted (the admin's record of who may see what)."""

    id: StrictStr
    geometry: None = None
    properties: _GrantProperties


_OTHER: dict[str, type[BaseModel]] = {
    "points.awarded": PointsAwarded,
    "notice.published": NoticePublished,
    "tip.created": TipChanged,
    "tip.updated": TipChanged,
    "grant.updated": GrantUpdated,
    "layer.reloaded": LayerReloaded,
    "record.deleted": RecordDeleted,
    "reference.updated": ReferenceUpdated,
}


def payload_model(kind: str, layer: str) -> type[BaseModel]:
    """The schema of ``kind``'s payload on ``layer``; ValueError for a kind on a layer it is not about."""
    if kind not in EVENT_KIND_LAYERS:
        raise ValueError(f"unknown event kind {kind!r}")
    about = EVENT_KIND_LAYERS[kind]
    if about is not None and about != layer:
        raise ValueError(f"a {kind} event is about the {about} layer, not {layer!r}")
    if kind in _OTHER:
        return _OTHER[kind]
    return FEATURES[layer]


def payload_validate(kind: str, layer: str, payload: Any) -> dict[str, Any]:
    """``payload`` checked against its kind's schema, as stored (JSON values)."""
    model = payload_model(kind, layer).model_validate(payload)
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)  # no absent extras
    dumped.setdefault("geometry", None)
    return dumped
