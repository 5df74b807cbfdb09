"""Import real building footprints and grid cells from GeoJSON or Shapefile through GDAL.

The files are an administrator's own (a management command), not a client's upload; still,
only WGS 84 data is accepted (settings.ACCEPTED_SRIDS) and nothing is reprojected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.gis.gdal import DataSource, GDALException
from django.contrib.gis.utils import LayerMapError, LayerMapping
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from command.eventlog import event_append
from command.models import Building, GridCell
from command.services.places import buildings_assign_cells


@dataclass(frozen=True)
class ImportTarget:
    model: type[GridCell] | type[Building]
    geometry_field: str
    required: tuple[str, ...]
    optional: tuple[str, ...]


TARGETS = {
    "cells": ImportTarget(GridCell, "geom", ("code", "name"), ()),
    "buildings": ImportTarget(Building, "footprint", ("address",), ("name", "use", "floors", "household_count")),
}


def layer_import(
    *,
    path: Path,
    layer: str,
    field_map: dict[str, str] | None = None,
    level: str = GridCell.Level.CELL,
    encoding: str = "utf-8",
    actor_id: int | None = None,
) -> int:
    """Import every feature of the file's first layer as grid cells or buildings; all or nothing.
    ``field_map`` maps our field names to the file's attribute names where they differ."""
    if layer not in TARGETS:
        raise ValidationError(f"Unknown layer {layer!r}: choose one of {', '.join(TARGETS)}.")
    target = TARGETS[layer]
    if not path.exists():
        raise ValidationError(f"{path} does not exist.")
    try:
        source = DataSource(str(path))
    except GDALException as exc:
        raise ValidationError(f"GDAL cannot read {path}: {exc}") from exc
    if len(source) == 0:
        raise ValidationError(f"{path} holds no layer.")
    src = source[0]
    if src.geom_type.name not in {"Polygon", "Polygon25D"}:
        raise ValidationError(f"{path} holds {src.geom_type.name} geometries; {layer} need Polygon geometries.")
    srs = src.srs
    srid = None
    if srs is not None:
        srid = srs.srid
        if srid is None:
            try:
                srs.identify_epsg()
                srid = srs.srid
            except GDALException:
                srid = None
    if srid not in settings.ACCEPTED_SRIDS:
        what = "no spatial reference" if srs is None else f"spatial reference {srs.name!r} (EPSG:{srid})"
        raise ValidationError(
            f"{path} has {what}; only WGS 84 (EPSG:4326) is accepted. Reproject it first, "
            f"e.g. ogr2ogr -t_srs EPSG:4326 out.geojson {path.name}"
        )
    names = set(src.fields)
    field_map = dict(field_map or {})
    mapping: dict[str, str] = {target.geometry_field: "POLYGON"}
    missing = []
    for name in target.required:
        attr = field_map.get(name, name)
        if attr in names:
            mapping[name] = attr
        else:
            missing.append(f"{name} (looked for attribute {attr!r})")
    if missing:
        raise ValidationError(
            f"{path} lacks {', '.join(missing)}; its attributes are {', '.join(sorted(names)) or 'none'}. "
            "Map them with --map ourfield=attribute."
        )
    for name in target.optional:
        attr = field_map.get(name, name)
        if attr in names:
            mapping[name] = attr
    before = target.model.objects.aggregate(m=Max("pk"))["m"] or 0
    try:
        with transaction.atomic():
            mapper = LayerMapping(target.model, str(path), mapping, transform=False, encoding=encoding)
            mapper.save(strict=True, silent=True)
            imported = target.model.objects.filter(pk__gt=before)
            count = imported.count()
            if layer == "cells":
                imported.update(level=level)
            buildings_assign_cells()
            event_append(
                kind="layer.reloaded",
                layer=layer,
                object_id="*",
                actor_id=actor_id,
                payload={"id": "*", "properties": {layer: count}},
            )
    except IntegrityError as exc:
        message = str(exc).splitlines()[0]
        if "geom_valid" in message or "footprint_valid" in message:
            raise ValidationError(
                f"{path} holds an invalid polygon (self-intersecting or degenerate); nothing imported."
            ) from exc
        raise ValidationError(f"{path} could not be imported, nothing was: {message}") from exc
    except (LayerMapError, GDALException, ValueError, TypeError) as exc:
        raise ValidationError(f"{path} could not be imported, nothing was: {exc}") from exc
    return count
