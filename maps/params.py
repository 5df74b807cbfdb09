"""Request parameters of the map channels, checked: a bad value is a 400 with a reason a person
can act on, never a 500 and never a silently wrong answer."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import JsonResponse, QueryDict
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from command.layer_queries import FeatureQuery
from command.layers import LAYERS


class BadRequest(Exception):
    """A client error: the view answers 400 with ``reason`` (and the offending parameter)."""

    def __init__(
        self, reason: str, *, param: str | None = None, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.param = param
        self.status = status
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {"code": "InvalidParameterValue", "description": self.reason}
        if self.param:
            body["parameter"] = self.param
        response = JsonResponse(body, status=self.status, json_dumps_params={"ensure_ascii": False})
        for name, value in self.headers.items():
            response[name] = value
        return response


def max_bbox_degrees2() -> float:
    return float(getattr(settings, "MAP_MAX_BBOX_DEGREES2", 4.0))


def parse_bbox(
    value: str | None, *, required: bool = False, limit_area: bool = True
) -> tuple[float, float, float, float] | None:
    """``minLon,minLat,maxLon,maxLat`` in WGS 84 (OGC/GeoJSON order), or the six-number form
    with heights, which our 2D data ignores."""
    if value is None or value == "":
        if required:
            raise BadRequest(_("bbox is required: minLon,minLat,maxLon,maxLat in WGS 84."), param="bbox")
        return None
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise BadRequest(
            _("bbox must be four comma-separated numbers minLon,minLat,maxLon,maxLat, got %(n)s values.")
            % {"n": len(parts)},
            param="bbox",
        )
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(_("bbox values must be numbers: %(value)s") % {"value": value[:100]}, param="bbox") from None
    if len(numbers) == 6:  # OGC API: minLon,minLat,minHeight,maxLon,maxLat,maxHeight (heights unused)
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    xmin, ymin, xmax, ymax = numbers
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise BadRequest(_("bbox values must be finite numbers."), param="bbox")
    if not (-180 <= xmin <= 180 and -180 <= xmax <= 180 and -90 <= ymin <= 90 and -90 <= ymax <= 90):
        raise BadRequest(_("bbox is out of range: longitudes -180 to 180, latitudes -90 to 90 (WGS 84)."), param="bbox")
    if xmin > xmax:
        raise BadRequest(
            _("bbox minLon is greater than maxLon; boxes across the antimeridian are not supported."), param="bbox"
        )
    if ymin > ymax:
        raise BadRequest(_("bbox minLat is greater than maxLat."), param="bbox")
    area = (xmax - xmin) * (ymax - ymin)
    if limit_area and area > max_bbox_degrees2():
        raise BadRequest(
            _("bbox is too large (%(area).2f square degrees, at most %(max).2f): zoom in or use the vector tiles.")
            % {"area": area, "max": max_bbox_degrees2()},
            param="bbox",
        )
    return xmin, ymin, xmax, ymax


def parse_limit(value: str | None, *, default: int, maximum: int, clamp: bool = False) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest(
            _("limit must be a whole number, got %(value)s.") % {"value": value[:40]}, param="limit"
        ) from None
    if limit < 1:
        raise BadRequest(_("limit must be at least 1."), param="limit")
    if limit > maximum:
        if clamp:
            return maximum
        raise BadRequest(_("limit must be at most %(max)s.") % {"max": maximum}, param="limit")
    return limit


def parse_offset(value: str | None) -> int:
    if value is None or value == "":
        return 0
    try:
        offset = int(value)
    except ValueError:
        raise BadRequest(_("offset must be a whole number."), param="offset") from None
    if offset < 0:
        raise BadRequest(_("offset must not be negative."), param="offset")
    if offset > MAX_OFFSET:
        raise BadRequest(
            _("offset must be at most %(max)s: narrow the request with bbox, datetime or filters.")
            % {"max": MAX_OFFSET},
            param="offset",
        )
    return offset


# Far beyond any layer (a GeoJSON page is at most MAP_GEOJSON_MAX_LIMIT features), and well
# inside PostgreSQL's bigint OFFSET.
MAX_OFFSET = 100_000_000


def _instant(text: str, param: str) -> datetime:
    parsed = parse_datetime(text.replace("z", "Z"))
    if parsed is None:
        raise BadRequest(
            _("%(param)s: %(value)s is not an RFC 3339 date-time such as 2026-11-28T10:00:00Z.")
            % {"param": param, "value": text[:60]},
            param=param,
        )
    if parsed.tzinfo is None:
        raise BadRequest(_("%(param)s: give a time zone (Z or +08:00).") % {"param": param}, param=param)
    return parsed


def parse_datetime_interval(value: str | None, *, param: str = "datetime") -> tuple[datetime | None, datetime | None]:
    """OGC API ``datetime``: an instant, ``start/end``, ``../end`` or ``start/..``."""
    if value is None or value == "":
        return None, None
    if "/" not in value:
        instant = _instant(value, param)
        return instant, instant
    start_text, _sep, end_text = value.partition("/")
    start = None if start_text in {"", ".."} else _instant(start_text, param)
    end = None if end_text in {"", ".."} else _instant(end_text, param)
    if start is not None and end is not None and start > end:
        raise BadRequest(_("%(param)s: the start is after the end.") % {"param": param}, param=param)
    return start, end


def parse_codes(value: str | None, *, param: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    codes = tuple(c.strip() for c in value.split(",") if c.strip())
    if len(codes) > 50 or any(len(c) > 32 for c in codes):
        raise BadRequest(_("%(param)s: at most 50 codes of at most 32 characters.") % {"param": param}, param=param)
    return codes


def feature_query_from(
    params: QueryDict, *, layer: str, default_limit: int, max_limit: int, clamp_limit: bool = False
) -> FeatureQuery:
    """The ``FeatureQuery`` of a GeoJSON, OGC items or export request on ``layer``. OGC items
    (``clamp_limit``) take any bbox: GIS clients send their whole view, and paging bounds the
    answer; the GeoJSON and export channels refuse a bbox above MAP_MAX_BBOX_SQUARE_DEGREES."""
    for name, values in params.lists():
        if any("\x00" in value for value in values) or "\x00" in name:
            raise BadRequest(_("Parameters must not contain NUL bytes."), param=name.replace("\x00", "")[:40])
    source = LAYERS[layer].source
    start, end = parse_datetime_interval(params.get("datetime"))
    start_text, end_text = params.get("start"), params.get("end")
    if start_text:
        start = _instant(start_text, "start")
    if end_text:
        end = _instant(end_text, "end")
    categories = parse_codes(params.get("category"), param="category")
    statuses = parse_codes(params.get("status"), param="status")
    if categories and source.category_sql is None:
        raise BadRequest(_("The layer %(layer)s has no category to filter on.") % {"layer": layer}, param="category")
    if statuses and source.status_sql is None:
        raise BadRequest(_("The layer %(layer)s has no status to filter on.") % {"layer": layer}, param="status")
    return FeatureQuery(
        bbox=parse_bbox(params.get("bbox"), limit_area=not clamp_limit),
        start=start,
        end=end,
        categories=categories,
        statuses=statuses,
        limit=parse_limit(params.get("limit"), default=default_limit, maximum=max_limit, clamp=clamp_limit),
        offset=parse_offset(params.get("offset")),
    )
