"""Saves and deletes of map records that no domain service covers (the admin's edits): each
in one transaction with its event, so every screen is told and cached tiles of the layer go
stale at once (maps.tiles' freshness is "no event of the layer since").

Domain writes keep their own services (reports, incidents' steps, places' derived cells and
cones, workers' pings); the admin calls those where they exist and these otherwise. Which
layer a model feeds is declared once, in ``RECORD_LAYERS``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.gis.geos import GEOSGeometry
from django.db import models, transaction

from command import event_payloads
from command import models as m
from command.eventlog import EventKind, event_append
from command.features import feature_of

# model -> (event-log layer, the kind of its update event)
RECORD_LAYERS: dict[type[models.Model], tuple[str, EventKind]] = {
    m.GridCell: ("cells", "cell.updated"),
    m.Road: ("roads", "road.updated"),
    m.Building: ("buildings", "building.updated"),
    m.Household: ("households", "household.updated"),
    m.Business: ("businesses", "business.updated"),
    m.Camera: ("cameras", "camera.updated"),
    m.Worker: ("workers", "worker.updated"),
    m.Incident: ("incidents", "incident.updated"),
}
# Reference data (no map layer of its own): its events go to the log under this layer name,
# which no grant delivers; they record who changed an SLA or a team.
REFERENCE_LAYER = event_payloads.REFERENCE_LAYER
REFERENCE_MODELS: tuple[type[models.Model], ...] = (m.Team, m.Category)


def _layer(obj: models.Model) -> tuple[str, EventKind]:
    try:
        return RECORD_LAYERS[type(obj)]
    except KeyError:
        if isinstance(obj, REFERENCE_MODELS):
            return REFERENCE_LAYER, "reference.updated"
        raise TypeError(f"{type(obj).__name__} is not a record these services write") from None


def _reference_payload(obj: models.Model) -> dict[str, Any]:
    fields = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    properties = {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool)) or v is None}
    return {"id": str(obj.pk), "geometry": None, "properties": {"model": obj._meta.model_name, **properties}}


def _payload(obj: models.Model, layer: str) -> dict[str, Any]:
    return _reference_payload(obj) if layer == REFERENCE_LAYER else feature_of(obj, layer)


@transaction.atomic
def record_save(*, obj: models.Model, actor_id: int | None, update_fields: list[str] | None = None) -> models.Model:
    """Validate and save ``obj``, then append its update event (the whole feature)."""
    layer, kind = _layer(obj)
    exclude = [f.name for f in obj._meta.fields if f.name not in update_fields] if update_fields else None
    obj.full_clean(exclude=exclude, validate_unique=True)
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname, None)
        if isinstance(value, GEOSGeometry) and value.srid is None:
            value.srid = 4326
    obj.save(update_fields=update_fields)
    event_append(kind=kind, layer=layer, object_id=obj.pk, actor_id=actor_id, payload=_payload(obj, layer))
    return obj


@transaction.atomic
def record_delete(*, obj: models.Model, actor_id: int | None) -> None:
    """Delete ``obj`` and append ``record.deleted`` (screens drop the feature)."""
    layer, _kind = _layer(obj)
    pk = obj.pk
    obj.delete()
    event_append(
        kind="record.deleted",
        layer=layer,
        object_id=pk,
        actor_id=actor_id,
        payload={"id": str(pk), "geometry": None, "properties": {"id": pk}},
    )
