"""Map pages built with folium: one builder (``map_build``) for the control-room wall
(maps/wall.py), the police view and printable maps. Every JS/CSS asset is served from our own
static files (``VENDOR_ASSETS``); a page makes no request that leaves the server. Small layers
are drawn from GeoJSON built in PostGIS; large ones come as vector tiles."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.views import redirect_to_login
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.plugins import Fullscreen, MarkerCluster
from jinja2 import Template

from command.layer_queries import (
    FeatureQuery,
    layer_extent,
    layer_feature_count,
    layer_features,
    layer_size_estimates,
)
from command.layers import OPEN_INCIDENT_STATUSES, LayerGrant, layer_access_log, layers_for_user
from command.models import Camera
from maps.gcj02 import shift_geojson_coordinates, wgs84_to_gcj02

# folium's CDN assets by name -> our vendored copy (see maps/static/vendor/VENDORED.md).
VENDOR_ASSETS: dict[str, str | None] = {
    "leaflet": "vendor/leaflet/leaflet.js",
    "jquery": "vendor/jquery/jquery.min.js",
    "bootstrap": "vendor/bootstrap/bootstrap.bundle.min.js",
    "awesome_markers": "vendor/awesome-markers/leaflet.awesome-markers.js",
    "leaflet_css": "vendor/leaflet/leaflet.css",
    "bootstrap_css": "vendor/bootstrap/bootstrap.min.css",
    "glyphicons_css": None,  # Bootstrap 3 glyphicons: not used (we draw no glyph icons)
    "awesome_markers_font_css": "vendor/fontawesome/css/all.min.css",
    "awesome_markers_css": "vendor/awesome-markers/leaflet.awesome-markers.css",
    "awesome_rotate_css": None,  # rotated awesome markers: not used
    "markerclusterjs": "vendor/markercluster/leaflet.markercluster.js",
    "markerclustercss": "vendor/markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "vendor/markercluster/MarkerCluster.Default.css",
    "Control.Fullscreen.js": "vendor/fullscreen/Control.FullScreen.js",
    "Control.FullScreen.css": "vendor/fullscreen/Control.FullScreen.css",
    "vectorgrid": "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js",
    "gc_layer_loader": "maps/layer-loader.js",  # ours: the layers a page loads after its first paint
    "gc_markercluster_fixes": "maps/markercluster-fixes.js",  # ours: fixes to markercluster (a leak)
}
# Our scripts that patch a vendored library, linked right after it wherever it is linked.
VENDOR_FOLLOWERS: dict[str, tuple[str, ...]] = {"markerclusterjs": ("gc_markercluster_fixes",)}
# What a page that draws no folium marker, popup or icon leaves out of folium's default assets
# (jQuery, Bootstrap, Awesome Markers and its font: ~400 KB the wall parsed before its first paint).
UNUSED_ASSETS = frozenset(
    {"jquery", "bootstrap", "awesome_markers", "bootstrap_css", "awesome_markers_font_css", "awesome_markers_css"}
)


def inline_max_features() -> int:
    """Above this many features a layer comes as vector tiles (``MAP_INLINE_MAX_FEATURES``)."""
    return int(getattr(settings, "MAP_INLINE_MAX_FEATURES", 2000))


PAGE_KINDS = {
    "police": {"dark": False, "controls": True, "live": True, "lazy": False},
    "print": {"dark": False, "controls": False, "live": False, "lazy": False},
    # The control-room wall (maps/wall.py): its own script (maps/static/wall/wall.js) draws the
    # open incidents and the workers on duty live, and shades the cells; the builder draws the
    # rest and hands the script the map, the incident cluster and the layers (WallHooks).
    # "lazy": the layers come after the first paint (LazyLayer), so the page holds no layer data
    # and is the same for every viewer with the same grants (maps/wall.py caches it).
    "wall": {"dark": True, "controls": True, "live": False, "lazy": True},
}
# Not drawn by the builder on the wall: the workers (wall.js draws them live), and households
# (residents' names and phones do not belong on a screen the whole room reads; the drawer and
# the desk's other pages are where an operator looks a person up).
WALL_SKIPPED_LAYERS = ("workers", "households")


class VectorTileLayer(JSCSSMixin, Layer):
    """A Leaflet.VectorGrid layer over our ``/maps/tiles/<layer>/{z}/{x}/{y}.pbf``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.vectorGrid.protobuf({{ this.url|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )
    default_js = [("vectorgrid", "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js")]

    def __init__(self, *, layer: str, title: str, style: dict[str, Any], show: bool = True) -> None:
        super().__init__(name=title, overlay=True, control=True, show=show)
        self._name = "VectorTileLayer"
        self.url = tile_url(layer)
        self.options = tile_options(layer, style)


def tile_url(layer: str) -> str:
    return "/maps/tiles/" + layer + "/{z}/{x}/{y}.pbf"


def tile_options(layer: str, style: dict[str, Any]) -> dict[str, Any]:
    """Leaflet.VectorGrid's options for one layer's tiles."""
    return {"vectorTileLayerStyles": {layer: style}, "interactive": False, "maxNativeZoom": 20, "maxZoom": 22}


class LazyLayer(JSCSSMixin, Layer):
    """A layer loaded after the page's first paint (maps/static/maps/layer-loader.js): an empty
    Leaflet group in the page, filled with the GeoJSON of the view (at most ``limit`` features)
    or, when the view holds more (or ``tiles_only``), with the layer's vector tiles. The
    description comes from the layer's declaration and the viewer's grant; no data is in the page."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.featureGroup();
        window.GridLayerLoader.add({{ this._parent.get_name() }}, {{ this.get_name() }}, {{ this.spec|tojson }});
        {% endmacro %}
        """
    )
    default_js = [("vectorgrid", "vectorgrid"), ("gc_layer_loader", "gc_layer_loader")]  # by name: _vendor links ours

    def __init__(self, grant: LayerGrant, *, title: str, show: bool, limit: int, tiles_only: bool) -> None:
        super().__init__(name=title, overlay=True, control=True, show=show)
        self._name = "LazyLayer"
        layer = grant.layer
        self.spec = {
            "name": layer.name,
            "geojson": f"/maps/layers/{layer.name}.geojson",
            "tiles": tile_url(layer.name),
            "tile_options": tile_options(layer.name, layer.style),
            "feature_id": "id" if "id" in grant.fields else None,  # tiles restyled by id (the wall's cells)
            "style": layer.style,
            "tooltip": [f for f in layer.tooltip if f in grant.fields],
            "limit": limit,
            "tiles_only": tiles_only,
        }


class LiveIncidents(MacroElement):
    """Wires ``window.GridLive`` (realtime/live.js) to the clustered incidents: markers are
    added or moved by object id as events arrive. A resync (the first one right after subscribing,
    then after a reconnect past the retention window or a layer reload) reloads the open incidents
    of the view from the GeoJSON endpoint; the events that arrive meanwhile are applied after it."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var cluster = {{ this.cluster.get_name() }};
          var map = {{ this._parent.get_name() }};
          var byId = {};
          cluster.eachLayer(function (m) { if (m.feature) byId[String(m.feature.id)] = m; });
          var shift = {{ 'true' if this.gcj02 else 'false' }} ? window.GridGcj02
            : function (lon, lat) { return [lon, lat]; };
          var open = {{ this.open_statuses|tojson }};
          function place(id, geometry, properties) {
            var key = String(id), marker = byId[key];
            if (marker) { cluster.removeLayer(marker); delete byId[key]; }
            if (!geometry || open.indexOf((properties || {}).status) < 0) return;
            var c = shift(geometry.coordinates[0], geometry.coordinates[1]);
            marker = L.circleMarker([c[1], c[0]], {{ this.style|tojson }});
            marker.feature = {id: key, properties: properties || {}};
            byId[key] = marker;
            cluster.addLayer(marker);
          }
          function snapshot() {
            var b = map.getBounds();
            var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
              return v.toFixed(6);
            });
            var url = "/maps/layers/incidents.geojson?status=" + open.join(",") +
              "&limit={{ this.limit }}&bbox=" + bbox.join(",");
            return fetch(url, {credentials: "same-origin"}).then(function (r) {
              if (!r.ok) throw new Error("incidents snapshot: HTTP " + r.status);
              return r.json();
            }).then(function (collection) {
              cluster.clearLayers();
              byId = {};
              (collection.features || []).forEach(function (f) { place(f.id, f.geometry, f.properties); });
            });
          }
          function apply(ev) {
            if (ev.kind === "layer.reloaded" && ev.layer === "incidents") { snapshot(); return; }
            if (ev.layer !== "incidents" || !ev.payload) return;
            place(ev.object_id, ev.payload.geometry, ev.payload.properties);
          }
          window.GridMapIncidents = {
            apply: apply, snapshot: snapshot, count: function () { return Object.keys(byId).length; }
          };
          if (window.GridLive) {
            var b = map.getBounds();
            window.GridLive.connect({
              layers: ["incidents"],
              bbox: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()],
              onEvent: apply,
              onResync: snapshot,
              onStatus: function (status) { document.documentElement.dataset.live = status; }
            });
          }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, cluster: MarkerCluster, *, style: dict[str, Any], gcj02: bool) -> None:
        super().__init__()
        self._name = "LiveIncidents"
        self.cluster = cluster
        self.style = style
        self.gcj02 = gcj02
        self.open_statuses = list(OPEN_INCIDENT_STATUSES)
        self.limit = max(inline_max_features(), 100)


class WallHooks(MacroElement):
    """``window.GridWallMap = {map, bounds, cluster, layers: {name: Leaflet layer}}`` for wall.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.GridWallMap = {
          map: {{ this._parent.get_name() }},
          bounds: {{ this.bounds|tojson }},
          cluster: {{ this.cluster.get_name() if this.cluster else 'null' }},
          layers: { {% for name, el in this.layers.items() %}{{ name|tojson }}: {{ el.get_name() }},{% endfor %} }
        };
        {% endmacro %}
        """
    )

    def __init__(self, *, cluster: MarkerCluster | None, layers: dict[str, Any], bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "WallHooks"
        self.cluster = cluster
        self.layers = layers
        self.bounds = bounds  # the district's extent, [[south, west], [north, east]] as shown


class Legend(MacroElement):
    """A Leaflet control listing the layers on the map with their colours (text set through
    the DOM, never as HTML)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var legend = L.control({position: "bottomright"});
          legend.onAdd = function () {
            var div = L.DomUtil.create("div", "gc-legend");
            var head = document.createElement("strong");
            head.textContent = {{ this.heading|tojson }};
            div.appendChild(head);
            {{ this.items|tojson }}.forEach(function (item) {
              var row = document.createElement("div"), sw = document.createElement("span");
              sw.className = "gc-swatch"; sw.style.background = item[1];
              row.appendChild(sw); row.appendChild(document.createTextNode(item[0]));
              div.appendChild(row);
            });
            return div;
          };
          legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, *, heading: str, items: list[tuple[str, str]]) -> None:
        super().__init__()
        self._name = "Legend"
        self.heading = heading
        self.items = items


LEGEND_CSS = (
    "<style>.gc-legend{background:rgba(255,255,255,.85);color:#222;padding:6px 8px;border-radius:4px;"
    "font-size:12px;line-height:18px}.gc-legend .gc-swatch{display:inline-block;width:12px;height:12px;"
    "margin-right:6px;vertical-align:middle;border-radius:2px}"
    ".gc-dark .gc-legend{background:rgba(13,23,38,.85);color:#e6edf6}</style>"
)


GCJ02_JS = """<script>
window.GridGcj02 = function (lon, lat) {
  if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
  var a = 6378245.0, ee = 0.00669342162296594323, PI = Math.PI, x = lon - 105.0, y = lat - 35.0;
  var dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
  dLat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
  dLat += (160.0 * Math.sin(y / 12.0 * PI) + 320 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
  var dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
  dLon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
  dLon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
  var radLat = lat / 180.0 * PI, magic = 1 - ee * Math.sin(radLat) * Math.sin(radLat), sq = Math.sqrt(magic);
  dLat = (dLat * 180.0) / ((a * (1 - ee)) / (magic * sq) * PI);
  dLon = (dLon * 180.0) / (a / sq * Math.cos(radLat) * PI);
  return [lon + dLon, lat + dLat];
};
</script>"""


def _vendor(element: Any, *, skip: frozenset[str] = frozenset()) -> None:
    """Point every JS/CSS link of ``element`` and its children at our static files (leaving
    out the assets named in ``skip``)."""
    if isinstance(element, JSCSSMixin):
        for attr in ("default_js", "default_css"):
            links = []
            for name, _url in getattr(element, attr):
                if name not in VENDOR_ASSETS:
                    raise LookupError(f"folium asset {name!r} is not vendored: add it to maps/static/vendor")
                local = VENDOR_ASSETS[name]
                if local is not None and name not in skip:
                    links.append((name, static(local)))
                    for follower in VENDOR_FOLLOWERS.get(name, ()):
                        links.append((follower, static(str(VENDOR_ASSETS[follower]))))
            setattr(element, attr, links)
    for child in list(element._children.values()):
        _vendor(child, skip=skip)


def _geojson(grant: LayerGrant, query: FeatureQuery, *, user: Any, gcj02: bool) -> dict[str, Any]:
    page = layer_features(grant, query, with_ids=grant.personal_data)
    layer_access_log(user=user, channel="page", grant=grant, object_ids=page.ids, detail="map page")
    data = json.loads(page.geojson)
    if gcj02:
        for feature in data["features"]:
            geometry = feature.get("geometry")
            if geometry:
                geometry["coordinates"] = shift_geojson_coordinates(geometry["coordinates"])
    return data


def _tooltip(grant: LayerGrant, data: dict[str, Any]) -> folium.GeoJsonTooltip | None:
    """A tooltip of the layer's tooltip fields the viewer may see; none for an empty layer
    (folium refuses fields it cannot find in the data: an empty hotspot layer made the page a 500)."""
    fields = [f for f in grant.layer.tooltip if f in grant.fields]
    return folium.GeoJsonTooltip(fields=fields) if fields and data["features"] else None


@dataclass(frozen=True)
class PageInputs:
    """What a map page is built from besides its kind: the viewer's grants, the district's
    extent (as shown) and, on lazy pages, the layers that come as tiles at once."""

    grants: dict[str, LayerGrant]
    extent: tuple[float, float, float, float]
    tiles_only: frozenset[str]


def map_page_inputs(*, user: Any, kind: str) -> PageInputs:
    grants = layers_for_user(user)
    extent = layer_extent("cells") or layer_extent("buildings") or (116.99, 38.99, 117.01, 39.01)
    if settings.BASEMAP_CRS == "gcj02":
        x0, y0 = wgs84_to_gcj02(extent[0], extent[1])
        x1, y1 = wgs84_to_gcj02(extent[2], extent[3])
        extent = (x0, y0, x1, y1)
    tiles_only: frozenset[str] = frozenset()
    if PAGE_KINDS[kind]["lazy"]:
        most = inline_max_features()
        sizes = layer_size_estimates(list(grants))
        tiles_only = frozenset(name for name in grants if most == 0 or sizes.get(name, 0) > most)
    return PageInputs(grants=grants, extent=extent, tiles_only=tiles_only)


def map_build(*, user: Any, kind: str = "wall", inputs: PageInputs | None = None) -> folium.Map:
    """The base map for ``user``: basemap (``BASEMAP_URL`` or none), grid cells, buildings,
    cameras with view cones, clustered incidents, hotspots and whatever else the policy grants;
    layer control, scale and fullscreen. Only layers and fields ``layers_for_user`` allows."""
    options = PAGE_KINDS[kind]
    inputs = inputs or map_page_inputs(user=user, kind=kind)
    grants = inputs.grants
    gcj02 = settings.BASEMAP_CRS == "gcj02"
    extent = inputs.extent
    m = folium.Map(
        location=[(extent[1] + extent[3]) / 2, (extent[0] + extent[2]) / 2],
        tiles=None,
        zoom_start=16,
        maxZoom=21,  # L.map option: MarkerCluster needs it when no basemap sets one
        control_scale=True,
        prefer_canvas=False,
        zoom_control=options["controls"],
    )
    m.fit_bounds([[extent[1], extent[0]], [extent[3], extent[2]]])
    root: Figure = m.get_root()  # type: ignore[assignment]
    if settings.BASEMAP_URL:
        folium.TileLayer(
            settings.BASEMAP_URL,
            attr=settings.BASEMAP_ATTRIBUTION or _("basemap"),
            name=_("Basemap"),
            max_zoom=20,
        ).add_to(m)
    background = "#0b1220" if options["dark"] else "#f4f1ea"
    root.header.add_child(
        Element(
            f"<style>html,body{{background:{background};margin:0}}"
            f".folium-map.leaflet-container{{background:{background}}}"
            ".leaflet-container{font-family:system-ui,'Noto Sans CJK SC',sans-serif}</style>"
        )
    )
    if gcj02:
        root.header.add_child(Element(GCJ02_JS))
    wall = kind == "wall"
    drawn: dict[str, Any] = {}  # layer name -> its folium element (GeoJSON or lazy: the wall restyles them)
    clusters: list[MarkerCluster] = []

    lazy = options["lazy"]

    def add_layer(grant: LayerGrant) -> None:
        layer = grant.layer
        title = f"{layer.title_zh} {layer.title_en}"
        show = layer.page == "shown"
        if lazy:
            drawn[layer.name] = LazyLayer(
                grant, title=title, show=show, limit=inline_max_features(), tiles_only=layer.name in inputs.tiles_only
            )
            drawn[layer.name].add_to(m)
            return
        if layer_feature_count(grant, FeatureQuery(limit=None)) > inline_max_features():
            VectorTileLayer(layer=layer.name, title=title, style=layer.style, show=show).add_to(m)
            return
        data = _geojson(grant, FeatureQuery(limit=inline_max_features()), user=user, gcj02=gcj02)
        style = layer.style
        drawing: dict[str, Any] = (
            {"marker": folium.CircleMarker(**style)}
            if layer.geometry_type == "Point"
            else {"style_function": lambda _f, s=style: s}
        )
        drawn[layer.name] = folium.GeoJson(data, name=title, show=show, tooltip=_tooltip(grant, data), **drawing)
        drawn[layer.name].add_to(m)

    def add_live(grant: LayerGrant) -> None:
        """Open incidents, clustered, moved live; the full history below as (aggregated) vector tiles."""
        layer = grant.layer
        cluster = MarkerCluster(name=f"{layer.title_zh} {layer.title_en}", overlay=True, control=True, show=True)
        cluster.add_to(m)
        clusters.append(cluster)
        if not wall:  # the wall loads them itself when it subscribes (its first resync)
            data = _geojson(
                grant,
                FeatureQuery(statuses=OPEN_INCIDENT_STATUSES, limit=max(inline_max_features(), 100)),
                user=user,
                gcj02=gcj02,
            )
            folium.GeoJson(
                data, marker=folium.CircleMarker(**layer.style), control=False, tooltip=_tooltip(grant, data)
            ).add_to(cluster)
        VectorTileLayer(
            layer=layer.name,
            title="历史事件 Incident history",  # like the other layers: Chinese and English
            style={**layer.style, "radius": 3, "fillOpacity": 0.4},
            show=False,
        ).add_to(m)
        if options["live"]:
            LiveIncidents(cluster, style=layer.style, gcj02=gcj02).add_to(m)

    for grant in sorted(grants.values(), key=lambda g: g.layer.page_order):
        if grant.layer.page == "live":
            add_live(grant)
        elif wall and grant.layer.name in WALL_SKIPPED_LAYERS:
            continue
        elif grant.layer.page != "none":
            add_layer(grant)
    if wall:
        bounds = [[extent[1], extent[0]], [extent[3], extent[2]]]
        WallHooks(cluster=clusters[0] if clusters else None, layers=drawn, bounds=bounds).add_to(m)
    root.header.add_child(Element(LEGEND_CSS))
    if options["dark"]:
        root.html.add_child(Element("<script>document.documentElement.classList.add('gc-dark')</script>"))
    heading = _("Layers")
    if kind == "print":
        heading = _("Printed %(time)s") % {"time": timezone.localtime().strftime("%Y-%m-%d %H:%M")}
    Legend(
        heading=heading,
        items=[(f"{g.layer.title_zh} {g.layer.title_en}", g.layer.style["color"]) for g in grants.values()],
    ).add_to(m)
    if options["controls"]:
        folium.LayerControl(collapsed=True).add_to(m)
        Fullscreen(position="topleft").add_to(m)
    _vendor(m, skip=UNUSED_ASSETS if wall else frozenset())
    return m


PAGE_CACHE_SIZE = 64
_page_cache: OrderedDict[str, str] = OrderedDict()
_page_cache_lock = threading.Lock()


def map_page_cached(*, user: Any, kind: str, head: Sequence[str]) -> str:
    """The rendered page of a lazy kind (the wall), with ``head`` added to its ``<head>``. It
    holds no layer data, so it is built once for everything it depends on and reused: the
    viewer's grants (layers, fields, masking, area), the language, the district's extent, the
    layers sent as tiles at once, the basemap settings and ``head``. Nothing to invalidate: a
    change of any of these is another key (the inputs are read on every request, ~1 ms)."""
    if not PAGE_KINDS[kind]["lazy"]:
        raise ValueError(f"{kind} pages hold layer data: not cacheable")
    inputs = map_page_inputs(user=user, kind=kind)
    key_parts = [
        kind,
        get_language() or "",
        repr(inputs.extent),
        ",".join(sorted(inputs.tiles_only)),
        str(inline_max_features()),
        settings.BASEMAP_URL or "",
        settings.BASEMAP_ATTRIBUTION or "",
        settings.BASEMAP_CRS or "",
        *(f"{name}:{g.personal_data}:{g.profile}" for name, g in sorted(inputs.grants.items())),
        *head,
    ]
    key = hashlib.sha256("\x1f".join(key_parts).encode()).hexdigest()
    with _page_cache_lock:
        html = _page_cache.get(key)
        if html is not None:
            _page_cache.move_to_end(key)
            return html
    m = map_build(user=user, kind=kind, inputs=inputs)
    root: Figure = m.get_root()  # type: ignore[assignment]
    for element in head:
        root.header.add_child(Element(element))
    html = root.render()
    with _page_cache_lock:
        _page_cache[key] = html
        while len(_page_cache) > PAGE_CACHE_SIZE:
            _page_cache.popitem(last=False)
    return html


def map_page_html(*, user: Any, kind: str, title: str) -> str:
    m = map_build(user=user, kind=kind)
    root: Figure = m.get_root()  # type: ignore[assignment]
    root.header.add_child(Element(f"<title>{escape(title)}</title>"))
    if PAGE_KINDS[kind]["live"] and finders.find("realtime/live.js"):
        root.header.add_child(Element(f'<script src="{static("realtime/live.js")}"></script>'))
    html = root.render()
    return html


def _page(request: HttpRequest, kind: str, title: str) -> HttpResponse:
    response = HttpResponse(map_page_html(user=request.user, kind=kind, title=title))
    response["Cache-Control"] = "private, no-store"
    return response


LIST_MAX_ROWS = 200

LISTS_CSS = (
    # the map first, the lists under it: folium places its map's div after what the page adds
    "<style>html,body{height:auto}body{display:flex;flex-direction:column}.gc-lists{order:1}"
    ".folium-map{height:62vh!important;min-height:320px;flex:none}"
    ".gc-lists{font:13px system-ui,'Noto Sans CJK SC',sans-serif;padding:8px 12px;color:#222}"
    ".gc-lists h2{font-size:15px;margin:14px 0 4px}.gc-lists table{border-collapse:collapse;width:100%}"
    ".gc-lists th,.gc-lists td{border-bottom:1px solid #ddd;padding:2px 6px;text-align:left}"
    ".gc-lists .gc-more{color:#666}.gc-index a{margin-right:14px;white-space:nowrap}</style>"
)


def police_lists_html(*, user: Any, grants: dict[str, LayerGrant]) -> str:
    """One table per granted layer (exactly the layers the policy grants, in their granted cells,
    with the fields the viewer may see: the police role leaves personal data out), cameras with a
    link to their stream. Text is escaped; nothing here runs script."""
    ordered = sorted(grants.values(), key=lambda g: g.layer.page_order)
    parts = ['<section class="gc-lists" id="gc-lists"><nav class="gc-index">']
    parts.extend(
        f'<a href="#list-{escape(g.layer.name)}">{escape(g.layer.title_zh)} {escape(g.layer.title_en)}</a>'
        for g in ordered
    )
    parts.append("</nav>")
    for grant in ordered:
        layer = grant.layer
        page = layer_features(grant, FeatureQuery(limit=LIST_MAX_ROWS), with_ids=grant.personal_data)
        layer_access_log(user=user, channel="page", grant=grant, object_ids=page.ids, detail="police lists")
        features = json.loads(page.geojson)["features"]
        stream = layer.name == "cameras"
        parts.append(
            f'<h2 id="list-{escape(layer.name)}" data-layer="{escape(layer.name)}">'
            f"{escape(layer.title_zh)} {escape(layer.title_en)} ({len(features)})</h2><table><thead><tr>"
        )
        parts.extend(f"<th>{escape(name)}</th>" for name in grant.fields)
        if stream:
            parts.append(f"<th>{escape(_('Stream'))}</th>")
        parts.append("</tr></thead><tbody>")
        for feature in features:
            props = feature["properties"]
            parts.append("<tr>")
            parts.extend(f"<td>{escape('' if props.get(n) is None else str(props.get(n)))}</td>" for n in grant.fields)
            if stream:
                url = f"/police/cameras/{int(feature['id'])}/stream/"
                parts.append(
                    f'<td><a href="{url}" rel="noopener noreferrer" target="_blank">{escape(_("Open"))}</a></td>'
                )
            parts.append("</tr>")
        parts.append("</tbody></table>")
        if page.full:
            parts.append(f'<p class="gc-more">{escape(_("The first %(n)s only.") % {"n": LIST_MAX_ROWS})}</p>')
    parts.append("</section>")
    return "".join(parts)


@login_required
@permission_required("command.use_police_map", raise_exception=True)
def police(request: HttpRequest) -> HttpResponse:
    """``/police/``: the map and lists of exactly the layers granted to the viewer (by default
    cameras with stream links, incidents, hotspots, workers on duty; never residents' data)."""
    m = map_build(user=request.user, kind="police")
    root: Figure = m.get_root()  # type: ignore[assignment]
    root.header.add_child(Element(f"<title>{escape(_('Police view'))} · GridCommand</title>"))
    root.header.add_child(Element(LISTS_CSS))
    if finders.find("realtime/live.js"):
        root.header.add_child(Element(f'<script src="{static("realtime/live.js")}"></script>'))
    root.html.add_child(Element(police_lists_html(user=request.user, grants=layers_for_user(request.user))))
    response = HttpResponse(root.render())
    response["Cache-Control"] = "private, no-store"
    return response


def police_old_address(request: HttpRequest) -> HttpResponse:
    """``/maps/police/`` moved to ``/police/``."""
    return HttpResponsePermanentRedirect("/police/")


@require_GET
def police_camera_stream(request: HttpRequest, camera_id: int) -> HttpResponse:
    """A camera's stream link, for a viewer whose cameras grant covers it (in its cells); 404
    alike for a camera that does not exist, one outside the grant and one without a stream."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    grant = layers_for_user(request.user).get("cameras")
    if grant is None:
        raise Http404
    page = layer_features(grant, FeatureQuery(feature_id=camera_id, limit=1))
    url = Camera.objects.filter(pk=camera_id).values_list("stream_url", flat=True).first() if page.returned else None
    if not url or not url.lower().startswith(("http://", "https://", "rtsp://", "rtmp://")):
        raise Http404
    response = HttpResponse(status=302)
    response["Location"] = url
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_required
def printable(request: HttpRequest) -> HttpResponse:
    return _page(request, "print", _("Printable map") + " · GridCommand")
