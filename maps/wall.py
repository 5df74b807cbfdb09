"""The control-room wall, ``/control/``: a full-screen dark page for operators (1920×1080 and
3840×2160, desk mode with ``?mode=desk``), and the JSON it reads. The map comes from the one
page builder (``maps.pages.map_build``, kind ``wall``); ``maps/static/wall/wall.js`` draws the
live parts from the websocket (``realtime/static/realtime/live.js``) and asks these endpoints
for the numbers, which come from ``command.wall_selectors`` only. Actions (dispatch, priority,
close, cancel, acknowledge) go to the REST API (``/api/v1/incidents/<id>/<action>/``).

Every view needs ``command.use_control_room`` and the incidents layer (the one policy); names
and phones of workers and report notes follow the workers' and reports' grants, and unmasked
views are logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from html import escape
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from command.eventlog import latest_seq
from command.field_selectors import contents_policy, incident_get_for_user, photos_visible_to
from command.layers import OPEN_INCIDENT_STATUSES, layer_access_log, layers_for_user
from command.models import Category, GridCell, Incident, Report, Team
from command.report_input import report_value
from command.resident_models import ServiceRequest
from command.selectors import cameras_covering
from command.services.incidents import ALARM_PRIORITY
from command.wall_panel_selectors import wall_panel_numbers, wall_panels_for
from command.wall_selectors import (
    DeskFilter,
    desk_incidents,
    incident_timeline,
    wall_alarms,
    wall_feed,
    wall_kpis,
    wall_trends,
    workers_nearest_available,
)
from maps.campaigns import progress_strings
from maps.pages import map_page_cached

WALL_PERMISSION = "command.use_control_room"
DESK_MAX_HOURS = 24 * 90
DISPATCH_PERMISSION = "command.dispatch_incident"


def _json(data: Any, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "private, no-store"
    return response


def wall_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (else the login page), with the wall permission and the incidents layer (else 403)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(WALL_PERMISSION) or "incidents" not in layers_for_user(request.user):
            message = _("The control-room wall is for control-room operators.")
            if request.path.endswith(".json"):
                return _json({"detail": message}, status=403)
            return HttpResponse(message, status=403, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapped


def old_control_room(request: HttpRequest) -> HttpResponse:
    """``/maps/control-room/`` moved to ``/control/``."""
    return redirect("/control/", permanent=True)


def _reference() -> dict[str, Any]:
    en = (get_language() or "").startswith("en")
    return {
        "categories": {
            str(c.pk): {"code": c.code, "name": c.name_en if en else c.name_zh, "priority": c.priority}
            for c in Category.objects.all()
        },
        "teams": {str(t.pk): t.name_en if en else t.name_zh for t in Team.objects.all()},
        "cells": {
            str(pk): code for pk, code in GridCell.objects.filter(level=GridCell.Level.CELL).values_list("pk", "code")
        },
        "statuses": {value: str(label) for value, label in Incident.Status.choices},
        "sources": {value: str(label) for value, label in Report.Source.choices},
    }


WALL_STRINGS = {
    "connection_lost_since": "Connection lost since %(time)s; reconnecting…",
    "acknowledge": "Acknowledge",
    "alarm": "Alarm",
    "dispatch": "Dispatch",
    "dispatch_team": "Dispatch to team",
    "priority": "Priority",
    "close": "Close",
    "cancel": "Cancel incident",
    "cancel_reason": "Why is it cancelled?",
    "close_note": "Closing note (optional)",
    "reports": "Reports",
    "timeline": "Timeline",
    "cameras": "Cameras covering the spot",
    "nearest_workers": "Nearest workers on duty",
    "no_cameras": "No camera covers this spot.",
    "no_workers": "No worker on duty has a position.",
    "snapshot": "Snapshot",
    "stream": "Stream",
    "metres": "%(m)s m",
    "load": "load %(n)s",
    "overdue": "Overdue",
    "due": "due",
    "opened": "opened",
    "masked": "(hidden)",
    "sound_on": "Sound on",
    "sound_off": "Enable sound",
    "error": "Not done: %(detail)s",
    "done": "Done.",
    "none": "none",
    "minutes": "%(n)s min",
    "per_hour": "Incidents per hour (24 h)",
    "sla_by_team": "SLA compliance by team (24 h)",
    "load_by_cell": "Open incidents by grid cell",
    "no_photo_rights": "Notes and photos are not shown to this login.",
    "report_from": "report",
    "kind_incident.created": "opened",
    "kind_incident.updated": "updated",
    "kind_incident.overdue": "overdue",
    "kind_alarm.acknowledged": "alarm acknowledged",
    "kind_report": "report received",
    "action_accept": "accepted",
    "action_arrive": "on scene",
    "action_resolve": "resolved",
    "action_hand_back": "handed back",
    "action_dispatch": "dispatched",
    "action_dispatch_team": "dispatched to team",
    "action_close": "closed",
    "action_cancel": "cancelled",
    "action_priority": "priority changed",
    "unassigned": "unassigned",
    "results": "%(n)s incidents",
}


def _strings() -> dict[str, str]:
    # gettext at request time: the catalog entries are in maps/locale (zh-Hans default, English).
    return {key: _(text) for key, text in WALL_STRINGS.items()}


# The panels' words (maps/static/wall/panels/*.js; command/wall_panel_selectors.py decides which
# panels a viewer's wall has).
PANEL_STRINGS = {
    "campaigns": "Door-to-door campaigns",
    "no_campaigns": "No active campaign.",
    "requests": "Resident requests",
    "requests_open": "open",
    "requests_overdue": "overdue",
    "no_requests": "No open request.",
    "request_channel_phone": "phone",
    "request_channel_in_person": "in person",
    "request_channel_field_app": "field app",
    "request_channel_resident_page": "resident page",
    "request_status_submitted": "submitted",
    "request_status_triaged": "assigned to a team",
    "request_status_published": "waiting for a volunteer",
    "request_status_taken": "taken",
    "request_status_resolved": "resolved",
    "request_status_closed": "rated and closed",
    "request_status_cancelled": "cancelled",
    "devices": "Home alarm devices",
    "devices_offline": "offline",
    "devices_alarm": "alarm",
    "devices_online": "online",
    "no_devices_offline": "Every device answers its heartbeat.",
    "last_heartbeat": "last heartbeat %(time)s",
    "device_kind_sos": "SOS button",
    "device_kind_gas": "gas alarm",
    "device_kind_smoke": "smoke alarm",
    "home_alarm": "Home alarm",
    "household": "Household",
    "head_of_household": "head of household",
    "wearer": "wearer",
    "emergency_contact": "emergency contact",
    "logged_view": "Shown for the alarm response; this view is logged.",
    "hotspot_new": "New hotspot",
    "hotspot_growing": "Hotspot growing",
    "hotspot_count": "%(n)s incidents",
    "dismiss": "Dismiss",
    "cells_behind": "Grid cells falling behind (7 days)",
    "no_cells_behind": "No grid cell is behind.",
    "sla_compliance": "SLA %(pct)s%%",
    "previous": "before %(pct)s%%",
}


def _panel_strings() -> dict[str, str]:
    return {key: _(text) for key, text in PANEL_STRINGS.items()}


def wall_panels_head(names: list[str]) -> list[str]:
    """The panels' stylesheet and scripts, to follow wall.js's: the hub, the code the campaign
    panel reuses (the progress page's), one script per panel (``maps/static/wall/panels/``)."""
    if not names:
        return []
    scripts = ["wall/panels/panels.js", *(["maps/campaign-progress.js"] if "campaigns" in names else [])]
    scripts += [f"wall/panels/{name}.js" for name in names]
    return [
        f'<link rel="stylesheet" href="{static("wall/panels/panels.css")}">',
        *(f'<script defer src="{static(script)}"></script>' for script in scripts),
    ]


WALL_SCRIPTS = ("realtime/live.js", "wall/wall.js")
WALL_LATER_SCRIPT = "vendor/echarts/echarts.min.js"  # 1 MB: wall.js loads it after the first data


@require_GET
@wall_view
def control(request: HttpRequest) -> HttpResponse:
    """The wall: the map page (built once per grants and language, maps.pages.map_page_cached:
    it holds no data; the layers load after the first paint) with this request's panels and
    configuration (translations, reference lists, permissions, CSRF token)."""
    desk = request.GET.get("mode") == "desk"
    user = request.user
    title = _("Control room") + " · GridCommand"
    head = [
        f"<title>{escape(title)}</title>",
        f'<link rel="stylesheet" href="{static("wall/wall.css")}">',
        *(f'<script defer src="{static(script)}"></script>' for script in WALL_SCRIPTS),
    ]
    # the panels this viewer's grants hold (command/wall_panel_selectors.py), one script each
    panel_names = [p.name for p in wall_panels_for(layers_for_user(user))]
    head += wall_panels_head(panel_names)
    page = map_page_cached(user=user, kind="wall", head=head)
    config = {
        "mode": "desk" if desk else "wall",
        "strings": _strings(),
        "reference": _reference(),
        "open_statuses": list(OPEN_INCIDENT_STATUSES),
        "alarm_priority": ALARM_PRIORITY,
        "gcj02": settings.BASEMAP_CRS == "gcj02",
        "can_dispatch": user.has_perm(DISPATCH_PERMISSION),
        "alarm_sound": static("wall/alarm.wav"),
        "charts_script": static(WALL_LATER_SCRIPT),
        "language": get_language(),
        "csrf_token": get_token(request),
    }
    config["panels"] = panel_names
    config["panel_strings"] = _panel_strings()
    config["campaign_strings"] = progress_strings()
    config["home_alarm_sound"] = static("wall/home-alarm.wav")
    config["request_open_statuses"] = list(ServiceRequest.OPEN_STATUSES)
    panels = render_to_string("maps/wall.html", {"desk": desk, "reference": config["reference"]}, request=request)
    blob = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    body = f'{panels}<script id="gc-wall-config" type="application/json">{blob}</script>\n</body>'
    html = page.replace("<html>", f'<html lang="{get_language()}" class="gc-wall">', 1).replace("</body>", body, 1)
    response = HttpResponse(html)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@wall_view
def state(request: HttpRequest) -> JsonResponse:
    """Everything the wall shows besides the map: KPIs, charts, cell load, feed, alarms; and
    ``seq``, the last event committed before they were read (so they count every event up to it:
    a stream's resync at a seq not above it can take this answer; wall.js asks it before its
    stream is subscribed)."""
    seq = latest_seq()  # first: commit order is seq order, so the reads below see all up to it
    now = timezone.now()
    return _json(
        {
            "seq": seq,
            "at": now.isoformat(),
            "kpis": wall_kpis(now),
            "trends": wall_trends(now),
            "feed": wall_feed(),
            "alarms": wall_alarms(),
        }
    )


@require_GET
@wall_view
def panels(request: HttpRequest) -> JsonResponse:
    """The panels' numbers (command/wall_panel_selectors.py), for the panels the viewer's grants hold."""
    return _json(wall_panel_numbers(request.user, layers_for_user(request.user)))


def _int_param(request: HttpRequest, name: str, *, low: int, high: int | None = None) -> int | None:
    raw = request.GET.get(name, "")
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(_("%(name)s must be a whole number.") % {"name": name}) from None
    if value < low or (high is not None and value > high):
        raise ValueError(_("%(name)s must be between %(low)s and %(high)s.") % {"name": name, "low": low, "high": high})
    return value


@require_GET
@wall_view
def desk(request: HttpRequest) -> JsonResponse:
    """The desk list: ``hours`` (1..2160, default 24), ``category``, ``status`` (or ``open``), ``cell`` (ids)."""
    try:
        hours = _int_param(request, "hours", low=1, high=DESK_MAX_HOURS) or 24
        category = _int_param(request, "category", low=1, high=2**31 - 1)
        cell = _int_param(request, "cell", low=1, high=2**31 - 1)
    except ValueError as exc:
        return _json({"detail": str(exc)}, status=400)
    status = request.GET.get("status") or None
    if status is not None and status != "open" and status not in Incident.Status.values:
        return _json(
            {"detail": _("status must be open or one of: %(s)s.") % {"s": ", ".join(Incident.Status.values)}},
            status=400,
        )
    rows = desk_incidents(DeskFilter(hours=hours, category_id=category, status=status, grid_cell_id=cell))
    return _json({"incidents": rows})


@require_GET
@wall_view
def incident_detail(request: HttpRequest, pk: int) -> JsonResponse:
    """The drawer: the incident, its reports (notes and photos as the viewer may see them,
    through command.field_selectors), its timeline, the cameras covering it, the nearest
    workers on duty (names as the workers layer's grant allows)."""
    user = request.user
    incident = incident_get_for_user(user=user, incident_id=pk)
    if incident is None:  # missing and not visible alike
        return _json({"detail": _("No such incident.")}, status=404)
    # notes come masked (or, for roles that see no personal data, not at all) unless the
    # drawer is asked with ?purpose= by a role that may unmask (logged; docs/privacy.md)
    policy = contents_policy(user, (request.GET.get("purpose") or "").strip()[:200])
    photos: dict[int, list[dict[str, Any]]] = {}
    for photo in photos_visible_to(user).filter(report__incident_id=incident.pk).order_by("pk"):
        photos.setdefault(int(photo.report_id or 0), []).append(
            {
                "id": photo.pk,
                "url": f"/api/v1/photos/{photo.pk}/",
                "thumbnail_url": f"/api/v1/photos/{photo.pk}/thumbnail/",
            }
        )
    reports = []
    decided: dict[str, list[str]] = {}
    for report in incident.reports.order_by("received_at", "pk"):
        decision = policy.decide(incident, own=report.reporter_id == user.pk)
        decided.setdefault(decision, []).append(str(report.pk))
        note = report_value(report, "note")
        reports.append(
            {
                "id": report.pk,
                "received_at": report.received_at.isoformat(),
                "source": report.source,
                "note": policy.hide(note) if decision == "masked" else note,
                "photos": photos.get(report.pk, []),
            }
        )
    policy.log(user=user, channel="wall", decided=decided, detail=f"incident {pk}")
    masked = policy.decide(incident) == "masked"  # the incident's own notes (shown with its reports')
    workers = workers_nearest_available(incident.location)
    worker_grant = layers_for_user(user).get("workers")
    visible_fields = set(worker_grant.fields) if worker_grant else set()
    for w in workers:
        for field in ("display_name", "phone"):
            if field not in visible_fields:
                w[field] = None
    if worker_grant is not None and worker_grant.personal_data and workers:
        layer_access_log(
            user=user,
            channel="wall",
            grant=worker_grant,
            object_ids=[w["id"] for w in workers],
            detail=f"incident {pk}",
        )
    cameras = [
        {
            "id": c.pk,
            "code": c.code,
            "name": c.name,
            "status": c.status,
            "distance_m": round(c.distance.m, 1),  # type: ignore[attr-defined]  # annotated by cameras_covering
            "snapshot_url": c.snapshot_url,
            "stream_url": c.stream_url,
        }
        for c in cameras_covering(incident.location)[:10]
    ]
    return _json(
        {
            "incident": {
                "id": incident.pk,
                "category_id": incident.category_id,
                "status": incident.status,
                "priority": incident.priority,
                "grid_cell_id": incident.grid_cell_id,
                "team_id": incident.team_id,
                "worker_id": incident.worker_id,
                "report_count": incident.report_count,
                "opened_at": incident.opened_at.isoformat(),
                "due_at": incident.due_at.isoformat(),
                "overdue": incident.status in OPEN_INCIDENT_STATUSES and incident.due_at < timezone.now(),
                "alarm": incident.priority == ALARM_PRIORITY
                and incident.status in OPEN_INCIDENT_STATUSES
                and incident.alarm_acknowledged_at is None,
                "location": [incident.location.x, incident.location.y],
                "note": policy.hide(incident.note) if masked else incident.note,
                "resolution_note": policy.hide(incident.resolution_note) if masked else incident.resolution_note,
            },
            "reports": reports,
            "timeline": incident_timeline(incident),
            "cameras": cameras,
            "workers": workers,
        }
    )
