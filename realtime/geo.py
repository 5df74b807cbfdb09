"""Bounding boxes of GeoJSON geometries, for the subscribers' bbox filter (no GEOS on the hot path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Bbox = tuple[float, float, float, float]


def _positions(coordinates: Any) -> Iterator[tuple[float, float]]:
    if isinstance(coordinates, (list, tuple)) and coordinates and isinstance(coordinates[0], (int, float)):
        yield float(coordinates[0]), float(coordinates[1])
        return
    for part in coordinates or ():
        yield from _positions(part)


def geometry_bbox(geometry: dict[str, Any]) -> Bbox | None:
    if geometry.get("type") == "GeometryCollection":
        boxes = [b for g in geometry.get("geometries", []) if (b := geometry_bbox(g)) is not None]
    else:
        points = list(_positions(geometry.get("coordinates")))
        boxes = [(p[0], p[1], p[0], p[1]) for p in points]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def geometry_in_bbox(geometry: dict[str, Any] | None, bbox: Bbox) -> bool:
    """Does the geometry's bounding box touch ``bbox`` (edges included)? No geometry: yes (a
    layer-wide event concerns every view)."""
    if not geometry:
        return True
    box = geometry_bbox(geometry)
    if box is None:
        return True
    return box[0] <= bbox[2] and box[2] >= bbox[0] and box[1] <= bbox[3] and box[3] >= bbox[1]
