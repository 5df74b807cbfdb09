"""``make cluster``'s shape, for real: two Daphne processes behind nginx on the test database.

HTTP and websockets are balanced over both processes, nginx serves the static files, an event
written through one process reaches screens on the other, rate limits and sessions are shared
through Redis, /metrics sums both processes, and a Daphne killed with -9 is replaced.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from command.cluster import ClusterSpec, daphne_pids, state
from tests.realtime.conftest import session_cookie, user_token
from tests.realtime.live_client import LiveClient

pytestmark = pytest.mark.django_db(transaction=True)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except OSError:  # refused, reset: a process is away
        return 0, {}, b""


def _post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _proxy(spec: ClusterSpec) -> str:
    return f"http://127.0.0.1:{spec.port}"


def test_http_is_balanced_and_static_files_come_from_nginx(cluster):
    # when: a few requests through the proxy
    upstreams = {_get(f"{_proxy(cluster)}/healthz")[1]["X-GC-Upstream"] for _ in range(6)}
    # then: both processes answered
    assert upstreams == {f"127.0.0.1:{port}" for port in cluster.backend_ports}
    # and a static file is nginx's own answer, the collected file byte for byte
    status, headers, body = _get(f"{_proxy(cluster)}/static/realtime/live.js")
    assert status == 200 and headers.get("X-GC-Served-By") == "nginx" and "X-GC-Upstream" not in headers
    assert body == (Path(cluster.static_root) / "realtime" / "live.js").read_bytes()


def test_an_event_written_through_one_process_reaches_screens_on_every_process(cluster, make_user, reference, grid):
    # given: two screens through the proxy; least_conn puts them on different processes
    operator = make_user("operator")
    worker = make_user("grid_worker", team="volunteer")
    url = f"ws://127.0.0.1:{cluster.port}/ws/live/"
    screens = [LiveClient(url, cookie=session_cookie(operator), origin=_proxy(cluster)) for _ in range(2)]
    try:
        backends = {screen.ws.response.headers["X-GC-Upstream"] for screen in screens}
        assert backends == {f"127.0.0.1:{port}" for port in cluster.backend_ports}
        for screen in screens:
            screen.subscribe(["incidents", "reports"])
        # when: a phone reports through the proxy (lands on either process)
        status, receipt = _post_json(
            f"{_proxy(cluster)}/api/v1/reports/",
            {
                "client_id": str(uuid.uuid4()),
                "category": "elevator_fault",
                "location": {"type": "Point", "coordinates": [117.0005, 39.0005]},
                "note": "cluster",
            },
            user_token(worker),
        )
        assert status == 201, receipt
        # then: both screens, on both processes, hold its two events, once, in order
        for screen in screens:
            assert screen.wait_for(lambda c: len(c.events) == 2, timeout=10)
            assert [e["kind"] for e in screen.events] == ["incident.created", "report.created"]
        # and /metrics of either process counts both processes' connections and deliveries
        _status, _headers, text = _get(f"http://127.0.0.1:{cluster.backend_ports[0]}/metrics")
        assert _metric(text.decode(), "gridcommand_websocket_connections") == 2
        assert _metric(text.decode(), "gridcommand_events_delivered_total") >= 4
    finally:
        for screen in screens:
            screen.close()


def test_rate_limits_and_sessions_are_shared_by_the_processes(cluster, make_user, reference):
    # given: a read limit of 5 a minute (the fixture), a token, and each process addressed directly
    token = user_token(make_user("grid_worker", team="volunteer"))
    a, b = (f"http://127.0.0.1:{port}" for port in cluster.backend_ports)
    statuses = [
        _get(f"{base}/api/v1/categories/", {"Authorization": f"Token {token}"})[0] for base in (a, b, a, b, a, b)
    ]
    # then: the sixth request is refused, though each process saw only three
    assert statuses == [200, 200, 200, 200, 200, 429]
    # and a session made by one login is known to both processes
    cookie = session_cookie(make_user("operator"))
    for base in (a, b):
        status, _headers, body = _get(f"{base}/api/v1/me/", {"Cookie": f"sessionid={cookie}"})
        assert status in {200, 403}, body  # authenticated: 403 would be "not a worker", never 401
        assert status != 401


def test_a_daphne_killed_with_9_is_replaced_and_the_proxy_keeps_answering(cluster):
    # given
    victim_port, victim_pid = next(iter(daphne_pids(cluster.dir).items()))
    # when
    os.kill(victim_pid, signal.SIGKILL)
    # then: the proxy answers meanwhile (the other process), and the killed one is back on its port
    assert _get(f"{_proxy(cluster)}/healthz")[0] == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = daphne_pids(cluster.dir)
        if (
            pids.get(victim_port) not in (None, victim_pid)
            and _get(f"http://127.0.0.1:{victim_port}/healthz")[0] == 200
        ):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the killed Daphne was not replaced within 30 s")
    found = state(cluster.dir)
    assert found is not None and found["restarts"] == {f"daphne-{victim_port}": 1}
