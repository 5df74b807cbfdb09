"""The hotspot refresh: tell the control room about new and growing hotspots.

Run by ``manage.py analysis_refresh`` (cron, every few minutes; no daemon). It computes the
hotspots of the current window with the hotspots layer's own SQL and, in one transaction,
appends a ``hotspot.raised`` event (the hotspot as a feature of the hotspots layer: screens
subscribed to that layer get it, redacted by the same policy) for each hotspot whose trend is
``new`` or ``growing`` and that was not announced yet: no alert of its category whose hull meets
it was raised in this window, or the last one counted at least HOTSPOT_GROWTH_PERCENT fewer
incidents. Each announcement is remembered as a ``HotspotAlert`` row.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.db import transaction
from django.utils import timezone

from command.analysis.hotspots import Hotspot, hotspots_compute
from command.analysis.params import hotspot_params
from command.eventlog import event_append
from command.models import Event, HotspotAlert

ANNOUNCED_TRENDS = ("new", "growing")


def _already_announced(hotspot: Hotspot, hull: GEOSGeometry, growth: float) -> bool:
    last = (
        HotspotAlert.objects.filter(
            category_id=hotspot.category_id, raised_at__gte=hotspot.window_start, geom__intersects=hull
        )
        .order_by("-count")
        .first()
    )
    return last is not None and hotspot.count < last.count * (1 + growth)


@transaction.atomic
def hotspots_refresh(*, now: datetime | None = None, actor_id: int | None = None) -> list[Event]:
    """Compute the current window's hotspots and announce the new and growing ones; returns the events."""
    now = now or timezone.now()
    growth = hotspot_params().growth
    events: list[Event] = []
    for hotspot in hotspots_compute(end=now):
        if hotspot.trend not in ANNOUNCED_TRENDS:
            continue
        hull = GEOSGeometry(hotspot.geometry_json, srid=4326)
        if not isinstance(hull, Polygon):  # a padded convex hull is one polygon
            raise ValueError(f"hotspot {hotspot.id}: a {hull.geom_type}, not a polygon")
        if _already_announced(hotspot, hull, growth):
            continue
        HotspotAlert.objects.create(
            category_id=hotspot.category_id,
            geom=hull,
            count=hotspot.count,
            trend=hotspot.trend,
            window_start=hotspot.window_start,
            window_end=hotspot.window_end,
            raised_at=now,
        )
        events.append(
            event_append(
                kind="hotspot.raised",
                layer="hotspots",
                object_id=hotspot.id,
                actor_id=actor_id,
                payload=hotspot.feature(),
            )
        )
    return events
