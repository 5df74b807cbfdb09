/*
 * GridCampaignProgress: the live progress of one door-to-door campaign, for the wall or a page
 * of its own (/maps/campaigns/<id>/progress/).
 *
 *   <script src="/static/realtime/live.js"></script>
 *   <script src="/static/maps/campaign-progress.js"></script>
 *   const panel = GridCampaignProgress.mount(element, {campaignId: 3, strings: {...}});
 *   // optional: {map: aLeafletMap} also draws the buildings on that map instead of the panel's sketch
 *   //   (coordsToLatLng: turn [lon, lat] into the map's LatLng, e.g. shifted to GCJ-02);
 *   // optional: {connect: fn} takes GridLive.connect's options and returns {close}: the wall's
 *   //   panels (maps/static/wall/panels/campaigns.js) share one stream this way
 *   panel.close();
 *
 * The snapshot comes from GET /api/v1/campaigns/<id>/ (overall) and /progress/ (buildings, as
 * GeoJSON); then every `campaign.progress` event of the `campaign_buildings` layer
 * (docs/websocket-api.md) moves one building's colour and the overall percentage, in seq order,
 * through GridLive (subscribe first, snapshot, then the held events: no gap).
 * Covered = visited + refused; absent is to be visited again.
 */
(function (global) {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";

  function pct(covered, total) {
    return total ? Math.round((1000 * covered) / total) / 10 : 0;
  }

  // 0 % red, 50 % amber, 100 % green; untouched buildings grey.
  function colour(p, touched) {
    if (!touched) return "#5f6b7a";
    var hue = Math.round(1.2 * p); // 0 (red) .. 120 (green)
    return "hsl(" + hue + ", 75%, 45%)";
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  function mount(element, options) {
    var opts = options || {};
    var id = Number(opts.campaignId);
    var T = Object.assign(
      { covered: "covered", visited: "visited", absent: "nobody home", refused: "refused", pending: "not visited yet" },
      opts.strings || {}
    );
    var buildings = {}; // building id -> {props, geometry, node}
    var overall = { total: 0, covered: 0, absent: 0 };
    var lastSeq = 0;

    element.classList.add("gc-campaign-progress");
    element.innerHTML =
      '<div class="gc-cp-head"><span class="gc-cp-name"></span><span class="gc-cp-status"></span></div>' +
      '<div class="gc-cp-big"><span class="gc-cp-percent" data-testid="campaign-percent">0</span>%</div>' +
      '<div class="gc-cp-bar"><div class="gc-cp-fill"></div></div>' +
      '<div class="gc-cp-counts"></div>' +
      '<svg class="gc-cp-map" role="img"></svg>';
    var percentEl = element.querySelector(".gc-cp-percent");
    var fillEl = element.querySelector(".gc-cp-fill");
    var countsEl = element.querySelector(".gc-cp-counts");
    var svg = element.querySelector("svg");
    var leafletLayer = null;

    function renderOverall() {
      var p = pct(overall.covered, overall.total);
      percentEl.textContent = String(p);
      element.dataset.percent = String(p);
      element.dataset.covered = String(overall.covered);
      element.dataset.seq = String(lastSeq);
      fillEl.style.width = p + "%";
      countsEl.textContent =
        T.covered + " " + overall.covered + " / " + overall.total + " · " + T.absent + " " + overall.absent;
    }

    function buildingColour(props) {
      var covered = props.visited + props.refused;
      return colour(pct(covered, props.total), props.total !== props.pending);
    }

    function drawSketch() {
      // A plain equirectangular sketch of the campaign's buildings (no basemap needed).
      var list = Object.keys(buildings).map(function (k) { return buildings[k]; });
      var xs = [], ys = [];
      list.forEach(function (b) {
        b.geometry.coordinates[0].forEach(function (c) { xs.push(c[0]); ys.push(c[1]); });
      });
      svg.replaceChildren();
      if (!xs.length) return;
      var minX = Math.min.apply(null, xs), maxX = Math.max.apply(null, xs);
      var minY = Math.min.apply(null, ys), maxY = Math.max.apply(null, ys);
      var k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
      var w = Math.max((maxX - minX) * k, 1e-6), h = Math.max(maxY - minY, 1e-6);
      svg.setAttribute("viewBox", "0 0 1000 " + Math.round((1000 * h) / w));
      list.forEach(function (b) {
        var d = b.geometry.coordinates[0].map(function (c, i) {
          return (i ? "L" : "M") + (((c[0] - minX) * k) / w * 1000).toFixed(1) + "," + (((maxY - c[1]) / w) * 1000).toFixed(1);
        }).join("") + "Z";
        var path = document.createElementNS(SVG, "path");
        path.setAttribute("d", d);
        path.dataset.buildingId = b.props.building_id;
        b.node = path;
        paint(b);
        svg.append(path);
      });
    }

    function paint(b) {
      var fill = buildingColour(b.props);
      if (b.node) {
        b.node.setAttribute("fill", fill);
        b.node.dataset.percent = String(pct(b.props.visited + b.props.refused, b.props.total));
        var title = b.node.querySelector("title") || b.node.appendChild(document.createElementNS(SVG, "title"));
        title.textContent =
          "#" + b.props.building_id + " · " + T.visited + " " + b.props.visited + " · " + T.refused + " " +
          b.props.refused + " · " + T.absent + " " + b.props.absent + " · " + T.pending + " " + b.props.pending;
      }
      if (b.leaflet) {
        b.leaflet.setStyle({ fillColor: fill, color: fill });
        b.leaflet.eachLayer(function (l) {
          var node = l.getElement && l.getElement();
          if (node) node.dataset.percent = String(pct(b.props.visited + b.props.refused, b.props.total));
        });
      }
    }

    function drawLeaflet() {
      if (!opts.map || !global.L) return false;
      if (leafletLayer) leafletLayer.remove();
      leafletLayer = global.L.layerGroup().addTo(opts.map);
      Object.keys(buildings).forEach(function (key) {
        var b = buildings[key];
        var geoOptions = { style: { weight: 1, fillOpacity: 0.7 } };
        if (opts.coordsToLatLng) geoOptions.coordsToLatLng = opts.coordsToLatLng;
        b.leaflet = global.L.geoJSON({ type: "Feature", geometry: b.geometry, properties: {} }, geoOptions).addTo(leafletLayer);
        b.leaflet.eachLayer(function (l) {
          var node = l.getElement && l.getElement();
          if (node) {
            node.dataset.campaignId = String(id);
            node.dataset.buildingId = String(b.props.building_id);
          }
        });
        paint(b);
      });
      svg.hidden = true;
      return true;
    }

    function snapshot() {
      return Promise.all([getJSON("/api/v1/campaigns/" + id + "/"), getJSON("/api/v1/campaigns/" + id + "/progress/")]).then(
        function (both) {
          var c = both[0];
          element.querySelector(".gc-cp-name").textContent = c.name;
          element.querySelector(".gc-cp-status").textContent = c.status === "closed" ? " · " + c.status : "";
          overall = { total: c.total, covered: c.covered, absent: c.absent };
          buildings = {};
          both[1].features.forEach(function (f) {
            buildings[f.properties.building_id] = { props: f.properties, geometry: f.geometry, node: null };
          });
          if (!drawLeaflet()) drawSketch();
          renderOverall();
        }
      );
    }

    function onEvent(event) {
      lastSeq = event.seq;
      if (event.kind === "layer.reloaded") return snapshot();
      if (event.kind !== "campaign.progress") return;
      var p = event.payload.properties;
      if (p.campaign_id !== id) return;
      overall = { total: p.campaign_total, covered: p.campaign_covered, absent: p.campaign_absent };
      var b = buildings[p.building_id];
      if (b) {
        b.props = p;
        paint(b);
      }
      renderOverall();
    }

    var live = (opts.connect || global.GridLive.connect)({
      name: "campaign " + id,
      layers: ["campaign_buildings"],
      onEvent: onEvent,
      onResync: snapshot,
      onStatus: function (s) { element.dataset.live = s; },
    });
    return {
      close: function () {
        live.close();
        if (leafletLayer) leafletLayer.remove();
      },
      percent: function () { return pct(overall.covered, overall.total); },
    };
  }

  global.GridCampaignProgress = { mount: mount };
})(window);
