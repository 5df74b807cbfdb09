/*
 * Hotspot notices on the wall (#14): each hotspot.raised event (a new or growing hotspot; the
 * hotspot refresh, command/services/hotspots.py) shows a notice — category, incidents, trend —
 * and outlines its hull on the map; a click shows it, "dismiss" removes it. The newest
 * NOTICES_MAX are kept; a wall opened later shows those announced in the last 24 h (panels.json).
 * The events come through the one policy (the hotspots layer's grant).
 */
(function () {
  "use strict";
  var NOTICES_MAX = 5;

  window.GridWallPanels.register("hotspots", function (ctx) {
    var S = ctx.S, R = ctx.R;
    var box = document.getElementById("wall-notices");
    var group = ctx.map && window.L ? window.L.featureGroup().addTo(ctx.map) : null;
    var notices = []; // {id, node, shape}

    function remove(n) {
      n.node.remove();
      if (n.shape && group) group.removeLayer(n.shape);
      notices = notices.filter(function (x) { return x !== n; });
    }
    function notice(ev) {
      var p = ev.payload.properties || {};
      var cat = (R.categories || {})[String(p.category_id)] || { name: "#" + p.category_id };
      notices.filter(function (x) { return x.id === String(ev.object_id); }).forEach(remove);
      var n = { id: String(ev.object_id), node: null, shape: null };
      if (group && ev.payload.geometry) {
        n.shape = window.L.geoJSON({ type: "Feature", geometry: ev.payload.geometry, properties: {} }, {
          coordsToLatLng: ctx.coordsToLatLng, style: { color: "#ffea00", weight: 4, dashArray: "10 6", fillOpacity: 0.15, className: "gc-hotspot-raised" },
        }).addTo(group);
      }
      n.node = ctx.el("div", {
        class: "wall-notice notice-" + p.trend, "data-hotspot-id": n.id, "data-trend": String(p.trend), role: "status",
        onclick: function () { if (n.shape && ctx.map) ctx.map.fitBounds(n.shape.getBounds(), { maxZoom: 18, padding: [40, 40] }); },
      }, [
        ctx.el("b", { text: p.trend === "growing" ? S.hotspot_growing : S.hotspot_new }),
        ctx.el("span", { text: cat.name + " · " + ctx.fmt(S.hotspot_count, { n: p.count }) +
          (p.grid_cell_id ? " · " + ((R.cells || {})[String(p.grid_cell_id)] || "") : "") + " · " + ctx.timeOf(ev.created_at) }),
        ctx.el("button", { type: "button", class: "wall-button", text: "✕", title: S.dismiss, "aria-label": S.dismiss,
          onclick: function (e) { e.stopPropagation(); remove(n); } }),
      ]);
      box.insertBefore(n.node, box.firstChild);
      notices.unshift(n);
      while (notices.length > NOTICES_MAX) remove(notices[notices.length - 1]);
    }

    var seeded = false;
    return {
      layers: ["hotspots"],
      onEvent: function (ev) { if (ev.kind === "hotspot.raised" && ev.payload) notice(ev); },
      onNumbers: function (n) {
        // once, when the wall opens: those announced lately (panels.json), oldest first so the newest is on top
        if (seeded || !n.hotspots) return;
        seeded = true;
        n.hotspots.slice().reverse().forEach(notice);
      },
    };
  });
})();
