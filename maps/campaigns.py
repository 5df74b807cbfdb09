"""The live progress panel of one door-to-door campaign (/maps/campaigns/<id>/progress/): the
overall percentage and per-building colours, moving with every mark (maps/static/maps/
campaign-progress.js, which the wall can mount too). Who may open it: whoever may see the
campaign (command.registry_selectors) and its campaign_buildings layer; others get 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from command.layers import layers_for_user
from command.registry_selectors import campaign_get_for_user


def progress_strings() -> dict[str, str]:
    return {
        "covered": _("covered"),
        "visited": _("visited"),
        "absent": _("nobody home"),
        "refused": _("refused"),
        "pending": _("not visited yet"),
    }


@login_required
def campaign_progress(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_get_for_user(user=request.user, campaign_id=pk)
    if campaign is None or "campaign_buildings" not in layers_for_user(request.user):
        raise Http404(_("No such campaign."))
    response = render(request, "maps/campaign_progress.html", {"campaign": campaign, "strings": progress_strings()})
    response["Cache-Control"] = "private, no-store"
    return response
