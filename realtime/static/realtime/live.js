/*
 * GridLive: the live event stream of GridCommand for map pages (docs/websocket-api.md).
 *
 *   <script src="/static/realtime/live.js"></script>
 *   const live = GridLive.connect({
 *     url: "/ws/live/",                    // optional
 *     layers: ["incidents", "cameras"],
 *     bbox: null,                          // or [minLon, minLat, maxLon, maxLat]
 *     onEvent(event) {},                   // {seq, kind, layer, object_id, payload, created_at}: once per seq, in order
 *     onResync(seq) {},                    // reload your snapshot (it must hold every event up to seq); may return a Promise
 *     onStatus(status) {},                 // "connecting" | "live" | "offline"
 *     token: null,                         // an API token (pages without a session: the field app)
 *   });
 *   live.update({bbox: [...]});            // follow the map view: subscribe again, reload the snapshot
 *   live.close();
 *
 * Subscribes first, then asks for the snapshot (onResync), holding back the events that arrive
 * meanwhile and applying them after it: no gap. Reconnects with backoff and resumes from the
 * last seq it applied (?since=), so nothing is missed or applied twice.
 */
(function (global) {
  "use strict";

  var ACK_EVERY = 100;
  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var CLOSE_FORBIDDEN = 4403;
  var CLOSE_BAD_REQUEST = 4400;

  function noop() {}

  function wsUrl(path, since) {
    var url = /^wss?:\/\//.test(path)
      ? path
      : (global.location.protocol === "https:" ? "wss://" : "ws://") + global.location.host + path;
    if (since !== null && since !== undefined) {
      url += (url.indexOf("?") >= 0 ? "&" : "?") + "since=" + encodeURIComponent(String(since));
    }
    return url;
  }

  function connect(options) {
    var opts = options || {};
    var path = opts.url || "/ws/live/";
    var layers = (opts.layers || []).slice();
    var bbox = opts.bbox || null;
    var onEvent = opts.onEvent || noop;
    var onResync = opts.onResync || noop;
    var onStatus = opts.onStatus || noop;
    var onAccess = opts.onAccess || null;
    // A page without a session (the field app) logs in with its API token, carried in the
    // websocket subprotocol list (a browser cannot set an Authorization header): the server
    // answers with the protocol "gridcommand" (realtime/auth.py).
    var protocols = opts.token ? ["gridcommand", "gridcommand.token." + opts.token] : undefined;

    var socket = null;
    var closed = false;
    var attempts = 0;
    var timer = null;
    var status = null;
    var lastSeq = null; // everything up to here is applied (or in the snapshot): resume point
    var receivedSeq = 0; // highest seq received: what we acknowledge
    var loading = false; // a snapshot reload is running; events wait in `held`
    var held = [];
    var generation = 0; // of snapshot reloads: only the latest one releases the held events
    var sinceAck = 0;

    function setStatus(next) {
      if (next !== status) {
        status = next;
        try {
          onStatus(next);
        } catch (err) {
          console.error("GridLive onStatus", err);
        }
      }
    }

    function send(message) {
      if (socket && socket.readyState === 1) {
        socket.send(JSON.stringify(message));
      }
    }

    function ack() {
      sinceAck = 0;
      send({ type: "ack", seq: receivedSeq });
    }

    function apply(event) {
      if (lastSeq !== null && event.seq <= lastSeq) {
        return; // already applied (a replay overlapping what we hold)
      }
      lastSeq = event.seq;
      try {
        onEvent(event);
      } catch (err) {
        console.error("GridLive onEvent", err);
      }
    }

    function resync(seq) {
      // Reload the snapshot; events after `seq` that arrive meanwhile are held, then applied.
      loading = true;
      held = [];
      var mine = ++generation;
      var done = function () {
        if (mine !== generation) {
          return; // a newer resync took over
        }
        loading = false;
        lastSeq = lastSeq === null ? seq : Math.max(lastSeq, seq);
        var pending = held;
        held = [];
        pending.sort(function (a, b) {
          return a.seq - b.seq;
        });
        pending.forEach(apply);
      };
      var result;
      try {
        result = onResync(seq);
      } catch (err) {
        console.error("GridLive onResync", err);
      }
      if (result && typeof result.then === "function") {
        result.then(done, function (err) {
          console.error("GridLive onResync", err);
          done();
        });
      } else {
        done();
      }
    }

    function handle(message) {
      if (typeof message.seq === "number" && message.seq > receivedSeq) {
        receivedSeq = message.seq;
      }
      switch (message.type) {
        case "hello":
          break;
        case "subscribed":
          attempts = 0;
          setStatus("live");
          break;
        case "event":
          if (loading) {
            held.push(message);
          } else {
            apply(message);
          }
          if (++sinceAck >= ACK_EVERY) {
            ack();
          }
          break;
        case "heartbeat":
          if (!loading && (lastSeq === null || message.seq > lastSeq)) {
            lastSeq = message.seq; // nothing up to here was meant for us
          }
          ack();
          break;
        case "resync":
          resync(message.seq);
          break;
        case "access":
          if (onAccess) {
            onAccess(message);
          } else if (message.revoked.length) {
            resync(lastSeq === null ? message.seq || 0 : lastSeq); // the snapshot drops revoked layers
          }
          break;
        case "error":
          console.warn("GridLive:", message.code, message.detail);
          break;
        default:
          break;
      }
    }

    function open() {
      timer = null;
      if (closed) {
        return;
      }
      setStatus("connecting");
      var ws;
      try {
        ws = protocols ? new WebSocket(wsUrl(path, loading ? null : lastSeq), protocols)
          : new WebSocket(wsUrl(path, loading ? null : lastSeq));
      } catch (err) {
        console.error("GridLive", err);
        schedule();
        return;
      }
      socket = ws;
      ws.onopen = function () {
        send({ type: "subscribe", layers: layers, bbox: bbox });
      };
      ws.onmessage = function (msg) {
        var message;
        try {
          message = JSON.parse(msg.data);
        } catch (err) {
          return;
        }
        handle(message);
      };
      ws.onclose = function (evt) {
        if (socket !== ws) {
          return;
        }
        socket = null;
        setStatus("offline");
        if (closed || evt.code === CLOSE_FORBIDDEN) {
          return; // logged out or no longer allowed: a new login starts a new stream
        }
        if (evt.code === CLOSE_BAD_REQUEST) {
          lastSeq = null;
        }
        schedule();
      };
    }

    function schedule() {
      if (closed || timer !== null) {
        return;
      }
      var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempts));
      attempts += 1;
      delay = delay / 2 + Math.random() * (delay / 2); // jitter: screens do not reconnect in step
      timer = global.setTimeout(open, delay);
    }

    open();

    return {
      update: function (next) {
        // New layers or bbox: the stream goes on from the same seq; what the new view holds is
        // reloaded (onResync), and the events that arrive meanwhile wait for it.
        if (next.layers) {
          layers = next.layers.slice();
        }
        if (Object.prototype.hasOwnProperty.call(next, "bbox")) {
          bbox = next.bbox;
        }
        if (socket && socket.readyState === 1) {
          send({ type: "subscribe", layers: layers, bbox: bbox });
          if (lastSeq !== null && next.reload !== false) {
            resync(lastSeq);
          }
        } // not connected: the next connection subscribes with these, and resumes or resyncs
      },
      close: function () {
        closed = true;
        if (timer !== null) {
          global.clearTimeout(timer);
          timer = null;
        }
        if (socket) {
          var ws = socket;
          socket = null;
          ws.close(1000);
        }
        setStatus("offline");
      },
      get lastSeq() {
        return lastSeq;
      },
      get status() {
        return status;
      },
    };
  }

  global.GridLive = { connect: connect };
})(window);
