"""The landing page and the health check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from command.health import health_report
from command.layers import layers_for_user
from command.lockout import locked_for
from command.metrics import METRICS_CONTENT_TYPE, address_allowed, metrics_text
from command.roles import ROLES


def _has_worker(user: Any) -> bool:
    from command.models import Worker

    return bool(user.has_perm("command.use_field_app") and Worker.objects.filter(user_id=user.pk).exists())


def _reads_tips(user: Any) -> bool:
    from command.services.tips import tips_reader

    return tips_reader(user)


# (url, title, who sees it: a permission, a test of the user, or None for every signed-in user):
# command/roles.py grants the permissions to roles; the home page asks permissions (or, where a
# page needs more than one, the page's own test), never group names. Every link a role sees opens
# for it (tests/command/test_home.py).
PAGES: list[tuple[str, Any, str | Callable[[Any], bool] | None]] = [
    ("/control/", _("Control room wall"), "command.use_control_room"),
    ("/control/?mode=desk", _("Control room desk"), "command.use_control_room"),
    ("/police/", _("Police view"), "command.use_police_map"),
    ("/field/", _("Field app (phones)"), "command.use_field_app"),
    ("/maps/campaigns/", _("Door-to-door campaigns"), "command.manage_campaigns"),
    ("/desk/requests/", _("Request desk"), "command.dispatch_incident"),
    ("/field/requests/", _("Request pool"), _has_worker),
    ("/volunteers/leaderboard/", _("Volunteer leaderboard"), "command.use_field_app"),
    ("/supervision/tips/", _("Supervision tips"), _reads_tips),
    ("/resident/", _("Resident services"), "command.use_resident_page"),
    ("/maps/print/", _("Printable map"), None),
    ("/analysis/", _("Analysis: period report"), "command.view_analysis"),
    ("/ogc/", _("OGC API - Features (for QGIS and GDAL)"), None),
    ("/api/docs/", _("API documentation"), None),
]


def page_shown(user: Any, rule: str | Callable[[Any], bool] | None) -> bool:
    if rule is None:
        return True
    return user.has_perm(rule) if isinstance(rule, str) else rule(user)


def home(request: HttpRequest) -> HttpResponse:
    grants = layers_for_user(request.user)
    user = request.user
    pages = [(url, title) for url, title, rule in PAGES if page_shown(user, rule)]
    roles: list[str] = []
    if user.is_authenticated:
        roles = sorted(name for name in user.groups.values_list("name", flat=True) if name in ROLES)
    return render(
        request,
        "command/home.html",
        {"layers": [g.layer for g in grants.values()], "pages": pages, "roles": roles},
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """The database, Redis, the read replica (when one is set) and how far this process's
    screens are behind the event log; 503 when one of them fails (README, "Health and metrics")."""
    report = health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for the addresses in METRICS_ALLOWED_NETWORKS only; any other
    client gets the same 404 as a path that does not exist."""
    if not address_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOWED_NETWORKS):
        raise Http404
    return HttpResponse(metrics_text(), content_type=METRICS_CONTENT_TYPE)


def _locked_message(retry_after: int) -> str:
    return _("Too many failed logins for this account or address; try again in %(minutes)s minutes.") % {
        "minutes": max(1, (retry_after + 59) // 60)
    }


class LoginView(auth_views.LoginView):
    """Django's login form, saying so when the guess limit refuses a login (command/lockout.py)
    instead of calling the password wrong; answered 429."""

    def form_invalid(self, form: Any) -> HttpResponse:
        retry_after = locked_for(self.request)
        if not retry_after:
            return super().form_invalid(form)
        context = self.get_context_data(form=form, login_locked=_locked_message(retry_after))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(retry_after)
        return response


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login form (``admin.site.login``), answered like ours when the guess limit
    refuses a login: 429 with Retry-After, and the form says the account is locked rather than
    that the password is wrong. The admin builds its response lazily (a TemplateResponse), so
    its form's error is replaced before it is drawn."""
    response = admin.site.login(request)
    retry_after = locked_for(request) if request.method == "POST" else 0
    form = (response.context_data or {}).get("form") if isinstance(response, TemplateResponse) else None
    if retry_after and form is not None and response.status_code == 200:
        form.errors[NON_FIELD_ERRORS] = form.error_class([_locked_message(retry_after)])
        response.status_code = 429
        response["Retry-After"] = str(retry_after)
    return response
