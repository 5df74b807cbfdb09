"""The period report: hotspots (map and table), grid-cell performance, category trends, camera
coverage, as printable HTML, PDF (Debian's Chromium prints the HTML, with the installed Noto CJK
fonts: Chinese renders), CSV and XLSX of the tables. ``manage.py analysis_report`` and the page
``/analysis/`` both build it with ``report_build``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from command.analysis.cells import CellStats, cell_performance
from command.analysis.coverage import CameraIncidents, RoadCoverage, camera_incident_counts, road_coverage
from command.analysis.hotspots import Hotspot, hotspots_compute
from command.models import Team

MAX_PERIOD_DAYS = 366

TREND_SQL = """
SELECT c.id, c.code, c.name_zh, c.name_en,
       count(i.id) FILTER (WHERE i.opened_at >= %(start)s)::int AS current,
       count(i.id) FILTER (WHERE i.opened_at < %(start)s)::int AS previous
FROM command_category c
LEFT JOIN command_incident i ON i.category_id = c.id AND i.opened_at >= %(before)s AND i.opened_at < %(end)s
GROUP BY c.id ORDER BY count(i.id) FILTER (WHERE i.opened_at >= %(start)s) DESC, c.code
"""

DAILY_SQL = """
SELECT d::date, count(i.id)::int
FROM generate_series(%(start_day)s::date, %(last_day)s::date, interval '1 day') d
LEFT JOIN command_incident i
  ON i.opened_at >= %(start)s AND i.opened_at < %(end)s AND (i.opened_at AT TIME ZONE %(tz)s)::date = d::date
GROUP BY d ORDER BY d
"""

MAP_SQL = """
SELECT 'cell', code, ST_AsGeoJSON(geom, 6) FROM command_gridcell WHERE level = 'cell'
UNION ALL SELECT 'road', road_class, ST_AsGeoJSON(geom, 6) FROM command_road WHERE road_class <> 'lane'
"""

CATEGORY_COLORS = ["#e53935", "#fb8c00", "#8e24aa", "#1e88e5", "#43a047", "#00897b", "#6d4c41", "#d81b60"]


@dataclass(frozen=True)
class CategoryTrend:
    id: int
    code: str
    name_zh: str
    name_en: str
    current: int
    previous: int

    @property
    def change_percent(self) -> float | None:
        return round(100.0 * (self.current - self.previous) / self.previous, 1) if self.previous else None


@dataclass
class Report:
    start: datetime
    end: datetime
    generated_at: datetime
    hotspots: list[Hotspot]
    cells: list[CellStats]
    trends: list[CategoryTrend]
    daily: list[tuple[Any, int]]
    cameras: list[CameraIncidents]
    roads: list[RoadCoverage]
    categories: dict[int, str] = field(default_factory=dict)
    cell_codes: dict[int, str] = field(default_factory=dict)
    map_svg: str = ""

    @property
    def behind(self) -> list[CellStats]:
        return [c for c in self.cells if c.team_code is None and c.behind]


def period_check(start: datetime, end: datetime) -> None:
    """ValueError with a reason a person can act on."""
    if end <= start:
        raise ValueError(_("The period must end after it starts."))
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise ValueError(_("A report covers at most %(days)s days.") % {"days": MAX_PERIOD_DAYS})


def report_build(*, start: datetime, end: datetime) -> Report:
    period_check(start, end)
    tz = timezone.get_current_timezone_name()
    with connection.cursor() as cursor:
        cursor.execute(TREND_SQL, {"start": start, "end": end, "before": start - (end - start)})
        trends = [CategoryTrend(*row) for row in cursor.fetchall()]
        local_start, local_last = timezone.localtime(start), timezone.localtime(end - timedelta(microseconds=1))
        cursor.execute(
            DAILY_SQL,
            {"start": start, "end": end, "tz": tz, "start_day": local_start.date(), "last_day": local_last.date()},
        )
        daily = [(row[0], row[1]) for row in cursor.fetchall()]
        cursor.execute("SELECT id, code FROM command_gridcell")
        cell_codes = {row[0]: row[1] for row in cursor.fetchall()}
    report = Report(
        start=start,
        end=end,
        generated_at=timezone.now(),
        hotspots=hotspots_compute(start=start, end=end),
        cells=cell_performance(start=start, end=end),
        trends=trends,
        daily=daily,
        cameras=camera_incident_counts(start=start, end=end),
        roads=road_coverage(),
        categories={t.id: t.name_zh for t in trends},
        cell_codes=cell_codes,
    )
    report.map_svg = _map_svg(report)
    return report


def _map_svg(report: Report, width: int = 720, height: int = 480) -> str:
    """The hotspot map as inline SVG (prints without scripts or tiles): cells, main and
    secondary roads, hotspot hulls coloured by category and labelled with their count."""
    shapes: list[tuple[str, str, dict[str, Any]]] = []
    with connection.cursor() as cursor:
        cursor.execute(MAP_SQL)
        shapes = [(kind, label, json.loads(geojson)) for kind, label, geojson in cursor.fetchall()]
    shapes += [("hotspot", str(h.category_id), h.geojson) for h in report.hotspots]
    coords = [pt for _k, _l, g in shapes for pt in _points(g)]
    if not coords:
        return ""
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    scale = min((width - 20) / max(x1 - x0, 1e-9), (height - 20) / max(y1 - y0, 1e-9))

    def xy(pt: list[float]) -> str:
        return f"{10 + (pt[0] - x0) * scale:.1f},{height - 10 - (pt[1] - y0) * scale:.1f}"

    colors = {cid: CATEGORY_COLORS[n % len(CATEGORY_COLORS)] for n, cid in enumerate(sorted(report.categories))}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="map">']
    for kind, label, geom in shapes:
        if kind == "road":
            for line in _lines(geom):
                w = 2.5 if label == "main" else 1.2
                parts.append(
                    f'<polyline points="{" ".join(map(xy, line))}" fill="none" stroke="#9aa5b1" stroke-width="{w}"/>'
                )
        else:
            for ring in _rings(geom):
                if kind == "cell":
                    parts.append(
                        f'<polygon points="{" ".join(map(xy, ring))}" fill="none" stroke="#3d8bfd" stroke-width="0.8"/>'
                    )
                else:
                    color = colors.get(int(label), "#ff1744")
                    parts.append(
                        f'<polygon points="{" ".join(map(xy, ring))}" fill="{color}" fill-opacity="0.45" '
                        f'stroke="{color}" stroke-width="1.5"/>'
                    )
    for h in report.hotspots:
        ring = _rings(h.geojson)[0]
        cx = sum(p[0] for p in ring) / len(ring)
        cy = sum(p[1] for p in ring) / len(ring)
        x, y = xy([cx, cy]).split(",")
        parts.append(f'<text x="{x}" y="{y}" font-size="11" text-anchor="middle">{h.count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rings(geom: dict[str, Any]) -> list[list[list[float]]]:
    if geom["type"] == "Polygon":
        return [geom["coordinates"][0]]
    if geom["type"] == "MultiPolygon":
        return [poly[0] for poly in geom["coordinates"]]
    return []


def _lines(geom: dict[str, Any]) -> list[list[list[float]]]:
    if geom["type"] == "LineString":
        return [geom["coordinates"]]
    if geom["type"] == "MultiLineString":
        return list(geom["coordinates"])
    return []


def _points(geom: dict[str, Any]) -> list[list[float]]:
    return [pt for part in (_rings(geom) + _lines(geom)) for pt in part]


# --- outputs ----------------------------------------------------------------------------------


def report_html(report: Report, *, links: list[tuple[str, str]] | None = None) -> str:
    """The printable page (self-contained: inline CSS and SVG); ``links`` to the other formats."""
    tables = report_tables(report)
    header, rows = tables["cameras"]
    return render_to_string(
        "command/analysis_report.html",
        {
            "report": report,
            "tables": tables,
            "cell_rows": list(zip(report.cells, tables["cells"][1], strict=True)),
            "daily_max": max([n for _d, n in report.daily] + [1]),
            "target": settings.CELL_SLA_TARGET_PERCENT,
            "drop": settings.CELL_BEHIND_DROP_POINTS,
            "top_cameras": (header, rows[:15]),
            "links": links or [],
        },
    )


def report_tables(report: Report) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each table of the report: (column titles, rows): the CSV files and the XLSX sheets."""

    def when(value: datetime) -> str:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")

    def dash(value: Any) -> Any:
        return "" if value is None else value

    teams = dict(Team.objects.values_list("code", "name_zh"))  # as the categories: their Chinese names

    return {
        "cells": (
            [
                _("Cell code"),
                _("Cell"),
                _("Team"),
                _("Incidents"),
                _("Cancelled"),
                _("Resolved"),
                _("Median response (min)"),
                _("Median resolution (min)"),
                _("SLA due"),
                _("SLA met"),
                _("SLA compliance (%)"),
                _("Previous period SLA (%)"),
                _("Resolved (%)"),
                _("Falling behind"),
            ],
            [
                [
                    c.code,
                    c.name,
                    teams.get(c.team_code, c.team_code) if c.team_code else _("all teams"),
                    c.incidents,
                    c.cancelled,
                    c.resolved,
                    dash(c.median_response_min),
                    dash(c.median_resolution_min),
                    c.sla_due,
                    c.sla_met,
                    dash(c.sla_compliance),
                    dash(c.previous_compliance),
                    dash(c.resolved_share),
                    _("yes") if c.behind else "",
                ]
                for c in report.cells
            ],
        ),
        "hotspots": (
            [
                _("Category"),
                _("Incidents"),
                _("Previous window"),
                _("Trend"),
                _("Windows"),
                _("Recurrent"),
                _("Cell"),
                _("First"),
                _("Last"),
            ],
            [
                [
                    report.categories.get(h.category_id, h.category_id),
                    h.count,
                    h.previous_count,
                    _trend(h.trend),
                    h.windows,
                    _("yes") if h.recurrent else "",
                    report.cell_codes.get(h.grid_cell_id or 0, ""),
                    when(h.first_at),
                    when(h.last_at),
                ]
                for h in report.hotspots
            ],
        ),
        "trends": (
            [_("Category"), _("Incidents"), _("Previous period"), _("Change (%)")],
            [[t.name_zh, t.current, t.previous, dash(t.change_percent)] for t in report.trends],
        ),
        "cameras": (
            [_("Camera"), _("Name"), _("Status"), _("Incidents in view")],
            [[c.code, c.name, c.status, c.incidents] for c in report.cameras],
        ),
        "roads": (
            [_("Road"), _("Class"), _("Length (m)"), _("Uncovered (m)"), _("Uncovered (%)")],
            [
                [r.name, r.road_class, r.length_m, r.uncovered_m, round(100 * r.uncovered_share, 1)]
                for r in report.roads
            ],
        ),
    }


def _trend(trend: str) -> str:
    titles = {
        "new": pgettext("hotspot trend", "new"),
        "growing": pgettext("hotspot trend", "growing"),
        "stable": pgettext("hotspot trend", "stable"),
        "shrinking": pgettext("hotspot trend", "shrinking"),
    }
    return titles.get(trend, trend)


def report_csv_zip(report: Report) -> bytes:
    """One CSV per table (UTF-8 with BOM, so spreadsheet programs read the Chinese), zipped."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (header, rows) in report_tables(report).items():
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(header)
            writer.writerows(rows)
            archive.writestr(f"{name}.csv", "\ufeff" + text.getvalue())
    return out.getvalue()


def report_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, (header, rows) in report_tables(report).items():
        sheet = workbook.create_sheet(name)
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def report_pdf(html: str) -> bytes:
    """``html`` printed to PDF (A4) by headless Debian Chromium through Playwright. The page is
    self-contained (inline CSS and SVG): nothing is fetched, and the network is off."""
    from playwright.sync_api import sync_playwright

    from command.analysis.browser import chromium_launch_options

    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options())
        try:
            context = browser.new_context(offline=True, java_script_enabled=False)
            page = context.new_page()
            page.set_content(html, wait_until="load")
            return page.pdf(
                prefer_css_page_size=True,
                format="A4",
                print_background=True,
                margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"},
            )
        finally:
            browser.close()
