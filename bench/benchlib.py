"""What the benchmarks share: their own database next to the app's, and real Daphne processes.

Scripts in bench/ run as ``python bench/<name>.py``, so this module is importable as ``benchlib``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))


def bench_database_url(suffix: str) -> str:
    """The app's database URL (``DATABASE_URL`` or the private cluster) with ``_<suffix>`` on the name."""
    from command import localstack

    url = urlparse(os.environ.get("DATABASE_URL") or localstack.default_database_url())
    name = url.path.lstrip("/") or "gridcommand"
    return urlunparse(url._replace(path=f"/{name}_{suffix}"))


def psycopg_conninfo(url: str) -> str:
    """A libpq connection string for a postgres:// URL (also with ?host=/socket/dir)."""
    from command.settings import database_from_url

    db = database_from_url(url)
    parts = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"]}
    parts["port"] = db["PORT"]
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def database_ensure(url: str) -> None:
    """Create the database of ``url`` when it does not exist."""
    import psycopg

    from command.settings import database_from_url

    name = str(database_from_url(url)["NAME"])
    admin_url = url.replace(f"/{name}", "/postgres", 1)
    with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not answer on {url}:\n{log.read_text()[-3000:]}")


def daphne_start(url: str, *, name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """A real Daphne serving the app on the database ``url``, answering /healthz; rate limits off."""
    port = free_port()
    log = BASE_DIR / ".local" / "log" / f"{name}-daphne-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "command.test_settings",
        "DATABASE_URL": url,
        # A phone's limit is 120/min; the bench's clients post ~40/s each. A per-second window
        # keeps the throttle's history as short as in production (a per-minute one grew to
        # thousands of timestamps per user, pickled on every request: 50 us instead of 10).
        "FIELD_API_RATE_REPORTS": "100000/s",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "command.asgi:application"],
            cwd=BASE_DIR,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process, log)
    except BaseException:
        stop(process)
        raise
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in kB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- the bare baseline server and the screens' clients, shared by the real-time benches ---------------

WS_OPTIONS: dict[str, Any] = {"compression": None, "proxy": None, "max_queue": None}


async def baseline_server(port: int, conninfo: str | None, heartbeat_seconds: float) -> None:
    """The bare baseline: a raw ``websockets`` server that broadcasts every ``pg_notify`` on the
    channel ``bench`` to all its clients (when ``conninfo`` is given) and, every
    ``heartbeat_seconds``, a heartbeat of GridCommand's form that the clients ack (when > 0):
    the work of /ws/live/ without the application."""
    import websockets

    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            async for _message in ws:  # acks
                pass
        finally:
            clients.discard(ws)

    async def heartbeats() -> None:
        seq = 0
        while True:
            await asyncio.sleep(heartbeat_seconds)
            seq += 1
            websockets.broadcast(clients, json.dumps({"type": "heartbeat", "seq": seq}, separators=(",", ":")))

    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(websockets.serve(handler, "127.0.0.1", port, compression=None))
        if heartbeat_seconds > 0:
            task = asyncio.create_task(heartbeats())
            stack.callback(task.cancel)
        print("ready", flush=True)
        if conninfo is None:
            await asyncio.Future()
            return
        import psycopg

        conn = await stack.enter_async_context(await psycopg.AsyncConnection.connect(conninfo, autocommit=True))
        await conn.execute("LISTEN bench")
        async for notify in conn.notifies():
            websockets.broadcast(clients, notify.payload)


def baseline_start(*, conninfo: str | None = None, heartbeat_seconds: float = 0) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``baseline_server`` in a process of its own (a core of its own, as Daphne has); return
    it and its port once it listens."""
    port = free_port()
    command = [sys.executable, __file__, "--baseline-server", str(port), "--heartbeat", str(heartbeat_seconds)]
    if conninfo is not None:
        command += ["--conninfo", conninfo]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=BASE_DIR)
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        stop(process)
        raise SystemExit("baseline server did not start")
    return process, port


async def baseline_write(conn: Any, payload: str) -> None:
    """The baseline's write: a row and its ``pg_notify`` in one transaction (async psycopg)."""
    async with conn.transaction():
        await conn.execute("INSERT INTO bench_baseline (payload) VALUES (%s)", [payload])
        await conn.execute("SELECT pg_notify('bench', %s)", [payload])


async def screen_connect(
    url: str, *, token: str | None = None, layers: list[str] | None = None, attempts: int = 1, retried: Any = None
) -> Any:
    """One screen: a websocket to ``url`` (with the token, when given), subscribed to ``layers``.
    Tries ``attempts`` times (Daphne drops a handshake not accepted within 5 s under a burst of
    connects; a screen tries again, as GridLive does), calling ``retried()`` on each retry."""
    import websockets
    from websockets.exceptions import InvalidMessage, InvalidStatus

    headers = {"Authorization": f"Token {token}"} if token else {}
    for attempt in range(attempts):
        try:
            ws = await websockets.connect(url, additional_headers=headers, open_timeout=60, **WS_OPTIONS)
        except (OSError, InvalidMessage, InvalidStatus):
            if attempt == attempts - 1:
                raise
            if retried is not None:
                retried()
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        if layers:
            await ws.send(json.dumps({"type": "subscribe", "layers": layers}))
        return ws
    raise RuntimeError(f"could not connect to {url}")


async def screens_connect(urls: list[str], *, batch: int = 50, **options: Any) -> list[Any]:
    """``screen_connect`` each url, ``batch`` at a time (a thousand handshakes at once would
    measure the accept queue)."""
    clients: list[Any] = []
    for start in range(0, len(urls), batch):
        clients += await asyncio.gather(*(screen_connect(url, **options) for url in urls[start : start + batch]))
    return clients


async def screen_read(ws: Any, on_message: Any, *, acks: bool, ack_every: int = 0) -> None:
    """Read a screen until it closes: ``on_message(message, perf_counter at arrival)`` for each
    message; with ``acks``, ack every heartbeat (and every ``ack_every`` events), as screens do."""
    unacked = 0
    try:
        async for text in ws:
            now = time.perf_counter()
            message = json.loads(text)
            on_message(message, now)
            if not acks:
                continue
            unacked += message.get("type") == "event"
            if message.get("type") == "heartbeat" or (ack_every and unacked >= ack_every):
                await ws.send(json.dumps({"type": "ack", "seq": message.get("seq") or 0}))
                unacked = 0
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: S110 - the connection closed (the end of the run, or the server's doing)
        pass


class HttpPool:
    """Keep-alive HTTP/1.1 connections to Daphne (the phones' reuse of their connection)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.size = size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def post(self, path: str, data: bytes, headers: dict[str, str]) -> int:
        """POST ``data`` (JSON) with ``headers``; the answer's status (its body is read and dropped)."""
        reader, writer = await self.idle.get()
        try:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                ).encode()
                + data
            )
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            return int(status_line.split()[1])
        finally:
            self.idle.put_nowait((reader, writer))

    async def post_json(self, path: str, body: dict[str, Any], token: str) -> int:
        return await self.post(path, json.dumps(body).encode(), {"Authorization": f"Token {token}"})

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


# --- what the latency benches write and time (bench/latency.py, bench/alarm.py) ---------------------

# A small hand-drawn grid (lon, lat): reports land at random points inside it.
GRID_BBOX = (117.000, 39.000, 117.010, 39.006)
CATEGORIES = ("elevator_fault", "road_damage", "sanitation", "parking_dispute", "other")


def report_body(rng: Any, key: str) -> dict[str, Any]:
    """A phone's new report at a random point of GRID_BBOX; ``key`` (hex) is its client id."""
    return {
        "client_id": str(uuid.UUID(key)),
        "category": rng.choice(CATEGORIES),
        "location": {
            "type": "Point",
            "coordinates": [
                round(rng.uniform(GRID_BBOX[0], GRID_BBOX[2]), 6),
                round(rng.uniform(GRID_BBOX[1], GRID_BBOX[3]), 6),
            ],
        },
        "accuracy": 12.5,
        "note": "bench",
        "client_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def report_key(message: dict[str, Any]) -> str | None:
    """The client id (hex) of a screen's ``report.created`` event, else None."""
    if message.get("type") == "event" and message.get("kind") == "report.created":
        return str(uuid.UUID(message["payload"]["properties"]["client_id"]).hex)
    return None


class Screens:
    """N screens, each noting when every key (``extract(message)``) first reached it."""

    def __init__(self) -> None:
        self.sinks: list[dict[str, float]] = []
        self._sockets: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, connect: Any, n: int, extract: Any, *, acks: bool = True, settle: float = 0.5) -> Screens:
        """``n`` screens from ``connect()`` (a coroutine giving a subscribed websocket)."""
        screens = cls()
        for _ in range(n):
            ws = await connect()
            sink: dict[str, float] = {}

            def arrived(message: dict[str, Any], now: float, sink: dict[str, float] = sink) -> None:
                key = extract(message)
                if key is not None:
                    sink.setdefault(key, now)

            screens.sinks.append(sink)
            screens._sockets.append(ws)
            screens._tasks.append(asyncio.create_task(screen_read(ws, arrived, acks=acks)))
        await asyncio.sleep(settle)  # subscriptions settle
        return screens

    def missing(self, keys: Iterable[str]) -> int:
        wanted = list(keys)
        return sum(1 for sink in self.sinks for key in wanted if key not in sink)

    async def wait(self, keys: Iterable[str], timeout: float = 15) -> int:
        """Wait until every screen has every key (at most ``timeout``); how many are still missing."""
        wanted = list(keys)
        deadline = time.perf_counter() + timeout
        while self.missing(wanted) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        return self.missing(wanted)

    def latencies_ms(self, sent_at: dict[str, float]) -> list[float]:
        """Per (key, screen): from ``sent_at[key]`` to the screen having it, in ms."""
        return [(sink[key] - at) * 1000 for sink in self.sinks for key, at in sent_at.items() if key in sink]

    async def close(self) -> None:
        for ws in self._sockets:
            await ws.close()
        for task in self._tasks:
            task.cancel()


async def paced(rate: float, count: int, write: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Start ``write(i)`` for i in 0..count-1 at a steady ``rate`` per second; wait for them all."""
    start = time.perf_counter()
    writes: list[asyncio.Task[None]] = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writes.append(asyncio.create_task(write(i)))
    await asyncio.gather(*writes)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the bare baseline server of the real-time benches")
    parser.add_argument("--baseline-server", type=int, required=True, metavar="PORT")
    parser.add_argument("--conninfo", default=None)
    parser.add_argument("--heartbeat", type=float, default=0)
    options = parser.parse_args()
    asyncio.run(baseline_server(options.baseline_server, options.conninfo, options.heartbeat))
