/*
 * The control-room wall (/control/, maps/wall.py). Runs unattended for days:
 *
 * - one live stream (realtime/live.js: incidents, reports and workers of the whole district)
 *   drives the feed, the alarms, the refresh of the numbers and the markers of what is in the
 *   map's view (the view's bbox follows the map). It resumes after a drop (no event missed or
 *   applied twice) and reloads its snapshots on resync; the map reloads its own when the view
 *   moves;
 * - every number (KPIs, charts, cell load, alarms) comes from /control/api/state.json, computed
 *   once on the server (command/wall_selectors.py); events only say when to ask again;
 * - what it keeps is bounded: the feed (FEED_SIZE rows), open incidents in view, workers on duty,
 *   short-lived pulse/fade markers; charts are updated in place.
 */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("gc-wall-config").textContent);
  var S = cfg.strings;
  var R = cfg.reference;
  var OPEN = {};
  cfg.open_statuses.forEach(function (s) { OPEN[s] = true; });
  var FEED_SIZE = 50;
  // Markers and cluster icons in CSS pixels grow with the screen: the same wall at 3840×2160.
  var SCALE = Math.max(1, window.innerWidth / 1920);
  var REFRESH_MIN_MS = 1000;
  var STATUS_COLOURS = { new: "#ff5252", dispatched: "#ffb300", accepted: "#29b6f6", on_scene: "#b388ff" };
  var PRIORITY_RADIUS = { 1: 12, 2: 9, 3: 7, 4: 6 };

  function $(sel) { return document.querySelector(sel); }
  function fmt(s, vars) { return s.replace(/%\((\w+)\)s/g, function (_m, k) { return String(vars[k]); }); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  // One formatter each, made once: toLocaleTimeString(locale, options) builds a new one on every
  // call (~0.2-0.4 ms each: a reload's 50 feed rows and the alarm banner spent 20-30 ms in it).
  var TIME_FORMAT = new Intl.DateTimeFormat(cfg.language && cfg.language.indexOf("en") === 0 ? "en-GB" : "zh-CN",
    { hour12: false, hour: "numeric", minute: "numeric", second: "numeric" });
  var CLOCK_FORMAT = new Intl.DateTimeFormat(cfg.language === "en" ? "en-GB" : "zh-CN",
    { hour12: false, year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
  function timeOf(iso) { return TIME_FORMAT.format(new Date(iso)); }
  function category(id) { return R.categories[String(id)] || { name: "#" + id, priority: 4 }; }
  function statusLabel(s) { return R.statuses[s] || s; }
  function isOpen(props) { return !!props && OPEN[props.status] === true; }
  // Every animation of the wall (a new incident's pulse, a closed one's fade, a new feed row's
  // highlight, a changed number's flash) runs in steps, and on one clock: each starts on a
  // multiple of STEP_MS of the document timeline, and every step is a multiple of it too, so
  // all their steps fall in the same frames. Started whenever their event came, the steps of
  // ~20 pulses, rows and flashes were out of phase and the compositor drew (in software, without
  // a GPU) ~45 frames a second while reports came in, each competing with the next report's
  // frame for the CPU. Until its first step the animation shows its first keyframe (fill
  // backwards): it is on the screen at once, the same as if it had started then.
  var STEP_MS = 125;
  function stepped(node, keyframes, options) {
    if (!node.animate) return null;
    var anim = node.animate(keyframes, Object.assign({ fill: "backwards" }, options));
    var now = document.timeline ? document.timeline.currentTime : null;
    if (typeof now === "number") anim.startTime = Math.ceil(now / STEP_MS) * STEP_MS;
    return anim;
  }

  var hooks = window.GridWallMap || {};
  var map = hooks.map;
  var cluster = hooks.cluster;
  var shift = cfg.gcj02 && window.GridGcj02 ? window.GridGcj02 : function (lon, lat) { return [lon, lat]; };
  var loader = window.GridLayerLoader; // the map's other layers, loaded after the first paint (maps/pages.py)
  // Incidents and workers are drawn in a pane (so an SVG) of their own, over the other overlays:
  // in the overlay pane's one SVG with the cells, cones and hulls, each marker added, moved or
  // removed made Chromium paint all of them again (bench/wall.py on the scale data).
  var LIVE_PANE = "gcLive";
  if (map && !map.getPane(LIVE_PANE)) map.createPane(LIVE_PANE).style.zIndex = "430"; // overlays 400, panels' 450
  // Marker icons (the clusters, the rings) and tiles are placed by a 2D translate, not by
  // Leaflet's translate3d: Chromium gives every element with a 3D transform a composited layer
  // of its own, and the wall had ~80 (each tile canvas, each cluster icon), all of them in every
  // frame's layer work (Layerize, Commit, the compositor's draw; in software without a GPU). The
  // position is the same (Leaflet keeps it in el._leaflet_pos); the panes and the zoom
  // animation keep theirs.
  if (window.L && L.Browser.any3d) {
    var flat = function (node) {
      var pos = node && node._leaflet_pos;
      if (pos) node.style.transform = "translate(" + pos.x + "px," + pos.y + "px)";
    };
    var markerSetPos = L.Marker.prototype._setPos;
    L.Marker.prototype._setPos = function (pos) {
      markerSetPos.call(this, pos);
      flat(this._icon);
      flat(this._shadow);
    };
    var gridAddTile = L.GridLayer.prototype._addTile;
    L.GridLayer.prototype._addTile = function (coords, container) {
      gridAddTile.call(this, coords, container);
      var tile = this._tiles[this._tileCoordsToKey(coords)];
      if (tile) flat(tile.el);
    };
  }

  // Exposed for people debugging a wall from the console, and for the browser tests.
  var W = (window.GridWall = {
    ready: false, kpis: null, trends: null, alarms: {}, feed: [], markers: {}, workers: {},
    stateLoads: 0, feedResyncs: 0, mapResyncs: 0, status: "connecting", lostSince: null, drawer: null,
  });
  // The panels (maps/static/wall/panels/) hook in here: W.on("event" | "drawer" | "alarms", fn);
  // W.alarmSound() may name another sound for the alarms on the banner.
  var listeners = {};
  W.on = function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); };
  function emit(name, arg) {
    (listeners[name] || []).forEach(function (fn) { try { fn(arg); } catch (err) { console.error("wall panel", name, err); } });
  }

  // --- connection status ---------------------------------------------------------------------
  function onStatus(status) {
    W.status = status;
    $("#wall-live").dataset.status = status;
    document.documentElement.dataset.live = status;
    var banner = $("#offline");
    if (status === "live") {
      if (W.lostSince !== null) scheduleRefresh(); // numbers may have moved while offline
      W.lostSince = null;
      banner.hidden = true;
    } else if (status === "offline" && W.lostSince === null) {
      W.lostSince = new Date();
      banner.textContent = fmt(S.connection_lost_since, { time: timeOf(W.lostSince.toISOString()) });
      banner.hidden = false;
    }
  }
  setInterval(function () { $("#wall-clock").textContent = CLOCK_FORMAT.format(new Date()); }, 1000);

  // --- the numbers: one request, debounced, when events say something changed ----------------
  var refreshTimer = null, refreshing = false, refreshAgain = false, lastRefresh = 0;
  function scheduleRefresh() {
    if (refreshing) { refreshAgain = true; return; }
    if (refreshTimer !== null) return;
    var wait = Math.max(50, REFRESH_MIN_MS - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      loadState(false).catch(function (err) { console.warn("wall: numbers not refreshed", err); }); // the next event or reconnect retries
    }, wait);
  }
  function fetchState() {
    return fetch("/control/api/state.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("state: HTTP " + r.status); return r.json(); });
  }
  function drawState(state, withFeed) {
    renderKpis(state.kpis);
    scheduleCharts(state.trends);
    shadeCells(state.trends.cell_load);
    setAlarms(state.alarms);
    if (withFeed) renderFeed(state.feed);
  }
  function loadState(withFeed, answer) {
    refreshing = true;
    lastRefresh = Date.now();
    return (answer || fetchState())
      .then(function (state) {
        W.stateLoads += 1;
        if (!answer) drawState(state, withFeed); // an early answer was drawn when it came
        firstData("state");
      })
      .finally(function () {
        refreshing = false;
        if (refreshAgain) { refreshAgain = false; scheduleRefresh(); }
      });
  }
  // The first numbers are asked for at once and drawn when they come, while the stream
  // connects (a websocket handshake and a subscribe, serialised with the panels' by the
  // browser: 0.1-0.4 s here). The stream's first resync takes them if they count every
  // event up to its seq (state.json says up to which one it counts: `seq`), else asks again.
  var early = fetchState().then(function (state) { drawState(state, true); return state; });
  early.catch(function (err) { console.warn("wall: first numbers not loaded", err); }); // the resync asks again
  function feedResync(seq) {
    W.feedResyncs += 1;
    var first = early;
    early = null;
    if (first === null) return loadState(true);
    return first.then(
      function (state) { return typeof seq === "number" && state.seq >= seq ? loadState(true, Promise.resolve(state)) : loadState(true); },
      function () { return loadState(true); }
    );
  }

  function renderKpis(k) {
    W.kpis = k;
    document.querySelectorAll("[data-kpi]").forEach(function (node) {
      var value = node.dataset.kpi.split(".").reduce(function (o, key) { return o == null ? null : o[key]; }, k);
      var raw = value == null ? "" : String(value);
      if (node.dataset.value === raw) return;
      var first = node.dataset.value === undefined; // the page's first numbers: nothing changed, no flash
      node.dataset.value = raw;
      if (value == null) node.textContent = "–";
      else if (node.dataset.format === "duration") node.textContent = fmt(S.minutes, { n: Math.round(value / 60) });
      else node.textContent = raw;
      // flash (Web Animations: no class toggling, no forced layout of the whole wall): the opacity
      // of a layer behind the number (wall.css), run by the compositor, not a repainted colour
      // (the previous flash of the same number is cancelled first: two animations of one
      // layer's opacity cannot both run on the compositor, and the main thread then drew every
      // frame for as long as numbers kept changing, i.e. always while reports came in)
      if (first) return;
      if (node._gcFlash) node._gcFlash.cancel();
      // in 2 steps, not a frame-by-frame fade: without a GPU every frame of a running
      // animation is composited in software (wall.css); on the wall's one clock (stepped)
      node._gcFlash = stepped(node, [{ opacity: 0.45 }, { opacity: 0 }], { duration: 1000, easing: "steps(2, end)", pseudoElement: "::after" });
    });
    var teams = $("#kpi-teams");
    var sig = JSON.stringify(k.open_by_team);
    if (teams.dataset.value === sig) return;
    teams.dataset.value = sig;
    var items = Object.keys(k.open_by_team).sort(function (a, b) { return k.open_by_team[b] - k.open_by_team[a]; })
      .slice(0, 5).map(function (team) {
        var name = team === "none" ? S.unassigned : R.teams[team] || "#" + team;
        return el("li", { "data-team": team }, [el("span", { text: name }), el("b", { text: String(k.open_by_team[team]) })]);
      });
    teams.replaceChildren.apply(teams, items);
  }

  // --- charts (Apache ECharts, vendored) -------------------------------------------------------
  var charts = {};
  function chart(id) {
    var node = document.getElementById(id);
    if (!node || !window.echarts) return null;
    if (!charts[id]) charts[id] = window.echarts.init(node, "dark", { renderer: "canvas" });
    return charts[id];
  }
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].resize(); });
  });
  var AXIS = { axisLabel: { color: "#b8c7d9" } };
  // Charts are drawn when the page is idle (an event's feed row and markers go first), only
  // the latest numbers, and only the charts whose numbers changed.
  var chartsWaiting = null, chartsBusy = false, drawn = {};
  var whenIdle = window.requestIdleCallback
    ? function (fn) { window.requestIdleCallback(fn, { timeout: 1500 }); }
    : function (fn) { setTimeout(fn, 50); };
  var CHARTS_MIN_MS = 10000, chartsAt = 0;
  function scheduleCharts(t) {
    W.trends = t;
    chartsWaiting = t;
    if (chartsBusy) return;
    chartsBusy = true;
    // trends move slowly: at most one drawing every CHARTS_MIN_MS, when the page is idle
    setTimeout(function () {
      var next = chartsWaiting;
      chartsWaiting = null;
      chartsAt = Date.now();
      drawCharts(next, 0);
    }, Math.max(0, CHARTS_MIN_MS - (Date.now() - chartsAt)));
  }
  // One chart per idle callback: a drawing takes 30-50 ms here (more under load), and an event
  // that arrives meanwhile waits for one chart, not for three (one callback for all three was a
  // 100-130 ms task every 3 s while reports came in).
  function drawCharts(t, i) {
    if (i >= CHART_DRAWS.length) {
      chartsBusy = false;
      if (chartsWaiting !== null) scheduleCharts(chartsWaiting);
      return;
    }
    whenIdle(function () {
      try { CHART_DRAWS[i](t); } catch (err) { console.error("wall: chart", err); }
      drawCharts(t, i + 1);
    });
  }
  function changed(id, data) {
    var sig = JSON.stringify(data);
    if (drawn[id] === sig) return false;
    drawn[id] = sig;
    return true;
  }
  function drawHourly(t) {
    var hourly = chart("chart-hourly");
    if (hourly && changed("hourly", [t.hours, t.per_category])) {
      var hours = t.hours.map(function (iso) { return new Date(iso).getHours() + ":00"; });
      var series = Object.keys(t.per_category).map(function (cat) {
        // by id: a series that stays is updated in place (its bars diffed), not rebuilt
        return { id: "c" + cat, name: category(cat).name, type: "bar", stack: "all", data: t.per_category[cat] };
      });
      hourly.setOption({
        animation: false, backgroundColor: "transparent", title: { text: S.per_hour, textStyle: { fontSize: 14 } },
        tooltip: { trigger: "axis" }, legend: { type: "scroll", top: 22, textStyle: { fontSize: 10 } },
        grid: { top: 50, left: 36, right: 10, bottom: 22 },
        xAxis: Object.assign({ type: "category", data: hours }, AXIS), yAxis: Object.assign({ type: "value", minInterval: 1 }, AXIS),
        series: series,
      }, { replaceMerge: ["series"] });
    }
  }
  function drawSla(t) {
    var sla = chart("chart-sla");
    if (sla && changed("sla", t.sla_by_team)) {
      var teams = Object.keys(t.sla_by_team);
      sla.setOption({
        animation: false, backgroundColor: "transparent", title: { text: S.sla_by_team, textStyle: { fontSize: 14 } },
        tooltip: {}, grid: { top: 30, left: 110, right: 20, bottom: 20 },
        xAxis: Object.assign({ type: "value", max: 100, axisLabel: { formatter: "{value}%", color: "#b8c7d9" } }),
        yAxis: Object.assign({ type: "category", data: teams.map(function (x) { return x === "none" ? S.unassigned : R.teams[x] || x; }) }, AXIS),
        series: [{ id: "sla", type: "bar", data: teams.map(function (x) {
          var v = t.sla_by_team[x];
          var pct = v.due ? Math.round((1000 * v.met) / v.due) / 10 : 100;
          return { value: pct, itemStyle: { color: pct >= 90 ? "#3ddc84" : pct >= 70 ? "#ffb300" : "#ff5252" } };
        }), label: { show: true, position: "right", formatter: "{c}%" } }],
      }, { replaceMerge: ["series"] });
    }
  }
  function drawCells(t) {
    var cells = chart("chart-cells");
    if (cells && changed("cells", t.cell_load)) {
      var ids = Object.keys(t.cell_load).sort(function (a, b) { return t.cell_load[b] - t.cell_load[a]; }).slice(0, 12);
      cells.setOption({
        animation: false, backgroundColor: "transparent", title: { text: S.load_by_cell, textStyle: { fontSize: 14 } },
        tooltip: {}, grid: { top: 30, left: 36, right: 10, bottom: 22 },
        xAxis: Object.assign({ type: "category", data: ids.map(function (id) { return R.cells[id] || "#" + id; }) }, AXIS),
        yAxis: Object.assign({ type: "value", minInterval: 1 }, AXIS),
        series: [{ id: "cells", type: "bar", data: ids.map(function (id) { return t.cell_load[id]; }), itemStyle: { color: "#ff7043" } }],
      }, { replaceMerge: ["series"] });
    }
  }

  var CHART_DRAWS = [drawHourly, drawSla, drawCells];

  // --- grid cells shaded by open-incident load -------------------------------------------------
  // Drawn as GeoJSON (a view of a few thousand cells at most) or as vector tiles (more): both are
  // shaded, when they load and whenever the numbers change; tiles only where a cell's load changed.
  var cellLoad = null, cellShaded = {};
  function cellStyle(n, max) {
    var share = n / max;
    return { fillColor: n ? "hsl(" + Math.round(50 - 50 * share) + ",90%,50%)" : "#3d8bfd", fillOpacity: n ? 0.1 + 0.3 * share : 0.04 };
  }
  function shadeCells(load) {
    if (load) cellLoad = load;
    var entry = loader && loader.get("cells");
    if (!cellLoad || !entry || !entry.layer) return;
    var max = 1;
    Object.keys(cellLoad).forEach(function (id) { max = Math.max(max, cellLoad[id]); });
    if (entry.mode === "tiles") {
      var base = entry.spec.tile_options.vectorTileLayerStyles.cells, next = {};
      Object.keys(cellLoad).forEach(function (id) { if (cellLoad[id]) next[id] = cellLoad[id] + "/" + max; });
      Object.keys(Object.assign({}, cellShaded, next)).forEach(function (id) {
        if (cellShaded[id] === next[id]) return;
        if (next[id]) entry.layer.setFeatureStyle(Number(id), Object.assign({}, base, cellStyle(cellLoad[id], max)));
        else entry.layer.resetFeatureStyle(Number(id));
      });
      cellShaded = next;
      return;
    }
    entry.layer.eachLayer(function (l) {
      var p = (l.feature && l.feature.properties) || {};
      if (p.level === "big") return;
      var n = cellLoad[String(p.id)] || 0, shade = n ? n + "/" + max : "0";
      if (l._gcShade === shade) return; // restyle only the cells whose share changed
      l._gcShade = shade;
      l.setStyle(cellStyle(n, max));
      if (l.getElement && l.getElement()) l.getElement().dataset.load = String(n);
    });
  }
  if (loader) loader.onLoad("cells", function () { cellShaded = {}; shadeCells(null); });

  // --- the feed ---------------------------------------------------------------------------------
  var feedList = $("#feed");
  function feedRow(inc, fresh) {
    var cat = category(inc.category_id);
    var li = el("li", { "data-incident-id": String(inc.id), class: "status-" + inc.status }, [
      el("span", { class: "when", text: timeOf(inc.opened_at) }),
      el("span", { class: "what", text: "#" + inc.id + " " + cat.name + (inc.grid_cell_id ? " · " + (R.cells[String(inc.grid_cell_id)] || "") : "") }),
      el("span", { class: "badge p" + inc.priority, text: statusLabel(inc.status) }),
    ]);
    if (!OPEN[inc.status]) li.classList.add("closed-like");
    if (inc.overdue) li.classList.add("overdue");
    li.addEventListener("click", function () { openDrawer(inc.id); });
    return li;
  }
  // the feed's rows by incident id: a selector per id (querySelector('[data-incident-id="…"]'))
  // filled Blink's selector cache with one entry per incident the wall ever showed (to its cap)
  var feedNodes = new Map();
  function renderFeed(rows) {
    W.feed = rows.slice(0, FEED_SIZE);
    feedNodes.clear();
    feedList.replaceChildren.apply(feedList, W.feed.map(function (r) {
      var li = feedRow(r, false);
      feedNodes.set(Number(r.id), li);
      return li;
    }));
  }
  function feedUpsert(props, kind, geometry) {
    var id = Number(props.id);
    var idx = -1;
    for (var i = 0; i < W.feed.length; i++) if (W.feed[i].id === id) { idx = i; break; }
    var row = {
      id: id, category_id: props.category_id, status: props.status, priority: props.priority,
      grid_cell_id: props.grid_cell_id, team_id: props.team_id, worker_id: props.worker_id,
      opened_at: props.opened_at, due_at: props.due_at, overdue: kind === "incident.overdue" || (idx >= 0 && W.feed[idx].overdue && isOpen(props)),
      location: geometry ? geometry.coordinates : null,
    };
    var node = feedNodes.get(id);
    if (idx >= 0) {
      W.feed[idx] = row;
      if (node) {
        var next = feedRow(row, false);
        node.replaceWith(next);
        feedNodes.set(id, next);
      }
      return;
    }
    if (kind !== "incident.created") return; // an older incident not in the feed: stays out of it
    W.feed.unshift(row);
    var li = feedRow(row, true);
    feedList.insertBefore(li, feedList.firstChild);
    feedNodes.set(id, li);
    // a new row is highlighted, fading in 4 steps (stepped: on the wall's clock); the highlight's
    // layer goes when it has faded: kept, every row the feed ever flashed stayed a composited
    // layer (up to 50), all of them in every frame's layer work
    li.classList.add("fresh");
    var glow = stepped(li, [{ opacity: 1 }, { opacity: 0 }], { duration: 3000, easing: "steps(4, end)", pseudoElement: "::before" });
    if (glow) glow.onfinish = function () { li.classList.remove("fresh"); };
    else li.classList.remove("fresh");
    while (W.feed.length > FEED_SIZE) {
      var gone = W.feed.pop();
      var old = feedNodes.get(gone.id);
      if (old) old.remove();
      feedNodes.delete(gone.id);
    }
  }

  // --- alarms: banner + sound until acknowledged (on any wall) ---------------------------------
  var audio = $("#alarm-sound");
  audio.src = cfg.alarm_sound;
  var soundWanted = localStorage.getItem("gc.wall.sound") !== "off";
  var soundBlocked = false;
  var alarmsShown = false;
  function renderAlarms() {
    alarmsShown = true;
    var ids = Object.keys(W.alarms).sort(function (a, b) { return Number(b) - Number(a); });
    var list = $("#alarm-list");
    list.replaceChildren.apply(list, ids.map(function (id) {
      var a = W.alarms[id];
      return el("li", { "data-alarm-id": id }, [
        el("a", { href: "#", text: "⚠ #" + id + " " + category(a.category_id).name + (a.grid_cell_id ? " · " + (R.cells[String(a.grid_cell_id)] || "") : ""),
          onclick: function (ev) { ev.preventDefault(); openDrawer(Number(id)); } }),
        el("span", { text: timeOf(a.opened_at) }),
        el("button", { type: "button", class: "wall-button", text: S.acknowledge, "data-ack": id, onclick: function () { acknowledge(Number(id)); } }),
      ]);
    }));
    $("#alarms").hidden = ids.length === 0;
    emit("alarms", W.alarms);
    sound(ids.length > 0);
  }
  function sound(on) {
    var src = (W.alarmSound && W.alarmSound()) || cfg.alarm_sound;
    if (audio.getAttribute("src") !== src) audio.src = src;
    if (on && soundWanted) {
      var p = audio.play();
      if (p && p.catch) p.then(function () { soundBlocked = false; renderSoundButton(); }, function () { soundBlocked = true; renderSoundButton(); });
    } else {
      audio.pause();
    }
    renderSoundButton();
  }
  function renderSoundButton() {
    var b = $("#sound");
    b.textContent = soundWanted && !soundBlocked ? S.sound_on : S.sound_off;
  }
  $("#sound").addEventListener("click", function () {
    soundWanted = !(soundWanted && !soundBlocked);
    soundBlocked = false;
    localStorage.setItem("gc.wall.sound", soundWanted ? "on" : "off");
    sound(Object.keys(W.alarms).length > 0);
  });
  function setAlarms(rows) {
    var before = Object.keys(W.alarms).sort().join(",");
    W.alarms = {};
    rows.forEach(function (r) { W.alarms[String(r.id)] = r; });
    if (Object.keys(W.alarms).sort().join(",") !== before || !alarmsShown) renderAlarms(); // the banner only when it changes
  }
  function acknowledge(id) {
    return post("/api/v1/incidents/" + id + "/acknowledge/", {}).then(function (res) {
      if (res.ok || res.status === 409) { delete W.alarms[String(id)]; renderAlarms(); }
      return res;
    });
  }

  // --- map: open incidents clustered, coloured by status, sized by priority --------------------
  function markerStyle(p) {
    return {
      radius: (PRIORITY_RADIUS[p.priority] || 6) * SCALE, color: p.priority === 1 ? "#ffffff" : "#0b1220", weight: p.priority === 1 ? 3 : 1,
      fillColor: STATUS_COLOURS[p.status] || "#ff5252", fillOpacity: 0.9,
    };
  }
  if (cluster) {
    cluster.options.iconCreateFunction = function (c) {
      var worst = 4, urgent = "on_scene", order = ["new", "dispatched", "accepted", "on_scene"];
      c.getAllChildMarkers().forEach(function (m) {
        var p = (m.feature && m.feature.properties) || {};
        worst = Math.min(worst, p.priority || 4);
        if (order.indexOf(p.status) >= 0 && order.indexOf(p.status) < order.indexOf(urgent)) urgent = p.status;
      });
      var n = c.getChildCount(), size = Math.round((n < 10 ? 34 : n < 100 ? 42 : 52) * SCALE);
      var bg = { 1: "#c62828", 2: "#ef6c00", 3: "#1565c0", 4: "#455a64" }[worst];
      return L.divIcon({
        html: '<div class="gc-cluster" style="width:' + size + "px;height:" + size + "px;background:" + bg +
          ";border-color:" + STATUS_COLOURS[urgent] + '">' + n + "</div>",
        className: "gc-cluster-icon", iconSize: [size, size],
      });
    };
  }
  function latLngOf(geometry) {
    var c = shift(geometry.coordinates[0], geometry.coordinates[1]);
    return [c[1], c[0]];
  }
  // A new incident pulses, a resolved one fades: HTML rings animated by transform and opacity
  // only (run by the compositor), not SVG paths whose animation repainted the whole map's
  // overlay (all cells and cones) on every frame. In steps, on the wall's clock (stepped): a
  // pulse 8 a second, 4 times; a fade in 4 steps over 4 s. A ring is removed when its animation
  // has finished (rings that finish on the same step go in the same frame), or after a while if
  // the animation never ran (a hidden page).
  var RINGS = {
    "gc-pulse": { keyframes: [{ transform: "scale(1)", opacity: 1 }, { transform: "scale(4)", opacity: 0 }],
      timing: { duration: 1000, easing: "steps(8, end)", iterations: 4 } },
    "gc-fade": { keyframes: [{ opacity: 0.9 }, { opacity: 0 }], timing: { duration: 4000, easing: "steps(4, end)", fill: "both" } },
  };
  function transient(latlng, colour, radius, className) {
    var ring = document.createElement("div");
    ring.className = "gc-ring " + className;
    ring.style.borderColor = colour;
    ring.style.background = className === "gc-fade" ? colour : "transparent";
    var size = Math.round(2 * radius);
    var m = L.marker(latlng, {
      icon: L.divIcon({ html: ring, className: "gc-transient", iconSize: [size, size] }), interactive: false, keyboard: false,
    }).addTo(map);
    var gone = false;
    var remove = function () { if (!gone) { gone = true; map.removeLayer(m); } };
    var how = RINGS[className];
    var anim = stepped(ring, how.keyframes, how.timing);
    if (anim) anim.onfinish = remove;
    setTimeout(remove, 4000 + 2 * STEP_MS + (anim ? 5000 : 0));
    return m;
  }
  function placeIncident(id, geometry, props, live, batch) {
    var key = String(id);
    var marker = W.markers[key];
    if (!geometry || !isOpen(props)) {
      if (marker) {
        cluster.removeLayer(marker);
        delete W.markers[key];
        if (live) {
          // resolved (or closed, cancelled): fades out where it was
          transient(marker.getLatLng(), "#9aa5b1", markerStyle(marker.feature.properties).radius, "gc-fade");
        }
      }
      return;
    }
    var latlng = latLngOf(geometry);
    if (marker) {
      marker.feature.properties = props;
      marker.setLatLng(latlng);
      marker.setStyle(markerStyle(props));
      cluster.refreshClusters([marker]); // an array: markercluster takes only L.Marker alone, not a circle marker
      return;
    }
    marker = L.circleMarker(latlng, Object.assign({ pane: LIVE_PANE }, markerStyle(props)));
    marker.feature = { id: key, properties: props };
    marker.on("click", function () { openDrawer(Number(key)); });
    W.markers[key] = marker;
    if (batch) batch.push(marker);
    else cluster.addLayer(marker);
    if (live) { var st = markerStyle(props); transient(latlng, st.fillColor, st.radius, "gc-pulse"); } // pulses as it commits
  }

  var workerGroup = map ? L.featureGroup().addTo(map) : null;
  function placeWorker(id, geometry, props) {
    var key = String(id);
    var m = W.workers[key];
    if (!geometry || !props || props.on_duty === false) {
      if (m) { workerGroup.removeLayer(m); delete W.workers[key]; }
      return;
    }
    var latlng = latLngOf(geometry);
    if (m) { m.setLatLng(latlng); m.feature.properties = props; return; }
    m = L.circleMarker(latlng, { pane: LIVE_PANE, radius: 6 * SCALE, color: "#ffffff", weight: 2, fillColor: "#66bb6a", fillOpacity: 1, className: "gc-worker" });
    m.feature = { id: key, properties: props };
    m.bindTooltip(function () {
      var p = m.feature.properties;
      return (p.display_name || "#" + key) + " · " + (R.teams[String(p.team_id)] || "");
    });
    W.workers[key] = m;
    workerGroup.addLayer(m);
  }

  function viewBbox() { return loader.viewBbox(map, 0.2); }
  function geojson(layer, query) {
    // a snapshot and the event seq it counts up to (X-Event-Seq: read before the features)
    return fetch("/maps/layers/" + layer + ".geojson?" + query, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(layer + " snapshot: HTTP " + r.status);
      var seq = Number(r.headers.get("X-Event-Seq"));
      return r.json().then(function (fc) { return { fc: fc, seq: isNaN(seq) ? -1 : seq }; });
    });
  }
  function bboxParam() { return viewBbox().map(function (v) { return v.toFixed(6); }).join(","); }
  function fetchMap() {
    var bbox = bboxParam();
    mapViewParam = bbox;
    mapView = bbox.split(",").map(Number); // what the events are kept to from now on (mapEvent)
    return Promise.all([
      geojson("incidents", "status=" + cfg.open_statuses.join(",") + "&limit=5000&bbox=" + bbox),
      geojson("workers", "limit=5000&bbox=" + bbox).catch(function () { return { fc: { features: [] }, seq: Infinity }; }),
    ]).then(function (res) {
      return { bbox: bbox, seq: Math.min(res[0].seq, res[1].seq), incidents: res[0].fc, workers: res[1].fc };
    });
  }
  function drawMap(snap) {
    cluster.clearLayers();
    W.markers = {};
    var batch = [];
    (snap.incidents.features || []).forEach(function (f) { placeIncident(f.id, f.geometry, f.properties, false, batch); });
    cluster.addLayers(batch); // one re-clustering, not one per marker
    workerGroup.clearLayers();
    W.workers = {};
    (snap.workers.features || []).forEach(function (f) { placeWorker(f.id, f.geometry, f.properties); });
  }
  // The map has no stream of its own: it takes the incidents and workers of the wall's one
  // stream (the feed's, the whole district) that are in its view (mapView, the bbox of its last
  // snapshot), in their message's own task, so an incident's marker and its feed row go into
  // the same frame. (A second stream, the view's bbox, had the server send each event to the
  // page twice, and its copy came up to 20 ms after the feed's, often a frame later.)
  //
  // Snapshots: like the numbers, the first one is asked for at once (earlyMap, below) and drawn
  // when it comes; the stream's first resync takes it if it counts every event up to the
  // resync's seq and the view has not moved, else asks again. When the view moves, the map asks
  // for the new view's snapshot; the events that come meanwhile wait (mapHeld) and are applied
  // after it, but those it already counts (its X-Event-Seq) are dropped.
  var earlyMap = null, mapView = null, mapViewParam = null, mapHeld = null, mapGeneration = 0;
  function mapSnapshot(seq) {
    W.mapResyncs += 1;
    var mine = ++mapGeneration;
    var loaded = function (snap, drawn) {
      if (mine !== mapGeneration) return; // a newer snapshot (the view moved again) took over
      if (!drawn) drawMap(snap);
      W.mapLoaded = true;
      firstData("map");
      mapRelease(snap.seq);
    };
    var fresh = function () { return fetchMap().then(function (snap) { loaded(snap, false); }); };
    var first = earlyMap;
    earlyMap = null;
    var done = first === null ? fresh() : first.then(function (snap) {
      return typeof seq === "number" && snap.seq >= seq && snap.bbox === bboxParam() ? loaded(snap, true) : fresh();
    }, fresh);
    return done.catch(function (err) {
      if (mine === mapGeneration) mapRelease(-Infinity); // the markers as they were, kept up to date
      throw err;
    });
  }
  function mapViewMoved() {
    if (mapHeld === null) mapHeld = [];
    mapSnapshot().catch(function (err) { console.warn("wall: map snapshot not loaded", err); }); // the next move retries
  }
  function mapRelease(snapSeq) {
    var events = mapHeld || [];
    mapHeld = null;
    events.forEach(function (ev) { if (!(ev.seq <= snapSeq)) applyMapEvent(ev); });
  }
  function inView(geometry) {
    if (!mapView || !geometry || geometry.type !== "Point") return true;
    var c = geometry.coordinates;
    return c[0] >= mapView[0] && c[0] <= mapView[2] && c[1] >= mapView[1] && c[1] <= mapView[3];
  }
  function mapEvent(ev) {
    if (ev.layer !== "incidents" && ev.layer !== "workers") return;
    if (mapHeld !== null) mapHeld.push(ev);
    else applyMapEvent(ev);
  }
  function applyMapEvent(ev) {
    if (ev.kind === "layer.reloaded") { mapViewMoved(); return; }
    if (!ev.payload) return;
    var gone = ev.kind === "record.deleted";
    var away = !gone && !inView(ev.payload.geometry); // out of the view: not on this map
    if (ev.layer === "incidents") {
      if (gone || away) placeIncident(ev.object_id, null, null, gone);
      else placeIncident(ev.object_id, ev.payload.geometry, ev.payload.properties, ev.kind === "incident.created" || ev.kind === "incident.updated");
    } else if (ev.layer === "workers") {
      if (gone || away) placeWorker(ev.object_id, null, null);
      else placeWorker(ev.object_id, ev.payload.geometry, ev.payload.properties);
    }
  }

  // --- the stream's events: feed rows, alarms, and "ask for the numbers again" -----------------
  function feedEvent(ev) {
    emit("event", ev);
    if (ev.layer === "incidents" && ev.payload && ev.kind !== "record.deleted" && ev.kind !== "layer.reloaded") {
      var p = Object.assign({}, ev.payload.properties, { id: Number(ev.object_id) });
      feedUpsert(p, ev.kind, ev.payload.geometry);
      var key = String(p.id);
      if (ev.kind === "alarm.acknowledged" || !isOpen(p) || p.priority !== cfg.alarm_priority) {
        if (W.alarms[key]) { delete W.alarms[key]; renderAlarms(); }
      } else if (ev.kind === "incident.created" && !W.alarms[key]) {
        W.alarms[key] = p;
        renderAlarms();
      }
      if (W.drawer === p.id) refreshDrawer();
    }
    scheduleRefresh();
    if (cfg.mode === "desk") scheduleDesk();
  }

  // --- the incident drawer -----------------------------------------------------------------------
  function csrf() { return cfg.csrf_token; }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body || {}),
    });
  }
  function act(url, body) {
    var msg = $("#drawer-message");
    return post(url, body).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (msg) msg.textContent = r.ok ? S.done : fmt(S.error, { detail: data.detail || JSON.stringify(data) });
        if (r.ok) refreshDrawer();
        return r;
      });
    });
  }
  var drawerTimer = null;
  function refreshDrawer() {
    if (W.drawer === null || drawerTimer !== null) return;
    drawerTimer = setTimeout(function () { drawerTimer = null; if (W.drawer !== null) openDrawer(W.drawer, true); }, 300);
  }
  function openDrawer(id, keepMessage) {
    W.drawer = id;
    var drawer = $("#drawer");
    drawer.hidden = false;
    drawer.dataset.incidentId = String(id);
    return fetch("/control/api/incidents/" + id + ".json", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        if (W.drawer !== id) return;
        var message = keepMessage && $("#drawer-message") ? $("#drawer-message").textContent : "";
        renderDrawer(d, message);
      })
      .catch(function (err) { $("#drawer-body").replaceChildren(el("p", { text: String(err) })); });
  }
  $("#drawer-close").addEventListener("click", function () { W.drawer = null; $("#drawer").hidden = true; });
  $("#lightbox").addEventListener("click", function () { $("#lightbox").hidden = true; $("#lightbox-img").removeAttribute("src"); });
  function showPhoto(url) { $("#lightbox-img").src = url; $("#lightbox").hidden = false; }

  function renderDrawer(d, message) {
    var inc = d.incident, cat = category(inc.category_id), base = "/api/v1/incidents/" + inc.id + "/";
    var body = [];
    body.push(el("h3", { text: "#" + inc.id + " " + cat.name }));
    body.push(el("p", { class: "facts", text: [
      statusLabel(inc.status), S.priority + " " + inc.priority,
      inc.grid_cell_id ? R.cells[String(inc.grid_cell_id)] || "" : "",
      inc.team_id ? R.teams[String(inc.team_id)] || "" : S.unassigned,
      S.opened + " " + timeOf(inc.opened_at), S.due + " " + timeOf(inc.due_at) + (inc.overdue ? " · " + S.overdue : ""),
    ].filter(Boolean).join(" · ") }));
    if (inc.note) body.push(el("p", { text: inc.note }));
    body.push(el("div", { class: "message", id: "drawer-message", text: message || "" }));
    var actions = [];
    if (inc.alarm) actions.push(el("button", { type: "button", class: "wall-button danger", text: S.acknowledge, "data-action": "acknowledge",
      onclick: function () { acknowledge(inc.id).then(function () { refreshDrawer(); }); } }));
    if (cfg.can_dispatch && OPEN[inc.status]) {
      var prio = el("select", { "data-field": "priority" }, [1, 2, 3, 4].map(function (n) {
        var o = el("option", { value: String(n), text: S.priority + " " + n }); if (n === inc.priority) o.selected = true; return o;
      }));
      actions.push(prio, el("button", { type: "button", class: "wall-button", text: S.priority, "data-action": "priority",
        onclick: function () { act(base + "priority/", { priority: Number(prio.value) }); } }));
      var team = el("select", { "data-field": "team" }, Object.keys(R.teams).map(function (t) {
        var o = el("option", { value: t, text: R.teams[t] }); if (Number(t) === inc.team_id) o.selected = true; return o;
      }));
      actions.push(team, el("button", { type: "button", class: "wall-button", text: S.dispatch_team, "data-action": "dispatch-team",
        onclick: function () { act(base + "dispatch/", { team_id: Number(team.value) }); } }));
    }
    if (cfg.can_dispatch && (OPEN[inc.status] || inc.status === "resolved")) {
      var note = el("input", { type: "text", placeholder: S.close_note, "data-field": "close-note" });
      actions.push(note, el("button", { type: "button", class: "wall-button", text: S.close, "data-action": "close",
        onclick: function () { act(base + "close/", { note: note.value }); } }));
    }
    if (cfg.can_dispatch && OPEN[inc.status]) {
      var reason = el("input", { type: "text", placeholder: S.cancel_reason, "data-field": "cancel-reason" });
      actions.push(reason, el("button", { type: "button", class: "wall-button danger", text: S.cancel, "data-action": "cancel",
        onclick: function () { act(base + "cancel/", { reason: reason.value }); } }));
    }
    body.push(el("div", { class: "actions" }, actions));

    body.push(el("h4", { text: S.nearest_workers }));
    body.push(d.workers.length ? el("ul", { id: "drawer-workers" }, d.workers.map(function (w) {
      return el("li", { "data-worker-id": String(w.id) }, [
        el("span", { text: (w.display_name || S.masked) + " · " + (R.teams[String(w.team_id)] || "") }),
        el("span", { text: fmt(S.metres, { m: Math.round(w.distance_m) }) }),
        el("span", { text: fmt(S.load, { n: w.load }) }),
        cfg.can_dispatch && OPEN[inc.status] ? el("button", { type: "button", class: "wall-button", text: S.dispatch, "data-action": "dispatch",
          onclick: function () { act(base + "dispatch/", { worker_id: w.id }); } }) : null,
      ]);
    })) : el("p", { class: "facts", text: S.no_workers }));

    body.push(el("h4", { text: S.cameras }));
    body.push(d.cameras.length ? el("ul", { id: "drawer-cameras" }, d.cameras.map(function (c) {
      return el("li", { "data-camera-id": String(c.id) }, [
        el("span", { text: c.code + " " + c.name + " · " + fmt(S.metres, { m: Math.round(c.distance_m) }) + " · " + c.status }),
        c.snapshot_url ? el("a", { href: c.snapshot_url, target: "_blank", rel: "noopener", text: S.snapshot }) : null,
        c.stream_url ? el("a", { href: c.stream_url, target: "_blank", rel: "noopener", text: S.stream }) : null,
      ]);
    })) : el("p", { class: "facts", text: S.no_cameras }));

    body.push(el("h4", { text: S.reports + " (" + d.reports.length + ")" }));
    body.push(el("ul", { id: "drawer-reports" }, d.reports.map(function (r) {
      return el("li", { "data-report-id": String(r.id) }, [
        el("span", { text: timeOf(r.received_at) + " · " + (R.sources[r.source] || r.source) }),
        el("span", { text: r.note === null ? S.no_photo_rights : r.note }),
        el("div", { class: "thumbs" }, r.photos.map(function (ph) {
          return el("img", { src: ph.thumbnail_url, alt: "", "data-photo-id": String(ph.id), onclick: function () { showPhoto(ph.url); } });
        })),
      ]);
    })));

    body.push(el("h4", { text: S.timeline }));
    body.push(el("ul", { id: "drawer-timeline" }, d.timeline.map(function (t) {
      var what = t.action && S["action_" + t.action] ? S["action_" + t.action] : S["kind_" + t.kind] || t.kind;
      return el("li", {}, [el("span", { text: timeOf(t.at) }), el("span", { text: what + (t.status ? " → " + statusLabel(t.status) : "") })]);
    })));
    $("#drawer-body").replaceChildren.apply($("#drawer-body"), body);
    emit("drawer", d);
  }

  // --- desk mode: the list with filters -----------------------------------------------------------
  var deskTimer = null;
  function scheduleDesk() {
    if (deskTimer !== null) return;
    deskTimer = setTimeout(function () { deskTimer = null; loadDesk(); }, REFRESH_MIN_MS);
  }
  function loadDesk() {
    var form = $("#desk-filters");
    if (!form) return Promise.resolve();
    var q = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (v) q.set(k, v); });
    return fetch("/control/api/incidents.json?" + q.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var rows = (data.incidents || []).map(function (i) {
          var tr = el("tr", { "data-incident-id": String(i.id), class: "status-" + i.status }, [
            el("td", { text: String(i.id) }), el("td", { text: category(i.category_id).name }),
            el("td", { text: statusLabel(i.status) + (i.overdue ? " ⏰" : "") }),
            el("td", {}, [el("span", { class: "badge p" + i.priority, text: "P" + i.priority })]),
            el("td", { text: i.grid_cell_id ? R.cells[String(i.grid_cell_id)] || "" : "" }),
            el("td", { text: timeOf(i.opened_at) }),
          ]);
          tr.addEventListener("click", function () { openDrawer(i.id); });
          return tr;
        });
        $("#desk-rows").replaceChildren.apply($("#desk-rows"), rows);
        $("#desk-count").textContent = fmt(S.results, { n: rows.length });
      })
      .catch(function (err) { console.warn("wall: desk list not loaded", err); });
  }
  if ($("#desk-filters")) {
    $("#desk-filters").addEventListener("change", loadDesk);
    loadDesk();
  }

  // --- start ------------------------------------------------------------------------------------
  // The map's other layers (cells, buildings, cameras, ...) load once the wall's own first data
  // is in and painted: they do not hold up the numbers, the feed and the open incidents (started
  // in the same task, the buildings' tile grid alone kept that frame ~30 ms longer).
  var waitingFor = { state: true, map: !!(map && cluster) };
  function firstData(what) {
    delete waitingFor[what];
    if (Object.keys(waitingFor).length === 0) requestAnimationFrame(function () { setTimeout(later, 0); });
  }
  var laterDone = false;
  function later() {
    if (laterDone) return;
    laterDone = true;
    if (loader) loader.start();
    // Apache ECharts (1 MB) too: the charts are drawn once it is in
    var script = document.createElement("script");
    script.src = cfg.charts_script;
    script.onload = function () { if (W.trends) scheduleCharts(W.trends); };
    document.head.appendChild(script);
  }
  setTimeout(later, 5000); // the first data is slow to come: load them anyway
  renderSoundButton();
  if (map) {
    // fill the wall with the district: fractional zoom, fitted to its extent (the cells')
    map.options.zoomSnap = 0.25;
    if (hooks.bounds) map.fitBounds(hooks.bounds, { padding: [16, 16], animate: false });
  }
  if (map && cluster) {
    earlyMap = fetchMap().then(function (snap) { drawMap(snap); return snap; });
    earlyMap.catch(function (err) { console.warn("wall: first map snapshot not loaded", err); }); // the resync asks again
  }
  // One stream for the feed, the numbers and the map (mapEvent)
  var withMap = !!(map && cluster);
  W.live = window.GridLive.connect({
    layers: ["incidents", "reports", "workers"],
    onEvent: function (ev) {
      feedEvent(ev);
      if (withMap) mapEvent(ev);
    },
    onResync: function (seq) {
      return withMap ? Promise.all([feedResync(seq), mapSnapshot(seq)]) : feedResync(seq);
    },
    onStatus: onStatus,
  });
  if (withMap) {
    var moveTimer = null;
    map.on("moveend", function () {
      clearTimeout(moveTimer);
      moveTimer = setTimeout(function () {
        // a view that did not move (Leaflet says moveend after a resize of the same view, as the
        // page settles) keeps its snapshot: no reload of the same markers; before the stream's
        // first resync, that resync loads the view as it is then
        if (bboxParam() === mapViewParam || W.mapResyncs === 0) return;
        mapViewMoved();
      }, 400);
    });
  }
  W.el = el; W.fmt = fmt; W.timeOf = timeOf; // for the panels
  W.openDrawer = openDrawer;
  W.renderAlarms = renderAlarms;
  W.ready = true;
})();
