"""WGS 84 -> GCJ-02, the offset coordinate system of the common Chinese web maps.

Storage stays WGS 84; features are shifted on display only, when ``settings.BASEMAP_CRS`` is
``gcj02``. The formula is the widely published one (eviltransform and others); outside China
there is no offset. Vector tiles are shifted by the offset at the tile centre: the offset
changes by at most ~6 m per km, so across a 256-pixel tile the error stays under a pixel at
every zoom.
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


def mercator_offset_m(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 shift at (lon, lat) in Web-Mercator metres (what a tile is translated by)."""
    glon, glat = wgs84_to_gcj02(lon, lat)

    def merc(lo: float, la: float) -> tuple[float, float]:
        return (
            math.radians(lo) * 6378137.0,
            math.log(math.tan(math.pi / 4 + math.radians(la) / 2)) * 6378137.0,
        )

    x0, y0 = merc(lon, lat)
    x1, y1 = merc(glon, glat)
    return x1 - x0, y1 - y0


def shift_geojson_coordinates(coords: object) -> object:
    """Shift the nested coordinate arrays of a GeoJSON geometry (for GeoJSON drawn on a page)."""
    if isinstance(coords, list) and coords and isinstance(coords[0], (int, float)):
        lon, lat = wgs84_to_gcj02(float(coords[0]), float(coords[1]))
        return [round(lon, 7), round(lat, 7), *coords[2:]]
    if isinstance(coords, list):
        return [shift_geojson_coordinates(c) for c in coords]
    return coords
