"""Geometry checks at the model boundary, and geometry built outside the database.

Only SRID 4326 is accepted from clients and imports (``settings.ACCEPTED_SRIDS``): no
client-supplied spatial-reference definition ever reaches GDAL (our answer to gis.W001).
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.gis.gdal import GDALException
from django.contrib.gis.geos import GEOSException, GEOSGeometry, Point, Polygon
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from shapely.geometry import Polygon as ShapelyPolygon

METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_EQUATOR = 111_320.0


def check_srid(srid: int | None) -> int:
    """Accept only whitelisted integer SRIDs; a missing SRID means WGS 84."""
    if srid is None:
        return 4326
    if not isinstance(srid, int) or srid not in settings.ACCEPTED_SRIDS:
        raise ValidationError(
            _("Unsupported spatial reference %(srid)s: send WGS 84 coordinates (EPSG:4326).") % {"srid": srid},
            code="srid",
        )
    return srid


def check_lon_lat(lon: Any, lat: Any) -> tuple[float, float]:
    try:
        lon_f, lat_f = float(lon), float(lat)
    except OverflowError as exc:  # an int beyond any float
        raise ValidationError(_("Longitude and latitude must be finite numbers."), code="coordinates") from exc
    except (TypeError, ValueError) as exc:
        raise ValidationError(_("Longitude and latitude must be numbers."), code="coordinates") from exc
    if math.isnan(lon_f) or math.isnan(lat_f) or math.isinf(lon_f) or math.isinf(lat_f):
        raise ValidationError(_("Longitude and latitude must be finite numbers."), code="coordinates")
    if not -180.0 <= lon_f <= 180.0:
        raise ValidationError(_("Longitude %(lon)s is out of range (-180 to 180).") % {"lon": lon_f}, code="longitude")
    if not -90.0 <= lat_f <= 90.0:
        raise ValidationError(_("Latitude %(lat)s is out of range (-90 to 90).") % {"lat": lat_f}, code="latitude")
    return lon_f, lat_f


def point_from_lon_lat(lon: Any, lat: Any) -> Point:
    lon_f, lat_f = check_lon_lat(lon, lat)
    return Point(lon_f, lat_f, srid=4326)


def check_geometry(geom: GEOSGeometry, *, expected: str | tuple[str, ...]) -> GEOSGeometry:
    """SRID 4326, the expected type, coordinates in range, and valid (as ST_IsValid says)."""
    expected_types = (expected,) if isinstance(expected, str) else expected
    check_srid(geom.srid)
    if geom.srid is None:
        geom.srid = 4326
    if geom.geom_type not in expected_types:
        raise ValidationError(
            _("Expected a %(expected)s geometry, got %(got)s.")
            % {"expected": " or ".join(expected_types), "got": geom.geom_type},
            code="geometry_type",
        )
    if geom.empty:
        raise ValidationError(_("The geometry is empty."), code="empty")
    if geom.geom_type == "Point":  # a non-empty point with finite coordinates is valid (fewer GEOS calls)
        check_lon_lat(*getattr(geom, "coords")[:2])  # noqa: B009 - not in the stubs
        return geom
    xmin, ymin, xmax, ymax = geom.extent
    check_lon_lat(xmin, ymin)
    check_lon_lat(xmax, ymax)
    if not geom.valid:
        raise ValidationError(
            _("The geometry is not valid: %(reason)s.") % {"reason": geom.valid_reason}, code="invalid_geometry"
        )
    return geom


def geometry_from_geojson(data: Any, *, expected: str | tuple[str, ...]) -> GEOSGeometry:
    """A GeoJSON geometry object (RFC 7946, so WGS 84) as a checked GEOS geometry."""
    if not isinstance(data, dict) or "type" not in data or "coordinates" not in data:
        raise ValidationError(_("Expected a GeoJSON geometry object with type and coordinates."), code="geojson")
    if "crs" in data:
        raise ValidationError(_("GeoJSON must not carry a crs member: coordinates are WGS 84 (RFC 7946)."), code="srid")
    import json

    try:
        geom = GEOSGeometry(json.dumps({"type": data["type"], "coordinates": data["coordinates"]}), srid=4326)
    except (GEOSException, GDALException, ValueError, TypeError) as exc:
        raise ValidationError(_("Malformed GeoJSON geometry: %(error)s") % {"error": exc}, code="geojson") from exc
    return check_geometry(geom, expected=expected)


def metres_to_degrees(lat: float, dx_m: float, dy_m: float) -> tuple[float, float]:
    """A local equirectangular approximation: exact to centimetres over a camera's range."""
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    return dx_m / (METRES_PER_DEGREE_LON_EQUATOR * cos_lat), dy_m / METRES_PER_DEGREE_LAT


def camera_view_cone(location: Point, *, heading: float, fov: float, range_m: float, steps: int = 16) -> Polygon:
    """The polygon a camera sees: a circular sector from ``location``, centred on ``heading``
    (degrees clockwise from north), ``fov`` degrees wide, ``range_m`` metres deep."""
    if not 0 < fov <= 360:
        raise ValidationError(_("Field of view must be between 0 and 360 degrees."), code="fov")
    if range_m <= 0:
        raise ValidationError(_("Range must be positive."), code="range")
    lon0, lat0 = location.x, location.y
    ring: list[tuple[float, float]] = []
    full_circle = fov >= 360
    if not full_circle:
        ring.append((lon0, lat0))
    start = heading - fov / 2.0
    arc_steps = max(steps, math.ceil(fov / 5.0))
    for i in range(arc_steps + 1):
        bearing = math.radians(start + fov * i / arc_steps)
        dlon, dlat = metres_to_degrees(lat0, range_m * math.sin(bearing), range_m * math.cos(bearing))
        ring.append((lon0 + dlon, lat0 + dlat))
    shape = ShapelyPolygon(ring)
    if not shape.is_valid:  # pragma: no cover - a sector from distinct points is always valid
        shape = shape.buffer(0)
    return Polygon(list(shape.exterior.coords), srid=4326)
