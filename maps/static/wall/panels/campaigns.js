/*
 * Door-to-door campaigns on the wall (#15): for each active campaign the viewer may see, the
 * progress panel of /maps/campaigns/<id>/progress/ — the same code, maps/static/maps/
 * campaign-progress.js, mounted here with the wall's map (per-building colours on the map) and
 * the hub's stream (its campaign.progress events move the building and the live percentage).
 * Which campaigns are active comes from /control/api/panels.json; a campaign.updated event
 * (started, closed) asks again.
 */
(function () {
  "use strict";
  window.GridWallPanels.register("campaigns", function (ctx) {
    var box = ctx.section("campaigns", ctx.S.campaigns);
    var empty = ctx.el("p", { class: "wp-empty", text: ctx.S.no_campaigns });
    box.body.appendChild(empty);
    var mounted = {}; // campaign id -> {node, panel}

    function sync(list) {
      var wanted = {};
      list.forEach(function (c) { wanted[String(c.id)] = c; });
      Object.keys(mounted).forEach(function (id) {
        if (wanted[id]) return;
        mounted[id].panel.close();
        mounted[id].node.remove();
        delete mounted[id];
      });
      list.forEach(function (c) {
        var id = String(c.id);
        if (mounted[id]) return;
        var node = ctx.el("div", { class: "wp-campaign", "data-campaign-id": id });
        box.body.appendChild(node);
        mounted[id] = {
          node: node,
          panel: window.GridCampaignProgress.mount(node, {
            campaignId: c.id, strings: ctx.cfg.campaign_strings, map: ctx.map,
            coordsToLatLng: ctx.coordsToLatLng, connect: ctx.subscribe,
          }),
        };
      });
      empty.hidden = list.length > 0;
      box.count.textContent = list.length ? " " + list.length : "";
    }

    return {
      layers: ["campaigns"],
      mountLayers: ["campaign_buildings"], // what GridCampaignProgress subscribes to, on the hub's stream
      onEvent: function () { ctx.refresh(); },
      onNumbers: function (n) { if (n.campaigns) sync(n.campaigns); },
    };
  });
})();
