"""The admin's map widget, air-gapped: OpenLayers from our static files, the basemap from
settings.BASEMAP_URL or none (Django's default widget loads both from the internet)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.gis.forms.widgets import OpenLayersWidget
from django.forms import Media


class LocalMapWidget(OpenLayersWidget):
    template_name = "gis/gridcommand-map.html"
    default_lon = 117.309
    default_lat = 39.105
    default_zoom = 15

    @property
    def media(self) -> Media:
        return Media(
            css={"all": ("vendor/ol-7.2.2/ol.css", "gis/css/ol3.css")},
            js=("vendor/ol-7.2.2/ol.js", "gis/js/OLMapWidget.js"),
        )

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["basemap_url"] = settings.BASEMAP_URL
        for key in ("default_lon", "default_lat", "default_zoom"):
            context[key] = self.attrs.get(key, getattr(self, key))
        return context
