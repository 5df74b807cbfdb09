"""Door-to-door campaigns for the desk: the list (/maps/campaigns/), starting one over an area
drawn on the map or picked grid cells with a household or business filter (operators;
maps/static/maps/campaign-draw.js), and the live progress panel of one campaign (/maps/campaigns/<id>/progress/): the
overall percentage and per-building colours, moving with every mark (maps/static/maps/
campaign-progress.js, which the wall can mount too). Who may open it: whoever may see the
campaign (command.registry_selectors) and its campaign_buildings layer; others get 404."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from command.geometry import geometry_from_geojson
from command.layers import layers_for_user
from command.models import Business, Campaign, GridCell, Household
from command.registry_selectors import MANAGE_CAMPAIGNS_PERMISSION, campaign_get_for_user, campaigns_visible_to
from command.services.campaigns import CampaignFilter, campaign_create


def progress_strings() -> dict[str, str]:
    return {
        "covered": _("covered"),
        "visited": _("visited"),
        "absent": _("nobody home"),
        "refused": _("refused"),
        "pending": _("not visited yet"),
        "cell_open": _("%(cell)s: %(n)s not covered"),
        "all_covered": _("Every target is covered."),
    }


def draw_strings() -> dict[str, str]:
    return {
        "drawing": _("Click the corners of the area (%(n)s so far), then Finish."),
        "area_drawn": _("Area drawn."),
        "cells_picked": _("%(n)s grid cells picked."),
        "nothing_picked": _("Draw an area or pick grid cells."),
        "no_map": _("The map could not load; pick grid cells from the list."),
    }


@login_required
def campaign_progress(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_get_for_user(user=request.user, campaign_id=pk)
    if campaign is None or "campaign_buildings" not in layers_for_user(request.user):
        raise Http404(_("No such campaign."))
    response = render(request, "maps/campaign_progress.html", {"campaign": campaign, "strings": progress_strings()})
    response["Cache-Control"] = "private, no-store"
    return response


class CampaignForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("name"), max_length=100)
    kind = forms.ChoiceField(label=gettext_lazy("kind"), choices=Campaign.Kind.choices)
    target_kind = forms.ChoiceField(label=gettext_lazy("targets"), choices=Campaign.TargetKind.choices)
    # one of the two: an area drawn on the map (a GeoJSON polygon, written by campaign-draw.js) or cells
    area = forms.CharField(label=gettext_lazy("area"), required=False, widget=forms.HiddenInput, max_length=200000)
    cells = forms.MultipleChoiceField(
        label=gettext_lazy("grid cells"), required=False, widget=forms.CheckboxSelectMultiple
    )
    resident_type = forms.ChoiceField(
        label=gettext_lazy("residents"),
        choices=[("", gettext_lazy("registered and tenants")), *Household.ResidentType.choices],
        required=False,
    )
    vulnerable = forms.MultipleChoiceField(
        label=gettext_lazy("vulnerable groups"),
        choices=Household.Vulnerable.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    industries = forms.MultipleChoiceField(
        label=gettext_lazy("industry"),
        choices=Business.Industry.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    key_only = forms.BooleanField(label=gettext_lazy("key industry"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["cells"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(c.code, str(c)) for c in GridCell.objects.order_by("level", "code")]

    def clean_area(self) -> Any:
        """The drawn area as a checked GEOS polygon (None when none was drawn)."""
        text = self.cleaned_data.get("area") or ""
        if not text.strip():
            return None
        try:
            return geometry_from_geojson(json.loads(text), expected=("Polygon", "MultiPolygon"))
        except ValueError as exc:  # json.JSONDecodeError
            raise ValidationError(_("The drawn area is not GeoJSON; draw it again.")) from exc


@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    """The campaigns the login may see, and (operators) a form to start one over picked cells."""
    if "campaign_targets" not in layers_for_user(request.user):
        raise Http404(_("No such campaign."))
    may_start = request.user.has_perm(MANAGE_CAMPAIGNS_PERMISSION)
    form = CampaignForm(request.POST or None) if may_start else None
    status = 200
    if form is not None and request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                campaign = campaign_create(
                    actor_id=request.user.pk,
                    name=data["name"],
                    kind=data["kind"],
                    target_kind=data["target_kind"],
                    area=data["area"],
                    cell_codes=data["cells"],
                    filters=CampaignFilter(
                        vulnerable=tuple(data["vulnerable"]),
                        resident_type=data["resident_type"],
                        industries=tuple(data["industries"]),
                        key_only=data["key_only"],
                    ),
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, messages)
            else:
                return HttpResponseRedirect(f"/maps/campaigns/{campaign.pk}/progress/")
        status = 400
    elif request.method == "POST":
        raise Http404(_("No such campaign."))
    campaigns = list(campaigns_visible_to(request.user).order_by("status", "-created_at")[:200])
    context = {"campaigns": campaigns, "form": form, "draw_strings": draw_strings()}
    response = render(request, "maps/campaign_list.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response
