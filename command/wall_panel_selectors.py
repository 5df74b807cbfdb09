"""Reads of the control-room wall's panels (``/control/``, maps/static/wall/panels/): what the
resident services (#15 campaigns, #16 requests and home alarms) and the analysis (#14 cell
performance) add to the wall. As for the rest of the wall (command/wall_selectors.py), every
number the panels show is computed here, once; events only tell the page when to ask again.

Each part is asked for only when the viewer's grants hold its layers (``layers_for_user``, the
one policy), and follows the grant's grid cells when it is narrowed to some. Nothing here is
personal data: counts, statuses, grid cells, campaign names.

Definitions (also in docs/wall.md):

- an **open request** is submitted, triaged, published or taken (``ServiceRequest.OPEN_STATUSES``);
  an **overdue** one is open and flagged ``overdue`` by the periodic job (with its event);
- **devices** are the home alarm devices not revoked, by status (online, alarm, offline: missed
  ``ALARM_MISSED_HEARTBEATS`` heartbeats);
- a **cell behind** is a grid cell whose SLA compliance over the last ``CELL_PERIOD_DAYS`` days
  is below ``CELL_SLA_TARGET_PERCENT``, or dropped ``CELL_BEHIND_DROP_POINTS`` against the
  period before, with one incident's slack (command/analysis/cells.py, the analysis page's own rule);
- the **active campaigns** are those the viewer may see (command/registry_selectors.py);
- the **hotspot notices** are the hotspots announced in the last ``HOTSPOT_NOTICE_HOURS`` (the
  live ones arrive as ``hotspot.raised`` events).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.gis.db.models import Union
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from command.analysis.cells import cell_performance
from command.eventlog import latest_seq
from command.layers import LayerGrant
from command.models import Campaign, GridCell, HotspotAlert
from command.registry_selectors import campaigns_visible_to
from command.resident_models import AlarmDevice, ServiceRequest

log = logging.getLogger(__name__)

CELL_PERIOD_DAYS = 7  # the weekly summary's period
CAMPAIGNS_MAX = 6  # active campaigns mounted on one wall
CELLS_CACHE_SECONDS = 120
HOTSPOT_NOTICE_HOURS = 24  # a wall opened later still shows the hotspots announced since
HOTSPOT_NOTICES_MAX = 5


def _cells_clause(grant: LayerGrant, column: str) -> tuple[str, list[Any]]:
    if grant.cells is None:
        return "TRUE", []
    return f"{column} = ANY(%s)", [list(grant.cells)]


_REQUESTS_SQL = """
SELECT status, count(*), count(*) FILTER (WHERE overdue)
FROM command_servicerequest t
WHERE status = ANY(%s) AND {cells}
GROUP BY status
"""


def wall_request_counts(grant: LayerGrant) -> dict[str, Any]:
    """Open requests by status, and how many of them are overdue."""
    clause, params = _cells_clause(grant, "t.grid_cell_id")
    open_statuses = list(ServiceRequest.OPEN_STATUSES)
    by_status = dict.fromkeys(open_statuses, 0)
    overdue = 0
    with connection.cursor() as cursor:
        cursor.execute(_REQUESTS_SQL.format(cells=clause), [open_statuses, *params])
        for status, count, late in cursor.fetchall():
            by_status[status] = count
            overdue += late
    return {"open": sum(by_status.values()), "overdue": overdue, "by_status": by_status}


_DEVICES_SQL = """
SELECT t.status, count(*)
FROM command_alarmdevice t JOIN command_household h ON h.id = t.household_id
JOIN command_building b ON b.id = h.building_id
WHERE t.revoked_at IS NULL AND {cells}
GROUP BY t.status
"""


def wall_device_counts(grant: LayerGrant) -> dict[str, int]:
    """Home alarm devices (not revoked) by status."""
    clause, params = _cells_clause(grant, "b.grid_cell_id")
    counts = dict.fromkeys(AlarmDevice.Status.values, 0)
    with connection.cursor() as cursor:
        cursor.execute(_DEVICES_SQL.format(cells=clause), params)
        for status, count in cursor.fetchall():
            counts[status] = count
    return counts


def wall_cells_behind(grant: LayerGrant, now: datetime | None = None) -> list[dict[str, Any]]:
    """The grid cells falling behind over the last CELL_PERIOD_DAYS days, worst first.

    Every wall asks after each incident's event; what they get changes only with a new event
    (every write appends one, the SLA job too) or as time slides the period: so it is computed
    once per latest event seq, minute and grant area, and shared by every wall and process
    through the cache (computed here when the cache is away)."""
    now = now or timezone.now()
    cells = "*" if grant.cells is None else ",".join(map(str, grant.cells))
    key = f"wall:cells-behind:{latest_seq()}:{int(now.timestamp()) // 60}:{cells}"
    try:
        cached = cache.get(key)
    except Exception as exc:  # the cache is a speed-up, not a dependency
        log.warning("wall panels: cache away (%s); cells computed here", exc)
        return _cells_behind(grant, now)
    if cached is not None:
        return list(cached)
    rows = _cells_behind(grant, now)
    try:
        cache.set(key, rows, CELLS_CACHE_SECONDS)
    except Exception as exc:
        log.warning("wall panels: cache away (%s)", exc)
    return rows


def _cells_behind(grant: LayerGrant, now: datetime) -> list[dict[str, Any]]:
    rows = [
        {
            "cell_id": s.cell_id,
            "code": s.code,
            "sla_compliance": s.sla_compliance,
            "previous_compliance": s.previous_compliance,
            "sla_due": s.sla_due,
            "sla_met": s.sla_met,
        }
        for s in cell_performance(start=now - timedelta(days=CELL_PERIOD_DAYS), end=now, as_of=now)
        if s.team_code is None and s.behind and (grant.cells is None or s.cell_id in grant.cells)
    ]
    rows.sort(key=lambda r: (r["sla_compliance"] or 0.0, r["code"]))
    return rows


def wall_active_campaigns(user: Any) -> list[dict[str, Any]]:
    """The active campaigns the viewer may see, newest first (the panel mounts each)."""
    rows = campaigns_visible_to(user).filter(status=Campaign.Status.ACTIVE).order_by("-created_at", "-pk")
    return [{"id": c.pk, "name": c.name} for c in rows[:CAMPAIGNS_MAX]]


def wall_hotspot_notices(grant: LayerGrant, now: datetime | None = None) -> list[dict[str, Any]]:
    """The hotspots announced (``hotspot.raised``) in the last HOTSPOT_NOTICE_HOURS, newest
    first, shaped like the event (a wall opened later shows them too), within the grant's cells."""
    now = now or timezone.now()
    rows = HotspotAlert.objects.filter(raised_at__gte=now - timedelta(hours=HOTSPOT_NOTICE_HOURS))
    if grant.cells is not None:
        area = GridCell.objects.filter(pk__in=grant.cells).aggregate(area=Union("geom"))["area"]
        if area is None:
            return []
        rows = rows.filter(geom__intersects=area)
    return [
        {
            "object_id": f"alert-{a.pk}",
            "created_at": a.raised_at.isoformat(),
            "payload": {
                "geometry": json.loads(a.geom.geojson),
                "properties": {"category_id": a.category_id, "count": a.count, "trend": a.trend},
            },
        }
        for a in rows.order_by("-raised_at", "-pk")[:HOTSPOT_NOTICES_MAX]
    ]


@dataclass(frozen=True)
class WallPanel:
    """One panel of the wall: its script is ``maps/static/wall/panels/<name>.js``; it is on a
    viewer's wall only when their grants hold every one of ``layers``; ``numbers`` (if any) is
    its part of ``/control/api/panels.json``."""

    name: str
    layers: tuple[str, ...]
    numbers: Callable[[Any, dict[str, LayerGrant], datetime], Any] | None = None


WALL_PANELS: tuple[WallPanel, ...] = (
    WallPanel(
        "campaigns",
        ("campaigns", "campaign_buildings", "campaign_targets"),
        lambda user, grants, now: wall_active_campaigns(user),
    ),
    WallPanel("requests", ("requests",), lambda user, grants, now: wall_request_counts(grants["requests"])),
    WallPanel("home_alarms", ("alarm_devices",), lambda user, grants, now: wall_device_counts(grants["alarm_devices"])),
    WallPanel("hotspots", ("hotspots",), lambda user, grants, now: wall_hotspot_notices(grants["hotspots"], now)),
    WallPanel("cells", ("cells", "incidents"), lambda user, grants, now: wall_cells_behind(grants["cells"], now)),
)


def wall_panels_for(grants: dict[str, LayerGrant]) -> list[WallPanel]:
    """The panels whose layers the grants hold, in wall order."""
    return [p for p in WALL_PANELS if all(layer in grants for layer in p.layers)]


def wall_panel_numbers(user: Any, grants: dict[str, LayerGrant], now: datetime | None = None) -> dict[str, Any]:
    """Every number of the panels the viewer's grants hold (and nothing of the others)."""
    now = now or timezone.now()
    out: dict[str, Any] = {"at": now.isoformat()}
    for panel in wall_panels_for(grants):
        if panel.numbers is not None:
            out[panel.name] = panel.numbers(user, grants, now)
    return out
