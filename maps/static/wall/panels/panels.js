/*
 * The wall's panels (maps/static/wall/panels/<name>.js): what the resident services and the
 * analysis add to /control/. maps/wall.py loads this hub after wall.js, then one script per panel
 * the viewer's grants hold (command/wall_panel_selectors.py: WALL_PANELS). A panel registers:
 *
 *   GridWallPanels.register("requests", function (ctx) {
 *     return {
 *       layers: ["requests"],          // its event layers (on the hub's one stream)
 *       onEvent: function (ev) {},     // each event of those layers, once, in seq order
 *       onResync: function () {},      // reload its snapshot (may return a Promise)
 *       onNumbers: function (n) {},    // /control/api/panels.json, after each load
 *     };
 *   });
 *
 * The hub holds ONE GridLive stream (realtime/live.js) for every panel's layers: subscribe
 * first, snapshot (every panel's onResync and the numbers), then the events held meanwhile: no
 * gap, resumed after a drop. Numbers are computed on the server once and asked again (at most
 * one request in flight, NUMBERS_MIN_MS apart) when an event says something changed.
 *
 * ctx: {cfg, S (the panels' words), R (wall reference), wall (GridWall), map, el, fmt, timeOf,
 *       latLngOf(geometry), coordsToLatLng, section(name, title) -> {node, body, count}, pane(name, z),
 *       features(layer, query) -> Promise of GeoJSON features, featureLayer({layer, query, reset, put, render}),
 *       refresh(), subscribe(options) (GridLive.connect's shape, on the hub's stream)}
 */
(function (global) {
  "use strict";

  var NUMBERS_MIN_MS = 1500;
  var factories = {};
  var order = [];

  function register(name, factory) {
    if (!factories[name]) order.push(name);
    factories[name] = factory;
  }

  var P = (global.GridWallPanels = {
    register: register, ready: false, status: "connecting", numbers: null, numbersLoads: 0, panels: {},
  });

  function start() {
    var cfgNode = document.getElementById("gc-wall-config");
    var root = document.getElementById("wall-panels");
    if (!cfgNode || !root || !global.GridLive) return;
    var cfg = JSON.parse(cfgNode.textContent);
    var W = global.GridWall;
    if (!W || !W.on) return; // the panels live on the wall (wall.js first)
    var hooks = global.GridWallMap || {};
    var map = hooks.map || null;
    var shift = cfg.gcj02 && global.GridGcj02 ? global.GridGcj02 : function (lon, lat) { return [lon, lat]; };

    var el = W.el; // wall.js's own helpers
    function fmt(s, vars) { return W.fmt(String(s), vars).replace(/%%/g, "%"); }
    function timeOf(iso) { return iso ? W.timeOf(iso) : "–"; }
    function coordsToLatLng(c) { var s = shift(c[0], c[1]); return global.L.latLng(s[1], s[0]); }
    function latLngOf(geometry) { return coordsToLatLng(geometry.coordinates); }
    function pane(name, zIndex) {
      // a Leaflet pane of its own (vector layers in it get their own renderer), over the overlays
      if (!map) return null;
      var node = map.getPane(name) || map.createPane(name);
      node.style.zIndex = String(zIndex);
      return node;
    }
    function features(layer, query) {
      // a layer's features through the one policy (the GeoJSON endpoint)
      return fetch("/maps/layers/" + layer + ".geojson?" + query, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(layer + ": HTTP " + r.status); return r.json(); })
        .then(function (fc) { return fc.features || []; });
    }
    function featureLayer(o) {
      // a panel over one layer's features: o = {layer, query, reset(), put(id, geometry, properties)
      // (null properties: gone), render()}; its snapshot, and each feature event, then the numbers
      function snapshot() {
        return features(o.layer, o.query).then(function (list) {
          o.reset();
          list.forEach(function (f) { o.put(f.id, f.geometry, f.properties); });
          o.render();
        });
      }
      return {
        layers: [o.layer],
        onResync: snapshot,
        onEvent: function (ev) {
          if (ev.kind === "layer.reloaded") snapshot();
          else if (ev.payload) o.put(ev.object_id, ev.kind === "record.deleted" ? null : ev.payload.geometry, ev.kind === "record.deleted" ? null : ev.payload.properties);
          o.render();
          refresh();
        },
      };
    }
    function section(name, title) {
      var count = el("span", { class: "wp-count" });
      var body = el("div", { class: "wp-body" });
      var node = el("section", { class: "wp wp-" + name, "data-panel": name }, [el("h3", { text: title }, [count]), body]);
      root.appendChild(node);
      return { node: node, body: body, count: count };
    }

    // --- the numbers: /control/api/panels.json ------------------------------------------------
    var inFlight = false, again = false, timer = null, last = 0;
    function loadNumbers() {
      inFlight = true;
      last = Date.now();
      return fetch("/control/api/panels.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("panels: HTTP " + r.status); return r.json(); })
        .then(function (n) {
          P.numbers = n;
          P.numbersLoads += 1;
          mounted.forEach(function (m) { if (m.api.onNumbers) safe(m.name, function () { m.api.onNumbers(n); }); });
        })
        .finally(function () {
          inFlight = false;
          if (again) { again = false; refresh(); }
        });
    }
    function refresh() {
      if (inFlight) { again = true; return; }
      if (timer !== null) return;
      timer = setTimeout(function () {
        timer = null;
        loadNumbers().catch(function (err) { console.warn("wall panels: numbers not refreshed", err); });
      }, Math.max(50, NUMBERS_MIN_MS - (Date.now() - last)));
    }
    function safe(name, fn) {
      try { return fn(); } catch (err) { console.error("wall panel " + name, err); return null; }
    }

    // --- one stream for every panel (and for what they mount, e.g. GridCampaignProgress) --------
    var subscribers = []; // {layers, onEvent, onResync, onStatus, loading, held}
    function wants(sub, ev) { return sub.layers.indexOf(ev.layer) >= 0; }
    function deliver(sub, ev) {
      if (sub.closed) return;
      if (sub.loading) { sub.held.push(ev); return; }
      safe(sub.name, function () { sub.onEvent(ev); });
    }
    function snapshotOf(sub) {
      // a late subscriber: its own snapshot, its events held meanwhile and applied after (no gap)
      sub.loading = true;
      sub.held = [];
      var done = function () {
        sub.loading = false;
        sub.loaded = true;
        var held = sub.held;
        sub.held = [];
        held.forEach(function (ev) { deliver(sub, ev); });
      };
      var result = safe(sub.name, function () { return sub.onResync(); });
      if (result && typeof result.then === "function") return result.then(done, function (err) { done(); throw err; });
      done();
      return Promise.resolve();
    }
    var live = null;
    function subscribe(options) {
      var sub = {
        name: options.name || "subscriber", layers: (options.layers || []).slice(), closed: false,
        onEvent: options.onEvent || function () {}, onResync: options.onResync || function () {},
        onStatus: options.onStatus || function () {}, loading: false, held: [],
      };
      var outside = sub.layers.filter(function (l) { return layers.indexOf(l) < 0; });
      if (outside.length) return global.GridLive.connect(options); // not on the hub's stream: its own
      subscribers.push(sub);
      sub.onStatus(P.status);
      if (P.status === "live") snapshotOf(sub).catch(function (err) { console.warn("wall panels:", err); });
      return {
        close: function () {
          sub.closed = true;
          subscribers = subscribers.filter(function (s) { return s !== sub; });
        },
      };
    }

    var ctx = {
      cfg: cfg, S: cfg.panel_strings || {}, R: cfg.reference || {}, wall: W, map: map, el: el, fmt: fmt, timeOf: timeOf,
      latLngOf: latLngOf, coordsToLatLng: coordsToLatLng, section: section, pane: pane, refresh: refresh, subscribe: subscribe,
      features: features, featureLayer: featureLayer,
    };
    var mounted = [];
    var layers = [];
    order.forEach(function (name) {
      if ((cfg.panels || []).indexOf(name) < 0) return; // not granted to this viewer
      var api = safe(name, function () { return factories[name](ctx); });
      if (!api) return;
      mounted.push({ name: name, api: api });
      P.panels[name] = api;
      (api.layers || []).forEach(function (l) { if (layers.indexOf(l) < 0) layers.push(l); });
    });
    // the layers the panels' mounts will subscribe to (declared by the panel: mountLayers)
    mounted.forEach(function (m) {
      (m.api.mountLayers || []).forEach(function (l) { if (layers.indexOf(l) < 0) layers.push(l); });
    });

    function onEvent(ev) {
      mounted.forEach(function (m) {
        if ((m.api.layers || []).indexOf(ev.layer) >= 0 && m.api.onEvent) safe(m.name, function () { m.api.onEvent(ev); });
      });
      subscribers.slice().forEach(function (sub) { if (wants(sub, ev)) deliver(sub, ev); });
    }
    function onResync() {
      var work = [loadNumbers()];
      mounted.forEach(function (m) {
        if (m.api.onResync) work.push(Promise.resolve(safe(m.name, function () { return m.api.onResync(); })));
      });
      subscribers.forEach(function (sub) {
        sub.loaded = true;
        work.push(Promise.resolve(safe(sub.name, function () { return sub.onResync(); })));
      });
      return Promise.all(work).then(function () { P.ready = true; });
    }
    function onStatus(status) {
      P.status = status;
      root.dataset.live = status;
      subscribers.forEach(function (sub) {
        safe(sub.name, function () { sub.onStatus(status); });
        // mounted while the stream was down: its snapshot now
        if (status === "live" && !sub.loaded && !sub.loading) snapshotOf(sub).catch(function (err) { console.warn("wall panels:", err); });
      });
    }
    // the panels take room from the charts below them: let the charts (wall.js) fit again
    if (global.ResizeObserver) {
      var resizeTimer = null;
      new global.ResizeObserver(function () {
        clearTimeout(resizeTimer);
        resizeTimer = setTimeout(function () { global.dispatchEvent(new Event("resize")); }, 200);
      }).observe(root);
    }
    if (layers.length) {
      live = global.GridLive.connect({ layers: layers, onEvent: onEvent, onResync: onResync, onStatus: onStatus });
      P.live = live;
    } else {
      onStatus("live");
      onResync();
    }
  }

  // after every deferred script (the panels register after this one): DOMContentLoaded; "load"
  // in case this script came later than that
  var started = false;
  function once() { if (!started) { started = true; start(); } }
  if (document.readyState === "complete") once();
  else {
    document.addEventListener("DOMContentLoaded", once);
    window.addEventListener("load", once);
  }
})(window);
