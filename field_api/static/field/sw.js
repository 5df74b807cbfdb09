/* GridCommand field app service worker: keeps the app shell for offline start.
 * It never touches API calls: reports wait in IndexedDB (app.js), not in the worker. */
"use strict";

const CACHE = "gc-field-v3";
const SHELL = ["/field/", "/field/app.js", "/field/app.css", "/field/manifest.webmanifest", "/field/icons/icon-192.png"];

// Optional: the pin map's library (absent when static files are not collected).
// The live stream's client (assignments pushed over the websocket) is optional in the same way.
const OPTIONAL = ["/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css", "/static/realtime/live.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((c) => c.addAll(SHELL).then(() => Promise.all(OPTIONAL.map((u) => c.add(u).catch(() => null)))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const cached = url.pathname.startsWith("/field/") || OPTIONAL.includes(url.pathname);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !cached) {
    return; // the network as usual (API calls included)
  }
  // Network first (fresh shell when online), the cached copy when offline.
  const key = url.pathname === "/field/" || url.pathname === "/field/index.html" ? "/field/" : url.pathname;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((c) => c.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key).then((hit) => hit || Response.error()))
  );
});
