/*
 * Resident requests on the wall (#16): the open requests by building on the map (one marker per
 * building, sized by how many, ringed red when one is overdue), the newest in a list with their
 * status, and the open / overdue counts (computed on the server: /control/api/panels.json).
 * Snapshot: the requests layer's GeoJSON (the one policy decides the fields; the title and the
 * requester are personal data, so the wall shows status, channel and cell, never them); then
 * request.created / request.updated events move each one live.
 */
(function () {
  "use strict";
  var LIST_SIZE = 15;
  var STATUS_COLOURS = { submitted: "#ff8a65", triaged: "#ffd54f", published: "#4fc3f7", taken: "#81c784" };

  window.GridWallPanels.register("requests", function (ctx) {
    var S = ctx.S, R = ctx.R;
    var OPEN = ctx.cfg.request_open_statuses || [];
    var box = ctx.section("requests", S.requests);
    var list = ctx.el("ol", { class: "wp-list", id: "wall-requests" });
    var empty = ctx.el("p", { class: "wp-empty", text: S.no_requests });
    box.body.append(list, empty);
    var byId = {}; // request id -> {props, geometry}
    var group = ctx.map && window.L ? window.L.featureGroup().addTo(ctx.map) : null;
    var markers = {}; // building key -> marker
    if (group) ctx.pane("gc-requests", 450); // above the buildings and devices (overlayPane, 400)

    function isOpen(p) { return p && OPEN.indexOf(p.status) >= 0; }
    function keyOf(r) { return r.props.building_id ? "b" + r.props.building_id : "r" + r.props.id; }
    function statusLabel(s) { return S["request_status_" + s] || s; }

    function drawBuilding(key) {
      var rows = Object.keys(byId).map(function (id) { return byId[id]; }).filter(function (r) { return keyOf(r) === key && r.geometry; });
      var m = markers[key];
      if (!rows.length) {
        if (m) { group.removeLayer(m); delete markers[key]; }
        return;
      }
      var overdue = rows.some(function (r) { return r.props.overdue; });
      // the least advanced step colours the marker (submitted before triaged before published ...)
      var first = OPEN.filter(function (s) { return rows.some(function (r) { return r.props.status === s; }); })[0];
      var scale = Math.max(1, window.innerWidth / 1920);
      var style = {
        radius: (6 + 2 * Math.min(rows.length, 6)) * scale, weight: overdue ? 4 : 2, color: overdue ? "#ff1744" : "#ffffff",
        fillColor: STATUS_COLOURS[first] || "#ab47bc", fillOpacity: 0.9, pane: "gc-requests",
        className: "gc-request" + (overdue ? " gc-request-overdue" : ""),
      };
      if (!m) {
        m = markers[key] = window.L.circleMarker(ctx.latLngOf(rows[0].geometry), style).addTo(group);
        m.bindTooltip(function () { return m._gcText || ""; });
      } else {
        m.setLatLng(ctx.latLngOf(rows[0].geometry));
        m.setStyle(style);
      }
      m._gcText = S.requests + " · " + rows.length + (overdue ? " · " + S.requests_overdue : "");
      var node = m.getElement && m.getElement();
      if (node) {
        node.dataset.requestBuilding = key;
        node.dataset.count = String(rows.length);
        node.dataset.overdue = overdue ? "1" : "0";
        node.dataset.statuses = rows.map(function (r) { return r.props.status; }).sort().join(",");
      }
    }

    function renderList() {
      var rows = Object.keys(byId).map(function (id) { return byId[id].props; })
        .sort(function (a, b) { return (b.created_at || "").localeCompare(a.created_at || "") || b.id - a.id; })
        .slice(0, LIST_SIZE);
      list.replaceChildren.apply(list, rows.map(function (p) {
        return ctx.el("li", { "data-request-id": String(p.id), "data-status": p.status, class: "status-" + p.status + (p.overdue ? " overdue" : "") }, [
          ctx.el("span", { class: "when", text: ctx.timeOf(p.created_at) }),
          ctx.el("span", { class: "what", text: "#" + p.id + " " + (S["request_channel_" + p.channel] || p.channel || "") +
            (p.grid_cell_id ? " · " + (R.cells[String(p.grid_cell_id)] || "") : "") + (p.overdue ? " ⏰" : "") }),
          ctx.el("span", { class: "badge", text: statusLabel(p.status) }),
        ]);
      }));
      empty.hidden = rows.length > 0;
    }

    function put(id, geometry, props) {
      var key = String(id);
      var before = byId[key] ? keyOf(byId[key]) : null;
      if (isOpen(props)) byId[key] = { props: Object.assign({}, props, { id: Number(id) }), geometry: geometry };
      else delete byId[key];
      if (group) {
        if (before) drawBuilding(before);
        if (byId[key] && keyOf(byId[key]) !== before) drawBuilding(keyOf(byId[key]));
      }
    }

    return Object.assign(ctx.featureLayer({
      layer: "requests",
      query: "status=" + OPEN.join(",") + "&limit=5000",
      reset: function () {
        byId = {};
        if (group) { group.clearLayers(); markers = {}; }
      },
      put: put,
      render: renderList,
    }), {
      onNumbers: function (n) {
        if (!n.requests) return;
        box.count.textContent = " · " + S.requests_open + " " + n.requests.open + " · " + S.requests_overdue + " " + n.requests.overdue;
        box.node.dataset.open = String(n.requests.open);
        box.node.dataset.overdue = String(n.requests.overdue);
      },
    });
  });
})();
