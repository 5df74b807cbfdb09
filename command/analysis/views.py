"""Analysis pages and JSON: the period report (HTML, PDF, CSV, XLSX), grid-cell performance
for the wall, the cameras covering an incident (the wall's drawer), incidents per camera.

Every view asks a permission (``command.view_analysis``), or the layer policy for what comes
from layers: an incident the viewer may not see answers 404 exactly like a missing one.
Bad parameters get 400 with the reason.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from command.analysis.cells import cell_performance
from command.analysis.coverage import camera_incident_counts
from command.analysis.report import (
    period_check,
    report_build,
    report_csv_zip,
    report_html,
    report_pdf,
    report_xlsx,
)
from command.layer_queries import FeatureQuery, layer_features
from command.layers import layer_access_log, layers_for_user, redact
from command.selectors import cameras_covering

PERMISSION = "command.view_analysis"


class BadPeriod(ValueError):
    pass


def _bad(reason: str, param: str | None = None) -> JsonResponse:
    return JsonResponse({"error": "bad_request", "detail": reason, "param": param}, status=400)


def _forbidden() -> JsonResponse:
    return JsonResponse({"error": "forbidden", "detail": _("You may not view the analysis.")}, status=403)


def _instant(text: str, param: str, *, end: bool) -> datetime:
    """An ISO date (a day: its start, or for ``end`` the next day's start) or date-time."""
    if len(text) > 40:
        raise BadPeriod(param)
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:
        raise BadPeriod(param) from None
    if moment is None and day is None:
        raise BadPeriod(param)
    if moment is None:
        assert day is not None
        moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def period_from(params: Any, *, default_days: int = 7) -> tuple[datetime, datetime]:
    """``start``/``end`` (ISO dates or date-times; ``end``'s day is included), or ``days`` back
    from today's end (default 7: the last week)."""
    today_end = datetime.combine(timezone.localdate() + timedelta(days=1), time.min)
    end = _instant(params["end"], "end", end=True) if params.get("end") else timezone.make_aware(today_end)
    if params.get("start"):
        start = _instant(params["start"], "start", end=False)
    else:
        days_text = params.get("days") or str(default_days)
        if not days_text.isdigit() or not 1 <= int(days_text) <= 366:
            raise BadPeriod("days")
        start = end - timedelta(days=int(days_text))
    return start, end


def _period_or_400(request: HttpRequest) -> tuple[datetime, datetime] | JsonResponse:
    try:
        start, end = period_from(request.GET)
        period_check(start, end)
    except BadPeriod as exc:
        return _bad(
            _("%(param)s: give a date as YYYY-MM-DD (or a date-time; days: 1 to 366).") % {"param": exc.args[0]},
            exc.args[0],
        )
    except ValueError as exc:
        return _bad(str(exc), "end")
    return start, end


@require_GET
@login_required
def report_page(request: HttpRequest, fmt: str = "html") -> HttpResponse:
    """The period report (``?start=&end=`` or ``?days=``; default the last 7 days) as a page,
    ``report.pdf``, ``report.csv.zip`` or ``report.xlsx``."""
    if not request.user.has_perm(PERMISSION):
        return _forbidden()
    period = _period_or_400(request)
    if isinstance(period, JsonResponse):
        return period
    start, end = period
    report = report_build(start=start, end=end)
    stamp = f"{timezone.localtime(start):%Y%m%d}-{timezone.localtime(end - timedelta(seconds=1)):%Y%m%d}"
    query = request.GET.urlencode()
    links = [
        (_("PDF"), f"report.pdf?{query}"),
        (_("Tables (XLSX)"), f"report.xlsx?{query}"),
        (_("Tables (CSV, zipped)"), f"report.csv.zip?{query}"),
    ]
    if fmt == "pdf":
        response = HttpResponse(report_pdf(report_html(report)), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="gridcommand-report-{stamp}.pdf"'
    elif fmt == "xlsx":
        response = HttpResponse(
            report_xlsx(report), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response["Content-Disposition"] = f'attachment; filename="gridcommand-report-{stamp}.xlsx"'
    elif fmt == "csv":
        response = HttpResponse(report_csv_zip(report), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="gridcommand-report-{stamp}-csv.zip"'
    else:
        response = HttpResponse(report_html(report, links=links))
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def cells_json(request: HttpRequest) -> HttpResponse:
    """Grid-cell performance over the period (default: the last 7 days), per cell and per cell
    and team, with ``behind`` flags: what the wall shows."""
    if not request.user.has_perm(PERMISSION):
        return _forbidden()
    period = _period_or_400(request)
    if isinstance(period, JsonResponse):
        return period
    start, end = period
    rows = [
        {**s.__dict__, "sla_compliance": s.sla_compliance, "resolved_share": s.resolved_share}
        for s in cell_performance(start=start, end=end)
    ]
    return JsonResponse(
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "cells": rows,
            "behind": [r["code"] for r in rows if r["team_code"] is None and r["behind"]],
        }
    )


@require_GET
@login_required
def cameras_json(request: HttpRequest) -> HttpResponse:
    """Per camera, the incidents of the period inside its view cone."""
    if not request.user.has_perm(PERMISSION):
        return _forbidden()
    period = _period_or_400(request)
    if isinstance(period, JsonResponse):
        return period
    start, end = period
    return JsonResponse(
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "cameras": [c.__dict__ for c in camera_incident_counts(start=start, end=end)],
        }
    )


@require_GET
@login_required
def incident_cameras_json(request: HttpRequest, incident_id: int) -> HttpResponse:
    """The cameras whose view cone covers an incident (the wall's drawer), as the cameras layer
    policy lets the viewer see them. An incident the viewer may not see is "not found", as a
    missing one is; without the cameras layer the list is empty."""
    grants = layers_for_user(request.user)
    incident_grant = grants.get("incidents")
    not_found = JsonResponse({"error": "not_found", "detail": _("No such incident.")}, status=404)
    if incident_grant is None:
        return not_found
    page = layer_features(incident_grant, FeatureQuery(feature_id=incident_id, limit=1), with_ids=True)
    if page.returned == 0:
        return not_found
    layer_access_log(user=request.user, channel="analysis", grant=incident_grant, object_ids=[incident_id])
    from command.models import Incident

    location = Incident.objects.only("location").get(pk=incident_id).location
    camera_grant = grants.get("cameras")
    cameras: list[dict[str, Any]] = []
    if camera_grant is not None:
        for camera in cameras_covering(location):
            properties = {name: getattr(camera, name) for name in camera_grant.layer.all_fields}
            visible = redact("cameras", properties, camera_grant) or {}
            cameras.append({**visible, "distance_m": round(camera.distance.m, 1)})  # type: ignore[attr-defined]
    return JsonResponse({"incident": incident_id, "cameras": cameras})
