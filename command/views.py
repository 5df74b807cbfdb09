"""The landing page and the health check."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from command.eventlog import latest_seq
from command.layers import layers_for_user
from command.lockout import locked_for
from command.roles import ROLES

# (url, title, the permission it takes, or None for every signed-in user): command/roles.py
# grants them to roles; the home page asks permissions, never group names.
PAGES = [
    ("/maps/control-room/", _("Control room wall map"), "command.use_control_room"),
    ("/maps/police/", _("Police view"), "command.use_police_map"),
    ("/field/", _("Field app (phones)"), "command.use_field_app"),
    ("/maps/print/", _("Printable map"), None),
    ("/ogc/", _("OGC API - Features (for QGIS and GDAL)"), None),
    ("/api/docs/", _("API documentation"), None),
]


def home(request: HttpRequest) -> HttpResponse:
    grants = layers_for_user(request.user)
    user = request.user
    pages = [(url, title) for url, title, perm in PAGES if perm is None or user.has_perm(perm)]
    roles: list[str] = []
    if user.is_authenticated:
        roles = sorted(name for name in user.groups.values_list("name", flat=True) if name in ROLES)
    return render(
        request,
        "command/home.html",
        {"layers": [g.layer for g in grants.values()], "pages": pages, "roles": roles},
    )


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        row = cursor.fetchone()
    return JsonResponse({"ok": True, "postgis": row[0] if row else None, "latest_seq": latest_seq()})


class LoginView(auth_views.LoginView):
    """Django's login form (site and admin), saying so when the guess limit refuses a login
    (command/lockout.py) instead of calling the password wrong; answered 429."""

    def form_invalid(self, form: Any) -> HttpResponse:
        retry_after = locked_for(self.request)
        if not retry_after:
            return super().form_invalid(form)
        message = _("Too many failed logins for this account or address; try again in %(minutes)s minutes.") % {
            "minutes": max(1, (retry_after + 59) // 60)
        }
        response = self.render_to_response(self.get_context_data(form=form, login_locked=message), status=429)
        response["Retry-After"] = str(retry_after)
        return response
