/*
 * Home alarms on the wall (#16):
 * - an alarm from a resident's SOS/gas/smoke device opens a top-priority incident, which raises
 *   the wall's banner (wall.js); this panel marks it a home alarm — from the report of source
 *   "alarm" that comes with it live, or the server's `home` flag on a reload — and gives it its
 *   own sound (static wall/home-alarm.wav, maps/alarm_sound.py), distinct from the ordinary one;
 * - the incident drawer of a home alarm shows the device's household and emergency contact from
 *   GET /api/v1/incidents/<id>/alarms/ (the purpose "alarm response", each view in the
 *   personal-data access log);
 * - devices that missed their heartbeats (offline) or are raising an alarm are drawn on their
 *   building and listed, live from alarm_device.updated events; counts from panels.json.
 */
(function () {
  "use strict";
  var LIST_SIZE = 12;

  window.GridWallPanels.register("home_alarms", function (ctx) {
    var S = ctx.S, W = ctx.wall;
    var box = ctx.section("home_alarms", S.devices);
    var list = ctx.el("ol", { class: "wp-list", id: "wall-devices" });
    var empty = ctx.el("p", { class: "wp-empty", text: S.no_devices_offline });
    box.body.append(list, empty);
    var devices = {}; // device id -> {props, geometry, shape}
    var group = ctx.map && window.L ? window.L.featureGroup().addTo(ctx.map) : null;
    // incident id -> true: a home alarm. Kept while the incident is open, and at most HOME_KEPT
    // (the oldest ids go first: a wall runs for days, and one closed while it was offline
    // sends no event here)
    var home = {};
    var HOME_KEPT = 500;

    // --- the banner: home alarms marked, with their own sound --------------------------------
    function isHome(id) { return home[id] === true || (W.alarms && W.alarms[id] && W.alarms[id].home === true); }
    W.alarmSound = function () {
      return Object.keys(W.alarms || {}).some(isHome) ? ctx.cfg.home_alarm_sound : null;
    };
    W.on("alarms", function (alarms) {
      Object.keys(alarms).forEach(function (id) {
        var li = document.querySelector('#alarm-list [data-alarm-id="' + id + '"]');
        if (!li || !isHome(id)) return;
        li.classList.add("alarm-home");
        li.dataset.home = "1";
        li.insertBefore(ctx.el("b", { class: "alarm-home-tag", text: "⌂ " + S.home_alarm }), li.firstChild);
      });
    });
    W.on("event", function (ev) {
      var p = ev.payload && ev.payload.properties;
      if (ev.layer === "incidents" && home[ev.object_id] && (ev.kind === "record.deleted" || (p && ctx.cfg.open_statuses.indexOf(p.status) < 0))) {
        delete home[ev.object_id];
        return;
      }
      if (ev.kind !== "report.created" || !p || p.source !== "alarm" || !p.incident_id) return;
      var id = String(p.incident_id);
      if (home[id]) return;
      home[id] = true;
      var kept = Object.keys(home); // integer keys: in ascending order, the oldest incident first
      if (kept.length > HOME_KEPT) delete home[kept[0]];
      if (W.alarms && W.alarms[id] && W.renderAlarms) W.renderAlarms();
    });

    // --- the drawer: household and emergency contact (logged) ---------------------------------
    W.on("drawer", function (d) {
      if (!d.reports.some(function (r) { return r.source === "alarm"; })) return;
      var id = d.incident.id;
      fetch("/api/v1/incidents/" + id + "/alarms/", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("alarms: HTTP " + r.status); return r.json(); })
        .then(function (data) {
          if (W.drawer !== id) return;
          var old = document.getElementById("drawer-home-alarm");
          if (old) old.remove();
          var rows = data.devices.map(function (x) {
            var dev = x.device || {}, hh = x.household || {};
            var facts = function (pairs) {
              return pairs.filter(function (p) { return p[1] !== undefined && p[1] !== null && p[1] !== ""; })
                .map(function (p) { return p[0] + " " + p[1]; }).join(" · ");
            };
            return ctx.el("li", { "data-device-id": String(dev.id) }, [
              ctx.el("div", { text: (S["device_kind_" + dev.kind] || dev.kind) + " " + (dev.code || "") + " · " + (x.address || "") }),
              ctx.el("div", { "data-field": "household", text: S.household + " " + (hh.unit || "") + " · " +
                facts([[S.head_of_household, hh.head_name], ["☎", hh.phone], [S.wearer, dev.wearer_name]]) }),
              ctx.el("div", { "data-field": "contact", class: "wp-contact", text: S.emergency_contact + " " +
                facts([["", dev.contact_name], ["☎", dev.contact_phone]]) }),
            ]);
          });
          var section = ctx.el("section", { id: "drawer-home-alarm", class: "drawer-home-alarm" }, [
            ctx.el("h4", { text: "⌂ " + S.home_alarm }), ctx.el("ul", {}, rows), ctx.el("p", { class: "facts", text: S.logged_view }),
          ]);
          var body = document.getElementById("drawer-body");
          var first = body.querySelector("h4");
          body.insertBefore(section, first);
        })
        .catch(function (err) { console.warn("wall: home alarm not shown", err); });
    });

    // --- devices offline (missed heartbeats) or raising an alarm: map and list ------------------
    function draw(key) {
      var dvc = devices[key];
      if (!group) return;
      if (dvc.shape) { group.removeLayer(dvc.shape); dvc.shape = null; }
      if (!dvc.geometry) return;
      var offline = dvc.props.status === "offline";
      dvc.shape = window.L.geoJSON({ type: "Feature", geometry: dvc.geometry, properties: {} }, {
        coordsToLatLng: ctx.coordsToLatLng,
        style: offline ? { color: "#b0bec5", weight: 3, dashArray: "5 4", fillColor: "#607d8b", fillOpacity: 0.45 }
          : { color: "#ff9800", weight: 4, fillColor: "#ff5722", fillOpacity: 0.6 },
      }).addTo(group);
      dvc.shape.eachLayer(function (l) {
        var node = l.getElement && l.getElement();
        if (node) {
          node.dataset.deviceId = key;
          node.dataset.deviceStatus = dvc.props.status;
          node.classList.add(offline ? "gc-device-offline" : "gc-device-alarm");
        }
      });
    }
    function put(id, geometry, props) {
      var key = String(id);
      if (devices[key] && devices[key].shape && group) group.removeLayer(devices[key].shape);
      if (!props || (props.status !== "offline" && props.status !== "alarm")) { delete devices[key]; return; }
      devices[key] = { props: props, geometry: geometry, shape: null };
      draw(key);
    }
    function renderList() {
      var rows = Object.keys(devices).map(function (k) { return devices[k].props; })
        .sort(function (a, b) { return (a.status === "alarm" ? 0 : 1) - (b.status === "alarm" ? 0 : 1) || a.id - b.id; })
        .slice(0, LIST_SIZE);
      list.replaceChildren.apply(list, rows.map(function (p) {
        return ctx.el("li", { "data-device-id": String(p.id), "data-status": p.status, class: "device-" + p.status }, [
          ctx.el("span", { class: "what", text: (p.code || "#" + p.id) + " " + (S["device_kind_" + p.kind] || p.kind) }),
          ctx.el("span", { class: "when", text: ctx.fmt(S.last_heartbeat, { time: ctx.timeOf(p.last_heartbeat_at) }) }),
          ctx.el("span", { class: "badge", text: S["devices_" + p.status] || p.status }),
        ]);
      }));
      empty.hidden = rows.length > 0;
    }
    return Object.assign(ctx.featureLayer({
      layer: "alarm_devices",
      query: "status=offline,alarm&limit=5000",
      reset: function () {
        if (group) group.clearLayers();
        devices = {};
      },
      put: put,
      render: renderList,
    }), {
      onNumbers: function (n) {
        var c = n.home_alarms;
        if (!c) return;
        box.count.textContent = " · " + S.devices_offline + " " + c.offline + " · " + S.devices_alarm + " " + c.alarm;
        box.node.dataset.offline = String(c.offline);
        box.node.dataset.alarm = String(c.alarm);
      },
    });
  });
})();
