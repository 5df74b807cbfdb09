/*
 * GridLayerLoader: the layers of a map page that are loaded after its first paint
 * (maps/pages.py, LazyLayer: the control-room wall). The page's HTML holds no layer data, only an
 * empty Leaflet group per layer and its description (derived from the layer's one declaration in
 * command/layers.py: GeoJSON and tile URLs, style, tooltip fields, the most features drawn as
 * GeoJSON). Once started, each group that is on the map gets the GeoJSON of the view (bbox, one
 * request, at most `limit` features); when the view holds more, the layer comes as vector tiles
 * instead. A hidden layer loads when it is switched on; a GeoJSON layer reloads when the view
 * leaves what it loaded.
 *
 *   GridLayerLoader.add(map, group, spec);     // from the page (LazyLayer)
 *   GridLayerLoader.start();                   // when the page's own first data is in
 *   GridLayerLoader.onLoad(name, fn);          // fn(entry) after each load: {mode, layer, group}
 *   GridLayerLoader.viewBbox(map, pad);        // the view in WGS 84 (also in GCJ-02 mode)
 */
(function (global) {
  "use strict";

  var entries = {};
  var listeners = {};
  var started = false;

  function shift(lon, lat) {
    return global.GridGcj02 ? global.GridGcj02(lon, lat) : [lon, lat];
  }
  function unshift(lon, lat) {
    // GCJ-02 -> WGS 84 by fixed-point iteration (the map shows GCJ-02, the server speaks WGS 84)
    if (!global.GridGcj02) return [lon, lat];
    var x = lon, y = lat;
    for (var i = 0; i < 4; i++) {
      var s = shift(x, y);
      x += lon - s[0];
      y += lat - s[1];
    }
    return [x, y];
  }
  function viewBbox(map, pad) {
    var b = map.getBounds().pad(pad === undefined ? 0.2 : pad);
    var sw = unshift(b.getWest(), b.getSouth()), ne = unshift(b.getEast(), b.getNorth());
    var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(hi, v)); };
    return [clamp(sw[0], -180, 180), clamp(sw[1], -90, 90), clamp(ne[0], -180, 180), clamp(ne[1], -90, 90)];
  }

  function tooltip(fields) {
    return function (layer) {
      var p = (layer.feature && layer.feature.properties) || {};
      var box = document.createElement("div");
      fields.forEach(function (name) {
        if (p[name] === null || p[name] === undefined) return;
        var row = document.createElement("div"), key = document.createElement("b");
        key.textContent = name + ": ";
        row.appendChild(key);
        row.appendChild(document.createTextNode(String(p[name])));
        box.appendChild(row);
      });
      return box;
    };
  }

  function showTiles(entry) {
    var spec = entry.spec;
    // one canvas per tile: tens of thousands of buildings as SVG paths made every frame of the
    // wall slow (style, layout and paint of each path)
    var options = Object.assign({ rendererFactory: L.canvas.tile }, spec.tile_options);
    if (spec.feature_id) options.getFeatureId = function (f) { return f.properties[spec.feature_id]; };
    entry.group.clearLayers();
    entry.layer = L.vectorGrid.protobuf(spec.tiles, options);
    entry.mode = "tiles";
    entry.group.addLayer(entry.layer);
    loaded(entry);
  }

  function showGeojson(entry, data, bounds) {
    var spec = entry.spec;
    var layer = L.geoJSON(data, {
      style: function () { return spec.style; },
      pointToLayer: function (_f, latlng) { return L.circleMarker(latlng, spec.style); },
      coordsToLatLng: function (c) { var s = shift(c[0], c[1]); return L.latLng(s[1], s[0]); },
    });
    if (spec.tooltip.length) layer.bindTooltip(tooltip(spec.tooltip), { sticky: true });
    entry.group.clearLayers();
    entry.layer = layer;
    entry.mode = "geojson";
    entry.bounds = bounds;
    entry.group.addLayer(layer);
    loaded(entry);
  }

  function loaded(entry) {
    entry.loading = false;
    entry.loads += 1;
    (listeners[entry.spec.name] || []).forEach(function (fn) {
      try { fn(entry); } catch (err) { console.error("GridLayerLoader", err); }
    });
  }

  function load(entry) {
    if (!started || entry.loading || entry.mode === "tiles" || !entry.map.hasLayer(entry.group)) return;
    var spec = entry.spec;
    if (spec.tiles_only) { showTiles(entry); return; }
    entry.loading = true;
    var bbox = viewBbox(entry.map, 0.5);
    var bounds = entry.map.getBounds().pad(0.5);
    var limit = Math.max(1, spec.limit);
    fetch(spec.geojson + "?limit=" + limit + "&bbox=" + bbox.map(function (v) { return v.toFixed(6); }).join(","), {
      credentials: "same-origin", headers: { Accept: "application/geo+json" },
    })
      .then(function (r) {
        if (!r.ok) throw new Error(spec.name + ": HTTP " + r.status);
        if (Number(r.headers.get("X-Features-Returned")) >= limit) return null; // more than a page shows: tiles
        return r.json();
      })
      .then(function (data) {
        if (data === null) showTiles(entry);
        else showGeojson(entry, data, bounds);
      })
      .catch(function (err) {
        entry.loading = false;
        console.warn("GridLayerLoader: not loaded", err); // the next move or switch-on retries
      });
  }

  function add(map, group, spec) {
    var entry = { map: map, group: group, spec: spec, mode: null, layer: null, bounds: null, loading: false, loads: 0 };
    entries[spec.name] = entry;
    group.on("add", function () { load(entry); });
    if (!map._gcLazyMoves) {
      map._gcLazyMoves = true;
      var timer = null;
      map.on("moveend", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          Object.keys(entries).forEach(function (name) {
            var e = entries[name];
            if (e.map === map && e.mode === "geojson" && !(e.bounds && e.bounds.contains(map.getBounds()))) {
              e.mode = null;
              load(e);
            }
          });
        }, 400);
      });
    }
    return entry;
  }

  function start() {
    if (started) return;
    started = true;
    Object.keys(entries).forEach(function (name) { load(entries[name]); });
  }

  function onLoad(name, fn) {
    (listeners[name] = listeners[name] || []).push(fn);
    if (entries[name] && entries[name].loads) fn(entries[name]);
  }

  global.GridLayerLoader = {
    add: add, start: start, onLoad: onLoad, viewBbox: viewBbox, unshift: unshift,
    get: function (name) { return entries[name] || null; },
    get started() { return started; },
  };
})(window);
