"""The analysis parameters, read from settings once per call: hotspots per category (a DBSCAN
distance and a minimum count), the time windows, hex-bin size, coverage and SLA thresholds.

``HOTSPOT_CATEGORY_PARAMS`` overrides the defaults per category code, as
``"traffic_accident=50:5,parking_dispute=60:5"`` (distance in metres : minimum incidents); a
category not named uses ``HOTSPOT_RADIUS_M`` / ``HOTSPOT_MIN_INCIDENTS``. The settings module
parses and checks it at start-up (``hotspot_category_params_parse``), so a typo is an
ImproperlyConfigured error, never a wrong map.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class HotspotParams:
    radius_m: float  # the default DBSCAN distance
    min_count: int  # the default minimum count
    per_category: dict[str, tuple[float, int]]  # category code -> (distance m, minimum count)
    window_days: int
    windows: int  # windows computed (the latest and those before it, for trend and recurrence)
    recurrent_windows: int  # consecutive windows from which a hotspot is "recurrent"
    growth: float  # a hotspot is "growing" when its count is at least (1 + growth) x the previous window's

    @property
    def max_radius_m(self) -> float:
        return max([self.radius_m, *(r for r, _m in self.per_category.values())])


def hotspot_category_params_parse(text: str) -> dict[str, tuple[float, int]]:
    """``"code=metres:count,..."`` as {code: (metres, count)}; ValueError with the reason."""
    out: dict[str, tuple[float, int]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        code, sep, value = item.partition("=")
        radius_text, sep2, count_text = value.partition(":")
        if not sep or not sep2 or not code.strip():
            raise ValueError(f"{item!r} is not code=metres:count (e.g. traffic_accident=50:5)")
        try:
            radius, count = float(radius_text), int(count_text)
        except ValueError as exc:
            raise ValueError(f"{item!r}: metres must be a number and count an integer") from exc
        if not 0 < radius <= 5000 or not 2 <= count <= 10000:
            raise ValueError(f"{item!r}: metres must be in (0, 5000] and count in [2, 10000]")
        out[code.strip()] = (radius, count)
    return out


def hotspot_params() -> HotspotParams:
    return HotspotParams(
        radius_m=float(settings.HOTSPOT_RADIUS_M),
        min_count=int(settings.HOTSPOT_MIN_INCIDENTS),
        per_category=dict(settings.HOTSPOT_CATEGORY_PARAMS),
        window_days=int(settings.HOTSPOT_WINDOW_DAYS),
        windows=int(settings.HOTSPOT_WINDOWS),
        recurrent_windows=int(settings.HOTSPOT_RECURRENT_WINDOWS),
        growth=float(settings.HOTSPOT_GROWTH_PERCENT) / 100.0,
    )
