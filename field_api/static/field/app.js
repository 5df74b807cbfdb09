/* GridCommand field app.
 *
 * Reports (with their photos) are written to IndexedDB first and only then sent; each keeps
 * the UUID made when it was written, so every retry is the same report to the server
 * (POST /api/v1/reports/ is idempotent by client_id). States: queued -> sending -> delivered
 * (with the server's receipt), or rejected / conflict with the server's reason. Nothing is
 * removed from the phone before the server has confirmed it. Retries back off exponentially
 * (2 s ... 5 min, with jitter) and restart at once when the phone comes back online.
 */
"use strict";

(function () {
  const T = JSON.parse(document.getElementById("gc-strings").textContent);
  const fmt = (s, vars) => s.replace(/%\((\w+)\)s/g, (_, k) => String(vars[k]));
  const $ = (sel) => document.querySelector(sel);
  const TOKEN_KEY = "gc.field.token";
  const PINGS_KEY = "gc.field.pings";
  const NUDGE_M = 5;

  // --- IndexedDB outbox -----------------------------------------------------------------
  let dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open("gridcommand-field", 2);
        req.onupgradeneeded = (ev) => {
          if (ev.oldVersion < 1) {
            const store = req.result.createObjectStore("outbox", { keyPath: "client_id" });
            store.createIndex("created", "created");
          }
          // Door-to-door marks wait here like reports: one client id each, sent until confirmed.
          if (ev.oldVersion < 2) req.result.createObjectStore("marks", { keyPath: "client_id" });
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return dbPromise;
  }
  async function tx(mode, fn, name = "outbox") {
    const d = await db();
    return new Promise((resolve, reject) => {
      const t = d.transaction(name, mode);
      const store = t.objectStore(name);
      let result;
      Promise.resolve(fn(store)).then((r) => { result = r; });
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }
  const reqP = (req) => new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

  // --- auth -------------------------------------------------------------------------------
  const token = () => localStorage.getItem(TOKEN_KEY);
  function api(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (token()) headers.Authorization = "Token " + token();
    return fetch(path, Object.assign({}, options, { headers, credentials: "omit" }));
  }
  function showLogin() {
    $("#login").hidden = false;
    $("#app").hidden = true;
    $("#logout").hidden = true;
  }
  function showApp() {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = false;
  }
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    $("#login-error").textContent = "";
    try {
      const r = await fetch("/api/v1/auth/token/", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
      });
      const body = await r.json();
      if (!r.ok) throw new Error(body.detail || T.login_failed);
      localStorage.setItem(TOKEN_KEY, body.token);
      showApp();
      start();
    } catch (err) {
      $("#login-error").textContent = err.message || T.login_failed;
    }
  });
  $("#logout").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    showLogin();
  });

  // --- network state ----------------------------------------------------------------------
  function renderNet() {
    const el = $("#net");
    el.textContent = navigator.onLine ? T.online : T.offline;
    el.classList.toggle("offline", !navigator.onLine);
  }
  window.addEventListener("online", () => { renderNet(); reports.flush(true); marks.flush(true); flushPings(); });
  window.addEventListener("offline", renderNet);

  // --- position ---------------------------------------------------------------------------
  let fix = null; // {lon, lat, accuracy}
  let nudge = { east: 0, north: 0 };
  function pinned() {
    if (!fix) return null;
    const dLat = nudge.north / 110574;
    const dLon = nudge.east / (111320 * Math.cos((fix.lat * Math.PI) / 180));
    return { lon: +(fix.lon + dLon).toFixed(7), lat: +(fix.lat + dLat).toFixed(7), accuracy: fix.accuracy };
  }
  // The pin map (Leaflet from our own static files, when present): drag the pin or use arrows.
  let map = null;
  let marker = null;
  let circle = null;
  function renderMap(p) {
    if (!window.L || !p) return;
    const el = $("#pin-map");
    if (!map) {
      el.hidden = false;
      const base = JSON.parse(document.getElementById("gc-basemap").textContent);
      map = L.map(el, { attributionControl: !!base.attribution, zoomControl: false }).setView([p.lat, p.lon], 18);
      if (base.url) L.tileLayer(base.url, { attribution: base.attribution, maxZoom: 20 }).addTo(map);
      circle = L.circle([p.lat, p.lon], { radius: p.accuracy, weight: 1 }).addTo(map);
      marker = L.marker([p.lat, p.lon], { draggable: true }).addTo(map);
      marker.on("dragend", () => {
        const at = marker.getLatLng();
        nudge = {
          east: (at.lng - fix.lon) * 111320 * Math.cos((fix.lat * Math.PI) / 180),
          north: (at.lat - fix.lat) * 110574,
        };
        renderFix();
      });
    }
    marker.setLatLng([p.lat, p.lon]);
    circle.setLatLng([fix.lat, fix.lon]).setRadius(p.accuracy);
  }
  function renderFix() {
    const p = pinned();
    if (!$("#report-form").hidden) renderMap(p);
    $("#fix-text").textContent = p
      ? `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)} · ${fmt(T.accuracy, { m: Math.round(p.accuracy) })}`
      : T.no_fix;
  }
  if ("geolocation" in navigator) {
    navigator.geolocation.watchPosition(
      (pos) => {
        fix = { lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy };
        lastFix = pos;
        renderFix();
        recordPing(pos);
      },
      () => renderFix(),
      { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 }
    );
  }
  document.querySelectorAll("[data-nudge]").forEach((b) =>
    b.addEventListener("click", () => {
      const [e, n] = b.dataset.nudge.split(",").map(Number);
      nudge = { east: nudge.east + e * NUDGE_M, north: nudge.north + n * NUDGE_M };
      renderFix();
    })
  );

  // --- the report form --------------------------------------------------------------------
  $("#start-report").addEventListener("click", () => {
    $("#report-form").hidden = false;
    nudge = { east: 0, north: 0 };
    renderFix();
    if (map) map.invalidateSize();
  });
  $("#report-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = $("#form-error");
    err.textContent = "";
    const checked = document.querySelector("input[name=category]:checked");
    if (!checked) { err.textContent = T.pick_category; return; }
    const p = pinned();
    if (!p) { err.textContent = T.need_fix; return; }
    const files = Array.from($("#photos").files || []);
    if (files.length > 6) { err.textContent = T.too_many_photos; return; }
    const photos = [];
    for (const f of files) photos.push({ name: f.name, type: f.type, blob: new Blob([await f.arrayBuffer()], { type: f.type }) });
    const item = {
      client_id: crypto.randomUUID(),
      created: Date.now(),
      state: "queued",
      attempts: 0,
      next_try: 0,
      fields: {
        category: checked.value,
        longitude: p.lon,
        latitude: p.lat,
        accuracy: Math.round(p.accuracy * 10) / 10,
        note: $("#note").value.trim(),
        client_time: new Date().toISOString(),
      },
      category_label: checked.closest("label").textContent.trim(),
      photos,
      receipt: null,
      error: null,
    };
    await reports.put(item); // on the phone first; only then try to send
    ev.target.reset();
    ev.target.hidden = true;
    await renderOutbox();
    reports.flush(true);
  });

  // --- sending with backoff ---------------------------------------------------------------
  function backoff(attempts) {
    const base = Math.min(300000, 2000 * 2 ** Math.min(attempts, 8));
    return base / 2 + Math.random() * (base / 2);
  }
  async function sendOne(item) {
    if (!item.photos.length) {
      // Without photos, JSON: the server's lean path takes it (field_api/fast.py).
      const f = item.fields;
      const body = {
        client_id: item.client_id,
        category: f.category,
        location: { type: "Point", coordinates: [Number(f.longitude), Number(f.latitude)] },
        accuracy: f.accuracy,
        note: f.note,
        client_time: f.client_time,
      };
      return api("/api/v1/reports/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    }
    const form = new FormData();
    form.append("client_id", item.client_id);
    for (const [k, v] of Object.entries(item.fields)) form.append(k, String(v));
    item.photos.forEach((p, i) => form.append("photos", p.blob, p.name || `photo-${i + 1}.jpg`));
    return api("/api/v1/reports/", { method: "POST", body: form });
  }
  // One offline queue, for reports and for door-to-door marks and visits: each item is written
  // to its IndexedDB store first, then sent (send(item) -> the fetch Response) until the server
  // confirms it (delivered), refuses it for good (rejected / conflict, with the reason) or
  // answers nothing (queued again, with backoff). One send at a time per queue.
  function offlineQueue({ store, send, delivered = () => {}, render }) {
    const all = () => tx("readonly", (s) => reqP(s.getAll()), store);
    const put = (item) => tx("readwrite", (s) => reqP(s.put(item)), store);
    let flushing = false;
    let again = false;
    async function flush(force) {
      if (!token()) return;
      if (flushing) { again = again || force; return; }
      flushing = true;
      try {
        const items = (await all()).filter((i) => i.state === "queued" || i.state === "sending");
        items.sort((a, b) => a.created - b.created);
        for (const item of items) {
          if (!force && item.next_try > Date.now()) continue;
          item.state = "sending";
          await put(item);
          render();
          let response = null;
          try {
            response = await send(item);
          } catch (e) {
            response = null; // offline or the server unreachable
          }
          item.attempts += 1;
          if (response && (response.status === 200 || response.status === 201)) {
            await delivered(item, response); // e.g. keep the receipt
            item.state = "delivered";
            item.error = null;
          } else if (response && response.status === 409) {
            item.state = "conflict";
            item.error = (await response.json().catch(() => ({}))).detail || "409";
          } else if (response && response.status >= 400 && response.status < 500 && ![401, 403, 408, 429].includes(response.status)) {
            item.state = "rejected";
            const body = await response.json().catch(() => ({}));
            item.error = Object.entries(body).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ") || String(response.status);
          } else {
            item.state = "queued";
            item.next_try = Date.now() + backoff(item.attempts);
            if (response && response.status === 401) showLogin();
          }
          await put(item);
          render();
        }
      } finally {
        flushing = false;
        if (again) { again = false; flush(true); }
      }
    }
    setInterval(() => { if (navigator.onLine) flush(false); }, 3000);
    return { all, put, flush };
  }
  const reports = offlineQueue({
    store: "outbox",
    send: sendOne,
    delivered: async (item, response) => {
      const receipt = await response.json();
      item.receipt = { id: receipt.id, received_at: receipt.received_at, incident: receipt.incident.id };
      item.photos = []; // the server confirmed them; the receipt stays
    },
    render: () => renderOutbox(),
  });

  async function renderOutbox() {
    const items = (await reports.all()).sort((a, b) => b.created - a.created);
    const ul = $("#outbox");
    ul.replaceChildren(
      ...items.map((item) => {
        const li = document.createElement("li");
        li.dataset.clientId = item.client_id;
        li.dataset.state = item.state;
        const state = document.createElement("span");
        state.className = "state " + item.state;
        state.textContent = T[item.state] || item.state;
        const what = document.createElement("div");
        what.textContent = `${item.category_label} · ${new Date(item.created).toLocaleTimeString()}`;
        li.append(state, what);
        if (item.state === "queued" && item.next_try > Date.now()) {
          const s = document.createElement("small");
          s.textContent = fmt(T.retry_in, { s: Math.ceil((item.next_try - Date.now()) / 1000) });
          li.append(s);
        }
        if (item.receipt) {
          const r = document.createElement("small");
          r.className = "receipt";
          r.textContent = `${T.receipt} #${item.receipt.id} · ${item.receipt.received_at}`;
          li.append(r);
        }
        if (item.error) {
          const e = document.createElement("small");
          e.className = "error";
          e.textContent = item.error;
          li.append(e);
        }
        return li;
      })
    );
  }

  // --- tabs, assignments, duty, pings -----------------------------------------------------
  document.querySelectorAll("[data-tab]").forEach((b) =>
    b.addEventListener("click", () => {
      document.querySelectorAll("[data-tab]").forEach((x) => x.setAttribute("aria-selected", String(x === b)));
      document.querySelectorAll("section.tab").forEach((t) => { t.hidden = t.id !== "tab-" + b.dataset.tab; });
      if (b.dataset.tab === "assignments") loadAssignments();
      if (b.dataset.tab === "campaigns") loadCampaigns();
      if (b.dataset.tab === "households") loadHouseholds();
    })
  );
  $("#refresh").addEventListener("click", loadAssignments);

  let shownAssignments = null; // the list as last drawn: an unchanged answer leaves the DOM alone
  async function loadAssignments() {
    const p = pinned();
    const q = p ? `?longitude=${p.lon}&latitude=${p.lat}` : "";
    const ul = $("#assignments");
    let data;
    try {
      const r = await api("/api/v1/assignments/" + q);
      if (!r.ok) throw new Error(String(r.status));
      data = await r.json();
    } catch (e) {
      return;
    }
    // The live stream asks again on every change it hears of; redraw only what changed, so a
    // button under the worker's finger is not swapped for an identical one.
    const text = JSON.stringify(data.features);
    if (text === shownAssignments && ul.children.length) return;
    shownAssignments = text;
    if (!data.features.length) {
      const li = document.createElement("li");
      li.textContent = T.no_assignments;
      ul.replaceChildren(li);
      return;
    }
    ul.replaceChildren(...data.features.map(assignmentItem));
  }
  function assignmentItem(f) {
    const p = f.properties;
    const li = document.createElement("li");
    li.dataset.incidentId = f.id;
    const head = document.createElement("div");
    const dist = p.distance_m != null ? " · " + fmt(T.metres, { m: Math.round(p.distance_m) }) : "";
    head.textContent = `#${f.id} ${p.category_name} · ${T["status_" + p.status] || p.status}${dist}`;
    const due = document.createElement("small");
    due.textContent = `${T.due} ${new Date(p.due_at).toLocaleString()}`;
    const actions = document.createElement("div");
    actions.className = "actions";
    const add = (label, fn) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", fn);
      actions.append(b);
    };
    const act = async (step, body) => {
      const r = await api(`/api/v1/incidents/${f.id}/${step}/`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
      if (!r.ok) alert((await r.json().catch(() => ({}))).detail || r.status);
      loadAssignments();
    };
    if (p.status === "new" || p.status === "dispatched") add(T.accept, () => act("accept"));
    if (p.status === "accepted") add(T.arrive, () => act("arrive"));
    if (p.status === "accepted" || p.status === "on_scene") {
      add(T.resolve, () => { const note = prompt(T.resolution_note); if (note) act("resolve", { note }); });
      add(T.hand_back, () => { const reason = prompt(T.hand_back_reason); if (reason) act("hand-back", { reason }); });
    }
    li.append(head, due, actions);
    return li;
  }

  let onDuty = false;
  let lastPingAt = 0;
  let lastFix = null;
  $("#duty").addEventListener("change", async (ev) => {
    const r = await api("/api/v1/me/duty/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ on_duty: ev.target.checked }),
    }).catch(() => null);
    if (r && r.ok) onDuty = (await r.json()).on_duty;
    ev.target.checked = onDuty;
    if (onDuty && lastFix) { lastPingAt = 0; recordPing(lastFix); } // share the position at once
  });
  function recordPing(pos) {
    if (!onDuty || Date.now() - lastPingAt < 15000) return;
    lastPingAt = Date.now();
    const buf = JSON.parse(localStorage.getItem(PINGS_KEY) || "[]");
    buf.push({
      location: { type: "Point", coordinates: [pos.coords.longitude, pos.coords.latitude] },
      accuracy: pos.coords.accuracy,
      recorded_at: new Date(pos.timestamp || Date.now()).toISOString(),
    });
    localStorage.setItem(PINGS_KEY, JSON.stringify(buf.slice(-500)));
    flushPings(); // online: sent now (one request per ping interval); offline: kept for later
  }
  async function flushPings() {
    const buf = JSON.parse(localStorage.getItem(PINGS_KEY) || "[]");
    if (!buf.length || !token() || !navigator.onLine) return;
    const batch = buf.slice(0, 100);
    const r = await api("/api/v1/pings/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pings: batch }),
    }).catch(() => null);
    if (r && (r.ok || r.status === 400 || r.status === 409)) {
      const rest = JSON.parse(localStorage.getItem(PINGS_KEY) || "[]").slice(batch.length);
      localStorage.setItem(PINGS_KEY, JSON.stringify(rest));
    }
  }
  setInterval(flushPings, 30000);

  // --- door-to-door campaigns: my targets not covered yet, marks queued like reports -------
  let targets = [];
  async function loadCampaigns() {
    let data;
    try {
      const r = await api("/api/v1/campaigns/");
      if (!r.ok) throw new Error(String(r.status));
      data = await r.json();
    } catch (e) {
      return; // offline: keep what is shown
    }
    const select = $("#campaign");
    const active = data.results.filter((c) => c.status === "active");
    const keep = select.value;
    select.replaceChildren(...active.map((c) => {
      const o = document.createElement("option");
      o.value = c.id;
      o.textContent = `${c.name} · ${c.percent}%`;
      return o;
    }));
    if (!active.length) {
      $("#targets").replaceChildren(Object.assign(document.createElement("li"), { textContent: T.no_campaigns }));
      return;
    }
    if (keep && active.some((c) => String(c.id) === keep)) select.value = keep;
    loadTargets();
  }
  async function loadTargets() {
    const id = $("#campaign").value;
    if (!id) return;
    try {
      const r = await api(`/api/v1/campaigns/${id}/targets/?status=open`);
      if (!r.ok) throw new Error(String(r.status));
      targets = (await r.json()).results;
    } catch (e) {
      return;
    }
    renderTargets();
    loadTargetsMap(id);
  }
  // The map of my cells' buildings with targets not covered yet (the campaign's progress
  // GeoJSON, narrowed to my cells by the layer policy): a tap shows that building's targets only.
  let targetsMap = null;
  let targetsLayer = null;
  let targetsBuilding = null; // the building tapped on the map, or null: all
  async function loadTargetsMap(id) {
    if (!window.L) return;
    let fc;
    try {
      const r = await api(`/api/v1/campaigns/${id}/progress/`);
      if (!r.ok) throw new Error(String(r.status));
      fc = await r.json();
    } catch (e) {
      return; // offline: the list alone
    }
    const el = $("#targets-map");
    el.hidden = false;
    if (!targetsMap) {
      const base = JSON.parse(document.getElementById("gc-basemap").textContent);
      targetsMap = L.map(el, { attributionControl: !!base.attribution, zoomControl: false });
      if (base.url) L.tileLayer(base.url, { attribution: base.attribution, maxZoom: 20 }).addTo(targetsMap);
    }
    if (targetsLayer) targetsLayer.remove();
    const open = (f) => (f.properties.pending || 0) + (f.properties.absent || 0);
    const features = fc.features.filter((f) => open(f) > 0);
    targetsLayer = L.geoJSON({ type: "FeatureCollection", features }, {
      style: (f) => ({ className: "gc-open-building", color: "#c81e28", weight: 2, fillOpacity: 0.35 }),
      onEachFeature: (f, layer) => {
        layer.bindTooltip(fmt(T.building_open, { n: open(f) }));
        layer.on("click", () => { targetsBuilding = f.properties.building_id; renderTargets(); });
      },
    }).addTo(targetsMap);
    el.dataset.buildings = String(features.length);
    if (features.length) targetsMap.fitBounds(targetsLayer.getBounds(), { padding: [12, 12], maxZoom: 19 });
    else targetsMap.setView([0, 0], 1);
  }
  $("#targets-all").addEventListener("click", () => { targetsBuilding = null; renderTargets(); });
  async function renderTargets() {
    const queued = new Set((await marks.all()).filter((m) => m.kind !== "visit" && m.state !== "rejected").map((m) => m.fields.target));
    const ul = $("#targets");
    const open = targets.filter((t) => !queued.has(t.id));
    const shown = open.filter((t) => targetsBuilding == null || t.building_id === targetsBuilding);
    const here = $("#targets-building");
    here.hidden = targetsBuilding == null;
    if (targetsBuilding != null) here.querySelector("span").textContent = fmt(T.building_open, { n: shown.length });
    if (!shown.length) {
      ul.replaceChildren(Object.assign(document.createElement("li"), { textContent: T.no_targets }));
      return;
    }
    // per grid cell: a heading with the cell's count, then its targets
    const cells = new Map();
    for (const t of shown) {
      const key = t.grid_cell || "";
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(t);
    }
    ul.replaceChildren(...[...cells.entries()].flatMap(([cell, list]) => [
      Object.assign(document.createElement("li"), {
        className: "cell-head",
        textContent: fmt(T.cell_open, { cell: cell || "-", n: list.length }),
      }),
      ...list.map(targetItem),
    ]));
  }
  function targetItem(t) {
    const li = document.createElement("li");
    li.dataset.targetId = t.id;
    li.dataset.buildingId = t.building_id;
    const head = document.createElement("div");
    head.textContent = `${t.building_address} · ${t.label}` + (t.status === "absent" ? ` · ${T.absent}` : "");
    const actions = document.createElement("div");
    actions.className = "actions";
    for (const outcome of ["visited", "absent", "refused"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.outcome = outcome;
      b.textContent = T[outcome];
      b.addEventListener("click", () => markTarget(t, outcome));
      actions.append(b);
    }
    const look = document.createElement("button");
    look.type = "button";
    look.className = "lookup";
    look.textContent = T.lookup;
    look.addEventListener("click", () => openLookup(t.building_id));
    actions.append(look);
    li.append(head, actions);
    return li;
  }
  async function markTarget(t, outcome) {
    const item = {
      client_id: crypto.randomUUID(),
      created: Date.now(),
      state: "queued",
      attempts: 0,
      next_try: 0,
      fields: { target: t.id, outcome, marked_at: new Date().toISOString() },
      label: `${t.label} · ${T[outcome]}`,
      error: null,
    };
    await marks.put(item); // on the phone first; only then try to send
    await renderTargets();
    await renderMarks();
    marks.flush(true);
  }
  // A mark, or a household visit: the same queue (written on the phone first, sent until confirmed).
  const marks = offlineQueue({
    store: "marks",
    send: (item) => api(item.kind === "visit" ? `/api/v1/households/${item.household}/visits/` : "/api/v1/campaign-marks/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client_id: item.client_id, ...item.fields }),
    }),
    render: () => renderMarks(),
  });
  async function renderMarks() {
    const all = (await marks.all()).sort((a, b) => b.created - a.created);
    renderQueue("#marks", all.filter((i) => i.kind !== "visit").slice(0, 50));
    renderQueue("#visits", all.filter((i) => i.kind === "visit").slice(0, 50));
  }
  function renderQueue(selector, items) {
    $(selector).replaceChildren(...items.map((item) => {
      const li = document.createElement("li");
      li.dataset.clientId = item.client_id;
      li.dataset.state = item.state;
      const state = document.createElement("span");
      state.className = "state " + item.state;
      state.textContent = T[item.state] || item.state;
      const what = document.createElement("div");
      what.textContent = item.label;
      li.append(state, what);
      if (item.error) li.append(Object.assign(document.createElement("small"), { className: "error", textContent: item.error }));
      return li;
    }));
  }
  $("#campaign").addEventListener("change", loadTargets);
  $("#refresh-targets").addEventListener("click", loadCampaigns);

  // The look-up at the door: who lives here? Name or ID number, within one building, masked.
  let lookupBuilding = null;
  function openLookup(buildingId) {
    lookupBuilding = buildingId;
    $("#lookup").hidden = false;
    $("#lookup-results").replaceChildren();
    $("#lookup-q").focus();
  }
  $("#lookup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("#lookup-q").value.trim();
    if (!q || !lookupBuilding) return;
    const ul = $("#lookup-results");
    try {
      const r = await api(`/api/v1/buildings/${lookupBuilding}/residents/?q=${encodeURIComponent(q)}`);
      const body = await r.json();
      if (!r.ok) throw new Error(body.detail || Object.values(body).flat().join(" ") || String(r.status));
      ul.replaceChildren(...(body.results.length ? body.results : [null]).map((p) => {
        const li = document.createElement("li");
        li.textContent = p ? `${p.unit} · ${p.full_name} · ${p.id_number} · ${p.phone}` : T.nobody_found;
        return li;
      }));
    } catch (err) {
      ul.replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: err.message }));
    }
  });
  // --- assignments pushed: the live stream (realtime/live.js) with the app's token ------------
  // A dispatch to me (or to my team) commits an incident.updated event; the list reloads at
  // once instead of on the next refresh. The stream resumes after a drop, so none is missed.
  let live = null;
  let me = null;
  function pushedNotice(id) {
    const p = $("#pushed");
    p.textContent = fmt(T.new_assignment, { id });
    p.hidden = false;
  }
  function startLive() {
    if (live || !window.GridLive || !token() || !me || me.worker_id == null) return;
    live = window.GridLive.connect({
      token: token(),
      layers: ["incidents"],
      onResync: () => loadAssignments(),
      onEvent: (ev) => {
        if (ev.layer !== "incidents" || !ev.payload) return;
        const p = ev.payload.properties || {};
        const mine = p.worker_id === me.worker_id;
        if (mine && p.status === "dispatched") pushedNotice(ev.object_id);
        const toTeam = p.status === "dispatched" && p.worker_id == null; // maybe my team's
        if (mine || toTeam || document.querySelector(`#assignments [data-incident-id="${ev.object_id}"]`)) {
          loadAssignments();
        }
      },
      onStatus: (s) => { document.documentElement.dataset.live = s; },
    });
  }
  function stopLive() {
    if (live) live.close();
    live = null;
  }
  $("#logout").addEventListener("click", stopLive);

  // --- households of my grid cells: the list by vulnerable group, a household's visit --------
  let households = [];
  async function loadHouseholds() {
    const flag = $("#hh-filter").value;
    try {
      const r = await api("/api/v1/households/?limit=500" + (flag ? "&vulnerable=" + encodeURIComponent(flag) : ""));
      if (!r.ok) throw new Error(String(r.status));
      const body = await r.json();
      households = body.results;
      $("#hh-count").textContent = fmt(T.households_count, { n: body.count });
    } catch (e) {
      return;
    }
    $("#households").replaceChildren(...households.map((h) => {
      const li = document.createElement("li");
      li.dataset.householdId = h.id;
      const flags = (h.vulnerable || []).map((v) => T.vulnerable[v] || v).join("、");
      li.textContent = `#${h.building_id} · ${h.unit} · ${h.head_name || ""} · ${h.members}` + (flags ? ` · ${flags}` : "");
      li.addEventListener("click", () => openVisit(h));
      return li;
    }));
  }
  $("#hh-filter").addEventListener("change", loadHouseholds);
  let visiting = null;
  async function openVisit(h) {
    // the members' data comes unmasked for the purpose the worker states (logged by the server)
    const purpose = $("#hh-purpose").value.trim();
    if (purpose.length < 2) {
      $("#hh-count").textContent = T.purpose_needed;
      $("#hh-purpose").focus();
      return;
    }
    let panel;
    try {
      const r = await api(`/api/v1/buildings/${h.building_id}/households/?purpose=${encodeURIComponent(purpose)}`);
      if (!r.ok) throw new Error(String(r.status));
      panel = await r.json();
    } catch (e) {
      return;
    }
    const household = panel.households.find((x) => x.id === h.id);
    if (!household) return;
    visiting = household;
    $("#visit-title").textContent = fmt(T.visit_of, { unit: `${panel.building.address} ${household.unit}` });
    $("#visit-error").textContent = "";
    $("#visit-note").value = "";
    $("#visit-members").replaceChildren(...household.persons.map((p) => {
      const box = document.createElement("fieldset");
      box.dataset.personId = p.id;
      const legend = document.createElement("legend");
      legend.textContent = `${p.full_name} · ${T.relation[p.relation] || p.relation}`;
      const phone = Object.assign(document.createElement("input"), { name: "phone", value: p.phone || "", inputMode: "tel" });
      const label = document.createElement("label");
      label.append(T.phone, phone);
      box.append(legend, label);
      for (const [value, text] of Object.entries(T.vulnerable)) {
        const l = document.createElement("label");
        const c = Object.assign(document.createElement("input"), { type: "checkbox", name: "vulnerable", value });
        c.checked = (p.vulnerable || []).includes(value);
        l.append(c, " " + text);
        box.append(l);
      }
      return box;
    }));
    $("#visit-form").hidden = false;
    $("#visit-form").scrollIntoView();
  }
  $("#visit-cancel").addEventListener("click", () => { $("#visit-form").hidden = true; visiting = null; });
  $("#visit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!visiting) return;
    const changes = [];
    for (const p of visiting.persons) {
      const box = document.querySelector(`#visit-members fieldset[data-person-id="${p.id}"]`);
      const values = {};
      const phone = box.querySelector("input[name=phone]").value.trim();
      if (phone !== (p.phone || "")) values.phone = phone;
      const flags = Array.from(box.querySelectorAll("input[name=vulnerable]:checked")).map((c) => c.value).sort();
      // a masked record (["***"]) is never written back as a change
      const masked = (p.vulnerable || []).includes("***");
      if (!masked && JSON.stringify(flags) !== JSON.stringify([...(p.vulnerable || [])].sort())) values.vulnerable = flags;
      if (Object.keys(values).length) changes.push({ person: p.id, values });
    }
    const item = {
      kind: "visit",
      household: visiting.id,
      client_id: crypto.randomUUID(),
      created: Date.now(),
      state: "queued",
      attempts: 0,
      next_try: 0,
      fields: { changes, note: $("#visit-note").value.trim(), visited_at: new Date().toISOString() },
      label: fmt(T.visit_label, { unit: visiting.unit }),
      error: null,
    };
    await marks.put(item); // on the phone first
    $("#visit-form").hidden = true;
    visiting = null;
    await renderMarks();
    marks.flush(true);
  });

  async function start() {
    renderNet();
    renderFix();
    await renderOutbox();
    await renderMarks();
    reports.flush(true);
    marks.flush(true);
    try {
      const r = await api("/api/v1/me/");
      if (r.status === 401) { showLogin(); return; }
      if (r.ok) { me = await r.json(); onDuty = me.on_duty; $("#duty").checked = onDuty; startLive(); }
    } catch (e) {
      /* offline: keep going */
    }
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/field/sw.js", { scope: "/field/" }).catch(() => {});
  }
  // Signed in to the site already (same browser)? Trade that session for the app's token, so
  // the worker logs in once; otherwise the login form.
  async function tokenFromSession() {
    const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1];
    if (!csrf || !navigator.onLine) return false;
    try {
      const r = await fetch("/api/v1/auth/token/session/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": decodeURIComponent(csrf), Accept: "application/json" },
      });
      if (!r.ok) return false;
      localStorage.setItem(TOKEN_KEY, (await r.json()).token);
      return true;
    } catch (e) {
      return false;
    }
  }
  if (token()) { showApp(); start(); } else {
    showLogin();
    renderNet();
    tokenFromSession().then((ok) => { if (ok) { showApp(); start(); } });
  }
})();
