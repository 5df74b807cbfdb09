/* GridCommand: a campaign's targets not covered yet, per grid cell, beside its progress panel
 * (/maps/campaigns/<id>/progress/). The list comes from GET /api/v1/campaigns/<id>/targets/
 * ?status=open (the login's cells only; addresses and door numbers, no personal data) and is
 * read again whenever the panel's percentage moves (a mark was counted). The panel's map is the
 * map of them: a building is grey until touched and green only when all its targets are covered.
 */
"use strict";

(function (global) {
  function mount(element, opts) {
    var T = opts.strings;
    var busy = false;
    var again = false;
    function load() {
      if (busy) { again = true; return; }
      busy = true;
      fetch("/api/v1/campaigns/" + Number(opts.campaignId) + "/targets/?status=open&limit=5000", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(render)
        .catch(function () { /* keep what is shown */ })
        .then(function () { busy = false; if (again) { again = false; load(); } });
    }
    function render(body) {
      var cells = new Map();
      body.results.forEach(function (t) {
        var key = t.grid_cell || "-";
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push(t);
      });
      var blocks = Array.from(cells.keys()).sort().map(function (cell) {
        var list = cells.get(cell);
        var details = document.createElement("details");
        details.dataset.cell = cell;
        details.dataset.open = String(list.length);
        var summary = document.createElement("summary");
        summary.textContent = T.cell_open.replace("%(cell)s", cell).replace("%(n)s", String(list.length));
        var ul = document.createElement("ul");
        list.forEach(function (t) {
          var li = document.createElement("li");
          li.dataset.targetId = t.id;
          li.textContent = t.building_address + " · " + t.label + (t.status === "absent" ? " · " + T.absent : "");
          ul.append(li);
        });
        details.append(summary, ul);
        return details;
      });
      if (!blocks.length) blocks = [Object.assign(document.createElement("p"), { textContent: T.all_covered })];
      element.replaceChildren.apply(element, blocks);
      element.dataset.count = String(body.count);
    }
    if (opts.panel) {
      new MutationObserver(load).observe(opts.panel, { attributes: true, attributeFilter: ["data-percent"] });
    }
    load();
    return { reload: load };
  }
  global.GridCampaignOpen = { mount: mount };
})(window);
