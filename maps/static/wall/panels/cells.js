/*
 * Grid cells falling behind (#14, cell performance): the cells whose SLA compliance over the
 * last 7 days is under target, or dropped against the week before (command/analysis/cells.py, the
 * analysis page's rule; computed on the server: /control/api/panels.json) are outlined on the map
 * and listed worst first. Incidents' events on the wall's feed stream ask for the numbers again.
 */
(function () {
  "use strict";

  window.GridWallPanels.register("cells", function (ctx) {
    var S = ctx.S;
    var box = ctx.section("cells", S.cells_behind);
    var list = ctx.el("ol", { class: "wp-list", id: "wall-cells-behind" });
    var empty = ctx.el("p", { class: "wp-empty", text: S.no_cells_behind });
    box.body.append(list, empty);
    var hooks = window.GridWallMap || {};

    var loader = window.GridLayerLoader; // where the map's layers load after the first paint
    var last = {};
    ctx.wall.on("event", function (ev) { if (ev.layer === "incidents") ctx.refresh(); });
    if (loader && loader.onLoad) loader.onLoad("cells", function () { outline(last); });

    function cellsLayer() {
      var entry = loader && loader.get ? loader.get("cells") : null;
      return entry ? entry.layer : hooks.layers && hooks.layers.cells;
    }
    function outline(behind) {
      last = behind;
      var layer = cellsLayer();
      if (!layer || !layer.eachLayer) return; // not loaded yet, or vector tiles (very many cells): listed only
      // only the cells whose flag changed are restyled (and brought to the front): every
      // panels.json load restyled all of them (324 SVG paths) and re-stacked those behind
      layer.eachLayer(function (l) {
        var p = (l.feature && l.feature.properties) || {};
        if (p.level === "big") return;
        var flag = behind[String(p.id)] ? "1" : "0";
        if (l._gcBehind === flag) return;
        if (!l._gcBase) l._gcBase = { color: l.options.color, weight: l.options.weight, dashArray: l.options.dashArray || null };
        l._gcBehind = flag;
        l.setStyle(flag === "1" ? { color: "#ff1744", weight: 5, dashArray: "12 6" } : l._gcBase);
        if (flag === "1") l.bringToFront();
        var node = l.getElement && l.getElement();
        if (node) node.dataset.behind = flag;
      });
    }

    return {
      onNumbers: function (n) {
        var rows = n.cells || [];
        var behind = {};
        rows.forEach(function (r) { behind[String(r.cell_id)] = r; });
        outline(behind);
        list.replaceChildren.apply(list, rows.map(function (r) {
          return ctx.el("li", { "data-cell-id": String(r.cell_id) }, [
            ctx.el("span", { class: "what", text: "⚑ " + r.code }),
            ctx.el("span", { text: ctx.fmt(S.sla_compliance, { pct: r.sla_compliance }) +
              (r.previous_compliance !== null ? " · " + ctx.fmt(S.previous, { pct: r.previous_compliance }) : "") }),
          ]);
        }));
        empty.hidden = rows.length > 0;
        box.count.textContent = rows.length ? " " + rows.length : "";
      },
    };
  });
})();
