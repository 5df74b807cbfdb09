"""Reads of the control-room wall (``/control/``): the KPI strip, the trend charts, the load per
grid cell, the feed, the alarms, the desk list, an incident's timeline and the workers nearest
to it. Each number the wall shows is computed here, once, in PostgreSQL; the page only shows
what these return (tests/maps/test_wall_browser.py proves the page equals the database).

Definitions (also in docs/wall.md):

- **open**: status new, dispatched, accepted or on scene (``command.layers.OPEN_INCIDENT_STATUSES``);
- **overdue**: open and past ``due_at`` (the SLA job announces each one as ``incident.overdue``);
- **today**: since local midnight in ``TIME_ZONE``;
- **response time**: ``accepted_at - opened_at`` of the incidents accepted today;
- **resolution time**: ``resolved_at - opened_at`` of the incidents resolved today;
- **SLA compliance** of a team: of its incidents whose due time fell in the last 24 h (not
  cancelled), the share resolved (or closed) by then;
- **alarm**: an open incident of priority 1 (``ALARM_PRIORITY``) not acknowledged yet; a *home*
  alarm when a home alarm device's call went into it (a report of source ``alarm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from command.layers import OPEN_INCIDENT_STATUSES
from command.models import Event, Incident, Report
from command.services.incidents import ALARM_PRIORITY

FEED_SIZE = 50
ALARMS_MAX = 20
DESK_MAX_ROWS = 500
TREND_HOURS = 24
NEAREST_WORKERS = 5


def day_start(now: datetime | None = None) -> datetime:
    """Local midnight (``TIME_ZONE``) of ``now``."""
    local = timezone.localtime(now or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _rows(sql: str, params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


_OPEN_SQL = """
SELECT status, team_id, count(*), count(*) FILTER (WHERE due_at < %s)
FROM command_incident WHERE status = ANY(%s) GROUP BY status, team_id
"""

_TODAY_SQL = """
SELECT
  (SELECT count(*) FROM command_report WHERE received_at >= %(start)s AND received_at <= %(now)s),
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM accepted_at - opened_at))
     FROM command_incident WHERE accepted_at >= %(start)s AND accepted_at <= %(now)s),
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - opened_at))
     FROM command_incident WHERE resolved_at >= %(start)s AND resolved_at <= %(now)s),
  (SELECT count(*) FROM command_worker WHERE on_duty)
"""


def wall_kpis(now: datetime | None = None) -> dict[str, Any]:
    """The KPI strip: open incidents by status and by team, overdue, reports today, median
    response and resolution time today (seconds, None when there is none), workers on duty."""
    now = now or timezone.now()
    by_status = dict.fromkeys(OPEN_INCIDENT_STATUSES, 0)
    by_team: dict[str, int] = {}
    overdue = 0
    for status, team_id, count, late in _rows(_OPEN_SQL, [now, list(OPEN_INCIDENT_STATUSES)]):
        by_status[status] += count
        key = str(team_id) if team_id is not None else "none"
        by_team[key] = by_team.get(key, 0) + count
        overdue += late
    reports, response, resolution, on_duty = _rows(_TODAY_SQL, {"start": day_start(now), "now": now})[0]
    return {
        "open_total": sum(by_status.values()),
        "open_by_status": by_status,
        "open_by_team": by_team,
        "overdue": overdue,
        "reports_today": reports,
        "median_response_s": round(response) if response is not None else None,
        "median_resolution_s": round(resolution) if resolution is not None else None,
        "workers_on_duty": on_duty,
    }


_HOURLY_SQL = """
SELECT floor(extract(epoch FROM %s::timestamptz - opened_at) / 3600)::int AS ago, category_id, count(*)
FROM command_incident WHERE opened_at > %s AND opened_at <= %s GROUP BY 1, 2
"""

_SLA_SQL = """
SELECT team_id,
       count(*) FILTER (WHERE coalesce(resolved_at, closed_at) <= due_at),
       count(*)
FROM command_incident
WHERE due_at > %s AND due_at <= %s AND status <> 'cancelled'
GROUP BY team_id
"""

_CELL_LOAD_SQL = """
SELECT grid_cell_id, count(*) FROM command_incident
WHERE status = ANY(%s) AND grid_cell_id IS NOT NULL GROUP BY grid_cell_id
"""


def cell_load() -> dict[str, int]:
    """Open incidents per grid cell id (cells without any are absent)."""
    return {str(cell): count for cell, count in _rows(_CELL_LOAD_SQL, [list(OPEN_INCIDENT_STATUSES)])}


def wall_trends(now: datetime | None = None) -> dict[str, Any]:
    """The charts: incidents opened per hour by category over the last 24 h (oldest hour first;
    ``hours`` are the hours' ends), SLA compliance by team over the last 24 h, load per cell."""
    now = now or timezone.now()
    since = now - timedelta(hours=TREND_HOURS)
    per_category: dict[str, list[int]] = {}
    for ago, category_id, count in _rows(_HOURLY_SQL, [now, since, now]):
        series = per_category.setdefault(str(category_id), [0] * TREND_HOURS)
        series[TREND_HOURS - 1 - min(max(ago, 0), TREND_HOURS - 1)] += count
    hours = [(now - timedelta(hours=TREND_HOURS - 1 - i)).isoformat() for i in range(TREND_HOURS)]
    sla = {
        str(team) if team is not None else "none": {"met": met, "due": due}
        for team, met, due in _rows(_SLA_SQL, [since, now])
    }
    return {"hours": hours, "per_category": per_category, "sla_by_team": sla, "cell_load": cell_load()}


def _incident_row(i: Incident) -> dict[str, Any]:
    return {
        "id": i.pk,
        "category_id": i.category_id,
        "status": i.status,
        "priority": i.priority,
        "grid_cell_id": i.grid_cell_id,
        "team_id": i.team_id,
        "worker_id": i.worker_id,
        "report_count": i.report_count,
        "opened_at": i.opened_at.isoformat(),
        "due_at": i.due_at.isoformat(),
        "updated_at": i.updated_at.isoformat(),
        "overdue": i.status in OPEN_INCIDENT_STATUSES and i.due_at < timezone.now(),
        "location": [i.location.x, i.location.y],
    }


def wall_feed(limit: int = FEED_SIZE) -> list[dict[str, Any]]:
    """The newest incidents, newest first."""
    return [_incident_row(i) for i in Incident.objects.order_by("-opened_at", "-pk")[:limit]]


def wall_alarms() -> list[dict[str, Any]]:
    """Open top-priority incidents whose alarm nobody has acknowledged, newest first."""
    home = Report.objects.filter(incident_id=OuterRef("pk"), source=Report.Source.ALARM)
    rows = (
        Incident.objects.filter(
            status__in=OPEN_INCIDENT_STATUSES, priority=ALARM_PRIORITY, alarm_acknowledged_at__isnull=True
        )
        .annotate(home=Exists(home))
        .order_by("-opened_at", "-pk")[:ALARMS_MAX]
    )
    # home: raised by a home SOS/gas/smoke device (a report from the alarm webhook): its own sound
    return [{**_incident_row(i), "home": i.home} for i in rows]


@dataclass(frozen=True)
class DeskFilter:
    hours: int = 24
    category_id: int | None = None
    status: str | None = None  # a status, or "open"
    grid_cell_id: int | None = None


def desk_incidents(f: DeskFilter, now: datetime | None = None) -> list[dict[str, Any]]:
    """The desk list: incidents opened in the last ``hours``, filtered, newest first."""
    now = now or timezone.now()
    qs = Incident.objects.filter(opened_at__gt=now - timedelta(hours=f.hours), opened_at__lte=now)
    if f.category_id is not None:
        qs = qs.filter(category_id=f.category_id)
    if f.status == "open":
        qs = qs.filter(status__in=OPEN_INCIDENT_STATUSES)
    elif f.status:
        qs = qs.filter(status=f.status)
    if f.grid_cell_id is not None:
        qs = qs.filter(grid_cell_id=f.grid_cell_id)
    return [_incident_row(i) for i in qs.order_by("-opened_at", "-pk")[:DESK_MAX_ROWS]]


def incident_timeline(incident: Incident) -> list[dict[str, Any]]:
    """What happened to the incident, oldest first: its events (created, each step with its
    action, overdue, alarm acknowledged) and its reports' arrivals."""
    out: list[dict[str, Any]] = []
    for seq, kind, payload, at in Event.objects.filter(layer="incidents", object_id=str(incident.pk)).values_list(
        "seq", "kind", "payload", "created_at"
    ):
        props = (payload or {}).get("properties") or {}
        out.append(
            {
                "seq": seq,
                "kind": kind,
                "action": props.get("action"),
                "status": props.get("status"),
                "priority": props.get("priority"),
                "at": at.isoformat(),
            }
        )
    for report_id, at, source in incident.reports.values_list("pk", "received_at", "source"):
        out.append({"seq": None, "kind": "report", "action": source, "report_id": report_id, "at": at.isoformat()})
    out.sort(key=lambda e: (e["at"], e["seq"] or 0))
    return out


_NEAREST_SQL = """
SELECT w.id, w.team_id, w.display_name, w.phone,
       ST_Distance(w.last_position::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) AS metres,
       (SELECT count(*) FROM command_incident i WHERE i.worker_id = w.id AND i.status = ANY(%s)) AS load,
       ST_X(w.last_position), ST_Y(w.last_position), w.last_position_at
FROM command_worker w
WHERE w.on_duty AND w.last_position IS NOT NULL
ORDER BY w.last_position <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326), w.id
LIMIT %s
"""


def workers_nearest_available(location: Point, limit: int = NEAREST_WORKERS) -> list[dict[str, Any]]:
    """Workers on duty nearest to ``location`` (KNN on their last position), with the distance
    in metres and their load (open incidents assigned to them). Names and phones are personal
    data: the caller redacts them by the workers layer's grant."""
    rows = _rows(
        _NEAREST_SQL,
        [location.x, location.y, list(OPEN_INCIDENT_STATUSES), location.x, location.y, limit],
    )
    return [
        {
            "id": wid,
            "team_id": team_id,
            "display_name": name,
            "phone": phone,
            "distance_m": round(metres, 1),
            "load": load,
            "location": [x, y],
            "last_position_at": at.isoformat() if at else None,
        }
        for wid, team_id, name, phone, metres, load, x, y, at in rows
    ]
