"""Grid-cell performance over a period, per cell and per cell and team, computed in PostgreSQL.

For the incidents opened in ``[start, end)`` in a grid cell (level ``cell``):

- ``incidents``: all of them; the figures below leave the cancelled ones out;
- ``median_response_min``: median minutes from opening to arrival on scene (of those that arrived);
- ``median_resolution_min``: median minutes from opening to resolution (of those resolved);
- ``sla_due``: those resolved, or due (``due_at``) by the time of the report (``as_of``);
  ``sla_met``: those resolved by their due time; ``sla_compliance`` = met / due, in percent;
- ``resolved_share``: percent resolved (resolved or closed afterwards).

A cell (and a cell's team) is ``behind`` when its compliance is below CELL_SLA_TARGET_PERCENT, or
at least CELL_BEHIND_DROP_POINTS below its own compliance in the period of equal length before,
judged with one incident's slack: it would still be so had one more of its due incidents been
met. A cell sees a handful of incidents a week, where one late one moves its compliance by 15-50
points: without the slack, one late incident flagged a quiet cell, and most cells of the demo
village were flagged every week by chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

CELL_STATS_SQL = """
WITH inc AS (
  SELECT i.grid_cell_id, i.team_id, i.status = 'cancelled' AS cancelled, i.opened_at, i.arrived_at,
         i.resolved_at, i.due_at
  FROM command_incident i
  WHERE i.opened_at >= %(start)s AND i.opened_at < %(end)s AND i.grid_cell_id IS NOT NULL
)
SELECT c.id AS cell_id, c.code, c.name, t.code AS team_code,
       count(inc.opened_at)::int AS incidents,
       count(*) FILTER (WHERE inc.cancelled)::int AS cancelled,
       count(*) FILTER (WHERE NOT inc.cancelled AND inc.resolved_at IS NOT NULL)::int AS resolved,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM inc.arrived_at - inc.opened_at) / 60)
         FILTER (WHERE NOT inc.cancelled AND inc.arrived_at IS NOT NULL) AS median_response_min,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM inc.resolved_at - inc.opened_at) / 60)
         FILTER (WHERE NOT inc.cancelled AND inc.resolved_at IS NOT NULL) AS median_resolution_min,
       count(*) FILTER (WHERE NOT inc.cancelled AND (inc.resolved_at IS NOT NULL OR inc.due_at <= %(as_of)s))::int
         AS sla_due,
       count(*) FILTER (WHERE NOT inc.cancelled AND inc.resolved_at <= inc.due_at)::int AS sla_met,
       GROUPING(t.code) = 1 AS cell_total
FROM command_gridcell c
LEFT JOIN inc ON inc.grid_cell_id = c.id
LEFT JOIN command_team t ON t.id = inc.team_id
WHERE c.level = 'cell'
GROUP BY GROUPING SETS ((c.id, c.code, c.name), (c.id, c.code, c.name, t.code))
ORDER BY c.code, GROUPING(t.code) DESC, t.code
"""


@dataclass(frozen=True)
class CellStats:
    cell_id: int
    code: str
    name: str
    team_code: str | None  # None: the cell's total over every team
    incidents: int
    cancelled: int
    resolved: int
    median_response_min: float | None
    median_resolution_min: float | None
    sla_due: int
    sla_met: int
    previous_compliance: float | None = None
    behind: bool = False

    @property
    def sla_compliance(self) -> float | None:
        return round(100.0 * self.sla_met / self.sla_due, 1) if self.sla_due else None

    @property
    def resolved_share(self) -> float | None:
        counted = self.incidents - self.cancelled
        return round(100.0 * self.resolved / counted, 1) if counted else None

    @property
    def compliance_with_slack(self) -> float | None:
        """The compliance had one more due incident been met (one incident's slack)."""
        return 100.0 * min(self.sla_met + 1, self.sla_due) / self.sla_due if self.sla_due else None

    @property
    def key(self) -> tuple[int, str | None]:
        return self.cell_id, self.team_code


def _stats(start: datetime, end: datetime, as_of: datetime) -> list[CellStats]:
    with connection.cursor() as cursor:
        cursor.execute(CELL_STATS_SQL, {"start": start, "end": end, "as_of": as_of})
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    out = []
    for row in rows:
        total = row.pop("cell_total")
        if not total and row["team_code"] is None:
            continue  # a cell without incidents has one team-less row besides its total
        for key in ("median_response_min", "median_resolution_min"):
            if row[key] is not None:
                row[key] = round(float(row[key]), 1)
        out.append(CellStats(**row))
    return out


def cell_performance(*, start: datetime, end: datetime, as_of: datetime | None = None) -> list[CellStats]:
    """Per cell (``team_code`` None) and per cell and team, ordered by cell code, each with its
    compliance in the period of equal length before and whether it is falling behind."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    as_of = min(as_of or timezone.now(), end)
    previous = {s.key: s for s in _stats(start - (end - start), start, min(as_of, start))}
    target = float(settings.CELL_SLA_TARGET_PERCENT)
    drop = float(settings.CELL_BEHIND_DROP_POINTS)
    out = []
    for stats in _stats(start, end, as_of):
        before = previous.get(stats.key)
        prev = before.sla_compliance if before else None
        slack = stats.compliance_with_slack
        behind = slack is not None and (slack < target or (prev is not None and prev - slack >= drop))
        out.append(CellStats(**{**stats.__dict__, "previous_compliance": prev, "behind": behind}))
    return out
