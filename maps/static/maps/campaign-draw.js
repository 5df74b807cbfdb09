/* GridCommand: pick a door-to-door campaign's area on the map (/maps/campaigns/).
 *
 * A small drawing tool on our own Leaflet (no plugin, no CDN): the grid cells are drawn from the
 * cells layer; a click on a cell picks it (its checkbox in the form follows, and the other way
 * round). "Draw an area" starts a polygon: each click on the map adds a corner, "Finish" (or a
 * double click) closes it and writes it as a GeoJSON Polygon into the form's hidden `area`
 * field; "Clear" removes it. A campaign takes an area or cells, not both: drawing unpicks the
 * cells, picking a cell clears the area. The server checks the polygon again (campaign_create).
 */
"use strict";

(function (global) {
  function mount(form, opts) {
    var L = global.L;
    var el = document.getElementById(opts.mapId);
    var area = form.querySelector("input[name=area]");
    var T = opts.strings;
    var status = document.getElementById(opts.statusId);
    var buttons = {
      start: document.getElementById(opts.startId),
      finish: document.getElementById(opts.finishId),
      clear: document.getElementById(opts.clearId),
    };
    var map = L.map(el, { attributionControl: false, zoomSnap: 0.25 }).setView([39, 117], 15);
    var cellLayers = {}; // code -> Leaflet layer
    var corners = [];
    var drawing = false;
    var sketch = L.polyline([], { color: "#f0883e", weight: 2, dashArray: "4 4" }).addTo(map);
    var shape = null; // the finished polygon

    function cellBoxes() {
      return Array.prototype.slice.call(form.querySelectorAll("input[name=cells]"));
    }
    function picked(code) {
      var box = cellBoxes().filter(function (b) { return b.value === code; })[0];
      return !!(box && box.checked);
    }
    function restyle() {
      Object.keys(cellLayers).forEach(function (code) {
        var on = picked(code);
        cellLayers[code].setStyle({ color: on ? "#3fb950" : "#3d8bfd", weight: on ? 3 : 1, fillOpacity: on ? 0.3 : 0.05 });
      });
      var n = cellBoxes().filter(function (b) { return b.checked; }).length;
      if (drawing) status.textContent = T.drawing.replace("%(n)s", String(corners.length));
      else if (shape) status.textContent = T.area_drawn;
      else status.textContent = n ? T.cells_picked.replace("%(n)s", String(n)) : T.nothing_picked;
      el.dataset.corners = String(corners.length);
      el.dataset.area = area.value ? "drawn" : "";
      buttons.finish.disabled = !drawing || corners.length < 3;
    }
    function clearArea() {
      if (shape) map.removeLayer(shape);
      shape = null;
      area.value = "";
      corners = [];
      sketch.setLatLngs([]);
    }
    function unpickCells() {
      cellBoxes().forEach(function (b) { b.checked = false; });
    }
    function finish() {
      if (corners.length < 3) return;
      drawing = false;
      map.doubleClickZoom.enable();
      el.classList.remove("drawing");
      var ring = corners.map(function (c) { return [+c.lng.toFixed(7), +c.lat.toFixed(7)]; });
      ring.push(ring[0]);
      area.value = JSON.stringify({ type: "Polygon", coordinates: [ring] });
      shape = L.polygon(corners, { color: "#f0883e", weight: 3, fillOpacity: 0.2, interactive: false }).addTo(map);
      sketch.setLatLngs([]);
      corners = [];
      restyle();
    }

    buttons.start.addEventListener("click", function () {
      clearArea();
      unpickCells();
      drawing = true;
      map.doubleClickZoom.disable();
      el.classList.add("drawing");
      restyle();
    });
    buttons.finish.addEventListener("click", finish);
    buttons.clear.addEventListener("click", function () {
      drawing = false;
      map.doubleClickZoom.enable();
      el.classList.remove("drawing");
      clearArea();
      restyle();
    });
    map.on("click", function (ev) {
      if (!drawing) return;
      corners.push(ev.latlng);
      sketch.setLatLngs(corners.concat(corners.length > 2 ? [corners[0]] : []));
      restyle();
    });
    map.on("dblclick", function () { if (drawing) finish(); });
    cellBoxes().forEach(function (b) {
      b.addEventListener("change", function () {
        if (b.checked) clearArea();
        restyle();
      });
    });

    fetch(opts.cellsUrl, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (fc) {
        var group = L.geoJSON(fc, {
          style: function (feature) { return { className: "gc-cell gc-cell-" + feature.properties.code }; },
          onEachFeature: function (feature, layer) {
            var code = feature.properties.code;
            cellLayers[code] = layer;
            layer.bindTooltip(code + " " + (feature.properties.name || ""));
            layer.on("click", function (ev) {
              if (drawing) return; // a corner: the map's click handler takes it
              L.DomEvent.stopPropagation(ev);
              var box = cellBoxes().filter(function (b) { return b.value === code; })[0];
              if (!box) return;
              box.checked = !box.checked;
              if (box.checked) clearArea();
              restyle();
            });
          },
        }).addTo(map);
        // the small cells on top, so that a click picks a cell, not its big grid
        group.eachLayer(function (layer) { if (layer.feature.properties.level !== "big") layer.bringToFront(); });
        if (group.getLayers().length) map.fitBounds(group.getBounds(), { padding: [10, 10] });
        el.dataset.ready = "1";
        restyle();
      })
      .catch(function () {
        status.textContent = T.no_map;
        el.dataset.ready = "error";
      });
    if (area.value) { // the form came back with an error: show the area drawn before
      try {
        shape = L.geoJSON(JSON.parse(area.value), { style: { color: "#f0883e", weight: 3, fillOpacity: 0.2 } }).addTo(map);
      } catch (e) {
        area.value = "";
      }
    }
    restyle();
    return map;
  }
  global.GridCampaignDraw = { mount: mount };
})(window);
