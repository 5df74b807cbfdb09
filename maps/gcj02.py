"""WGS 84 -> GCJ-02, the offset coordinate system of the common Chinese web maps.

Storage stays WGS 84; features are shifted on display only, when ``settings.BASEMAP_CRS`` is
``gcj02``. The formula is the widely published one (eviltransform and others); outside China
there is no offset. Vector tiles are shifted by the offset linearised at the tile centre
(offset + Jacobian, one ``ST_Affine``): a constant shift alone was off by ~2 pixels at a tile's
edge (the offset changes by ~10 m per km), the linear term leaves centimetres.
"""

from __future__ import annotations

import math

A = 6378245.0
EE = 0.00669342162296594323


def outside_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if outside_china(lon, lat):
        return lon, lat
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


R = 6378137.0
WEB_MERCATOR_HALF = math.pi * R


def to_mercator(lon: float, lat: float) -> tuple[float, float]:
    return math.radians(lon) * R, math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * R


def from_mercator(mx: float, my: float) -> tuple[float, float]:
    return math.degrees(mx / R), math.degrees(2 * math.atan(math.exp(my / R)) - math.pi / 2)


def mercator_gcj02(mx: float, my: float) -> tuple[float, float]:
    """WGS 84 -> GCJ-02, both in Web-Mercator metres."""
    return to_mercator(*wgs84_to_gcj02(*from_mercator(mx, my)))


def tile_affine(z: int, x: int, y: int) -> tuple[float, float, float, float, float, float]:
    """``ST_Affine`` parameters (a, b, d, e, xoff, yoff) mapping Web-Mercator WGS 84 to GCJ-02
    around tile z/x/y: the transform linearised at the tile centre by central differences."""
    size = 2 * WEB_MERCATOR_HALF / (1 << z)
    cx = -WEB_MERCATOR_HALF + (x + 0.5) * size
    cy = WEB_MERCATOR_HALF - (y + 0.5) * size
    h = max(size / 4, 1.0)
    gx0, gy0 = mercator_gcj02(cx, cy)
    xe, ye = mercator_gcj02(cx + h, cy)
    xw, yw = mercator_gcj02(cx - h, cy)
    xn, yn = mercator_gcj02(cx, cy + h)
    xs, ys = mercator_gcj02(cx, cy - h)
    a, d = (xe - xw) / (2 * h), (ye - yw) / (2 * h)  # d(gcj)/dx
    b, e = (xn - xs) / (2 * h), (yn - ys) / (2 * h)  # d(gcj)/dy
    return a, b, d, e, gx0 - (a * cx + b * cy), gy0 - (d * cx + e * cy)


def shift_geojson_coordinates(coords: object) -> object:
    """Shift the nested coordinate arrays of a GeoJSON geometry (for GeoJSON drawn on a page)."""
    if isinstance(coords, list) and coords and isinstance(coords[0], (int, float)):
        lon, lat = wgs84_to_gcj02(float(coords[0]), float(coords[1]))
        return [round(lon, 7), round(lat, 7), *coords[2:]]
    if isinstance(coords, list):
        return [shift_geojson_coordinates(c) for c in coords]
    return coords
