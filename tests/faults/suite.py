"""The fault suite: reports from simulated phones and live screens through a real cluster
(2 Daphne processes behind nginx) while the infrastructure fails under them.

``make faults`` runs it in full; ``tests/faults/test_faults.py`` runs a short form in
``make test``. Everything it starts is its own, under ``.local/faults/``: a PostgreSQL cluster
(restarted mid-run), a Redis (restarted mid-run) and the cluster (one Daphne killed with -9
mid-run), all on unix sockets or 127.0.0.1.

While phones send N reports (each with its client id; a phone that loses its connection or
gets an error sends the same report again, and ~10 % of requests are dropped by the phone
before the answer arrives) and screens hold websockets (one of them is cut every ~1.5 s and
reconnects with ``?since=``), it injects, in turn: a Redis restart, a Daphne kill -9 and a
PostgreSQL restart. Then it checks

- every acknowledged report is stored exactly once, and none is missing;
- every screen holds every event of its layers exactly once, in seq order, without a gap
  (compared with the event log itself), and was never told to resync;
- after each fault, every screen caught up with the log as it stood when the fault ended
  within ``CATCH_UP_LIMIT_SECONDS``;

and prints N, the faults, stored, duplicates, missing and catch-up times. Exit status 0 when
all hold. Every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from command import localstack  # noqa: E402
from command.cluster import ClusterSpec, cluster_running, daphne_pids  # noqa: E402

FAULTS_DIR = localstack.LOCAL / "faults"
PG_DATA = FAULTS_DIR / "pgdata"
PG_RUN = FAULTS_DIR / "run"
PG_LOG = FAULTS_DIR / "log" / "postgres.log"
PG_PORT = 55440
REDIS_DIR = FAULTS_DIR / "redis"
REDIS_SOCKET = FAULTS_DIR / "run-redis" / "redis.sock"
LAYERS = ["incidents", "reports"]
CATCH_UP_LIMIT_SECONDS = 10.0
# The test grid (tests/conftest.py): two cells, 117.000-117.002 E, 39.000-39.001 N.
LON = (117.0001, 117.0019)
LAT = (39.0001, 39.0009)


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


def database_url() -> str:
    return f"postgres://{localstack.PG_USER}@/{localstack.PG_DB}?host={PG_RUN}&port={PG_PORT}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- phones ----------------------------------------------------------------------------------


@dataclass
class PhoneStats:
    acknowledged: dict[str, int] = field(default_factory=dict)  # client id -> report id
    sent: int = 0
    dropped_by_phone: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Phone(threading.Thread):
    """Sends its reports one by one at its pace; each is sent again, with the same client id,
    until an answer acknowledges it (201, or 200: the server had it already)."""

    def __init__(
        self, port: int, token: str, reports: int, interval: float, drop: float, deadline: float, seed: int
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.reports, self.interval = port, token, reports, interval
        self.drop, self.deadline = drop, deadline
        self.random = random.Random(seed)
        self.stats = PhoneStats()

    def run(self) -> None:
        for _ in range(self.reports):
            body = json.dumps(
                {
                    "client_id": str(uuid.uuid4()),  # new reports on every run (the database is kept)
                    "category": "elevator_fault",
                    "location": {
                        "type": "Point",
                        "coordinates": [round(self.random.uniform(*LON), 6), round(self.random.uniform(*LAT), 6)],
                    },
                    "note": "fault suite",
                }
            )
            started = time.monotonic()
            while time.monotonic() < self.deadline and not self._send(body):
                time.sleep(0.2 + self.random.random() * 0.3)
            time.sleep(max(self.interval - (time.monotonic() - started), 0))

    def _send(self, body: str) -> bool:
        self.stats.sent += 1
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json", "Authorization": f"Token {self.token}"}
        try:
            conn.request("POST", "/api/v1/reports/", body=body.encode(), headers=headers)
            if self.random.random() < self.drop:  # the phone loses its connection before the answer
                self.stats.dropped_by_phone += 1
                return False
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.stats.errors[type(exc).__name__] += 1
            return False
        finally:
            conn.close()
        if response.status in (200, 201):
            receipt = json.loads(data)
            self.stats.acknowledged[json.loads(body)["client_id"]] = int(receipt["id"])
            return True
        self.stats.errors[str(response.status)] += 1
        return False


# --- screens ---------------------------------------------------------------------------------


class Screen(threading.Thread):
    """A websocket screen that reconnects with ``?since=`` (its last seq) whenever it is cut."""

    def __init__(self, port: int, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = f"ws://127.0.0.1:{port}/ws/live/"
        self.token, self.stop = token, stop
        self.lock = threading.Lock()
        self.seqs: list[int] = []
        self.start_seq: int | None = None
        self.last: int | None = None
        self.resyncs: list[dict[str, Any]] = []
        self.connects = 0
        self.cuts = 0
        self.ws: Any = None

    def run(self) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        while not self.stop.is_set():
            url = self.url if self.last is None else f"{self.url}?since={self.last}"
            try:
                with connect(
                    url,
                    additional_headers={"Authorization": f"Token {self.token}"},
                    open_timeout=5,
                    proxy=None,
                    compression=None,
                ) as ws:
                    self.ws = ws
                    self.connects += 1
                    ws.send(json.dumps({"type": "subscribe", "layers": LAYERS}))
                    unacked = 0
                    for text in ws:
                        unacked += self._take(json.loads(text))
                        if unacked >= 50 or (unacked and self.stop.is_set()):
                            ws.send(json.dumps({"type": "ack", "seq": self.last}))
                            unacked = 0
                        if self.stop.is_set():
                            break
            except (OSError, WebSocketException, TimeoutError):
                pass
            self.ws = None
            self.stop.wait(0.3)

    def _take(self, message: dict[str, Any]) -> int:
        kind = message["type"]
        with self.lock:
            if kind == "subscribed" and self.last is None:
                self.start_seq = self.last = int(message["seq"])
            elif kind == "resync":
                if message["reason"] != "initial":
                    self.resyncs.append(message)
                self.last = int(message["seq"]) if self.last is None else self.last
            elif kind == "event":
                self.seqs.append(int(message["seq"]))
                self.last = max(self.last or 0, int(message["seq"]))
                return 1
            elif kind == "heartbeat" and self.last is not None:
                self.last = max(self.last, int(message["seq"]))
                if self.ws is not None:
                    self.ws.send(json.dumps({"type": "ack", "seq": self.last}))
        return 0

    def cut(self) -> None:
        """Drop the TCP connection without a closing handshake (a network failure)."""
        ws = self.ws
        if ws is None:
            return
        try:
            ws.socket.shutdown(socket.SHUT_RDWR)
            self.cuts += 1
        except OSError:
            pass

    def caught_up(self, seq: int) -> bool:
        with self.lock:
            return self.last is not None and self.last >= seq


# --- the services it owns --------------------------------------------------------------------


def services_start() -> None:
    localstack.start_postgres(PG_DATA, PG_RUN, PG_LOG, PG_PORT)
    localstack.start_redis_server(REDIS_SOCKET, REDIS_DIR)


def services_stop() -> None:
    localstack.stop_redis_server(REDIS_SOCKET, REDIS_DIR)
    localstack.stop_postgres(PG_DATA)


def app_env() -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "command.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE": "0",
        "DATABASE_URL": database_url(),
        "REDIS_URL": f"unix://{REDIS_SOCKET}",
        "CHANNEL_PREFIX": "gcfaults",
        "FIELD_API_RATE_REPORTS": "100000/min",
        "LOG_LEVEL": "ERROR",
        "DB_POOL_MIN": "1",
    }


def prepare(phones: int, env: dict[str, str]) -> dict[str, Any]:
    for command in (["manage.py", "migrate", "--noinput", "-v", "0"], ["-m", "tests.faults.prepare", str(phones)]):
        done = subprocess.run(
            [sys.executable, *command], cwd=BASE_DIR, env={**os.environ, **env}, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    tokens: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return tokens


def _query(sql: str, params: list[Any] | None = None, timeout: float = 30) -> list[tuple[Any, ...]]:
    """A query on the suite's database, retried while it restarts."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(
                f"host={PG_RUN} port={PG_PORT} user={localstack.PG_USER} dbname={localstack.PG_DB}", connect_timeout=3
            ) as conn:
                return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def latest_seq() -> int:
    return int(_query("SELECT last_seq FROM command_eventcounter WHERE id = 1")[0][0])


# --- faults ----------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    at: float  # seconds into the run when it was injected
    took: float  # seconds until the service was back
    target_seq: int = 0  # the log's latest seq when the fault ended
    catch_up: float | None = None  # seconds until every screen held everything up to target_seq
    fresh: float | None = None  # seconds until every screen held the first event committed after the fault
    fresh_seq: int = 0


def fault_redis_restart() -> None:
    localstack.stop_redis_server(REDIS_SOCKET, REDIS_DIR)
    time.sleep(1.0)
    localstack.start_redis_server(REDIS_SOCKET, REDIS_DIR)


def fault_daphne_kill(spec: ClusterSpec) -> None:
    port, pid = sorted(daphne_pids(spec.dir).items())[0]
    log(f"kill -9 Daphne on port {port} (pid {pid})")
    os.kill(pid, signal.SIGKILL)


def fault_postgres_restart() -> None:
    localstack.stop_postgres(PG_DATA, mode="fast")
    time.sleep(1.0)
    localstack.start_postgres(PG_DATA, PG_RUN, PG_LOG, PG_PORT)


def measure_catch_up(fault: Fault, screens: list[Screen], ended: float) -> None:
    """Two times from the fault's end: until every screen holds every event committed before
    it ended (``catch_up``), and until every screen holds the first event committed after it
    (``fresh``: writes are taken again and reach every screen)."""
    fault.target_seq = latest_seq()
    deadline = ended + 30
    while time.monotonic() < deadline:
        if fault.catch_up is None and all(screen.caught_up(fault.target_seq) for screen in screens):
            fault.catch_up = time.monotonic() - ended
        if fault.catch_up is not None:
            break
        time.sleep(0.05)
    while time.monotonic() < deadline:
        newer = latest_seq()
        if newer > fault.target_seq:
            while time.monotonic() < deadline:
                if all(screen.caught_up(newer) for screen in screens):
                    fault.fresh = time.monotonic() - ended
                    fault.fresh_seq = newer
                    return
                time.sleep(0.05)
        time.sleep(0.05)


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "NEVER (30 s)"


# --- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    started_all = time.monotonic()
    FAULTS_DIR.mkdir(parents=True, exist_ok=True)
    services_start()
    env = app_env()
    tokens = prepare(args.phones, env)
    log(f"own PostgreSQL, Redis and data ready after {time.monotonic() - started_all:.0f} s")
    spec = ClusterSpec(
        processes=2,
        port=_free_port(),
        backends=[_free_port(), _free_port()],
        workdir=str(FAULTS_DIR / "cluster"),
        static_root=str(localstack.LOCAL / "static"),
        env=env,
    )
    duration = args.reports / args.rate
    log(
        f"{args.reports} reports from {args.phones} phones at {args.rate}/s (~{duration:.0f} s), {args.screens} screens"
    )
    with cluster_running(spec):
        stop = threading.Event()
        screens = [Screen(spec.port, tokens["operator"], stop) for _ in range(args.screens)]
        for screen in screens:
            screen.start()
        deadline = time.monotonic() + 10
        while not all(s.start_seq is not None for s in screens) and time.monotonic() < deadline:
            time.sleep(0.05)
        first_seq = latest_seq()
        t0 = time.monotonic()
        per_phone = [
            args.reports // args.phones + (1 if i < args.reports % args.phones else 0) for i in range(args.phones)
        ]
        phones = [
            Phone(
                spec.port,
                tokens["phones"][i],
                per_phone[i],
                interval=args.phones / args.rate,
                drop=args.drop,
                deadline=t0 + duration + 90,
                seed=args.seed * 1000 + i,
            )
            for i in range(args.phones)
        ]
        for phone in phones:
            phone.start()

        plan = [
            (0.2, "Redis restart", fault_redis_restart),
            (0.45, "Daphne kill -9", lambda: fault_daphne_kill(spec)),
            (0.7, "PostgreSQL restart", fault_postgres_restart),
        ]
        faults: list[Fault] = []
        cutter_random = random.Random(args.seed)
        next_cut = t0 + 1.5
        for fraction, name, inject in plan:
            at = t0 + duration * fraction
            while time.monotonic() < at:
                if time.monotonic() >= next_cut:  # repeated disconnects of the screens
                    cutter_random.choice(screens).cut()
                    next_cut += 1.5
                time.sleep(0.05)
            log(f"fault: {name}")
            begun = time.monotonic()
            inject()
            ended = time.monotonic()
            fault = Fault(name, at=begun - t0, took=ended - begun)
            faults.append(fault)
            measure_catch_up(fault, screens, ended)
            log(
                f"  back after {fault.took:.1f} s; screens held seq {fault.target_seq} after "
                f"{_seconds(fault.catch_up)} and the next event, seq {fault.fresh_seq}, after {_seconds(fault.fresh)}"
            )
        for phone in phones:
            while phone.is_alive():
                if time.monotonic() >= next_cut:
                    cutter_random.choice(screens).cut()
                    next_cut += 1.5
                phone.join(0.1)
        final_seq = latest_seq()
        end_deadline = time.monotonic() + 15
        while not all(s.caught_up(final_seq) for s in screens) and time.monotonic() < end_deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # anything sent twice would arrive now
        stop.set()
        for screen in screens:
            screen.cut()
            screen.join(5)

    return verify(args, phones, screens, faults, first_seq, final_seq, time.monotonic() - started_all)


def verify(
    args: argparse.Namespace,
    phones: list[Phone],
    screens: list[Screen],
    faults: list[Fault],
    first_seq: int,
    final_seq: int,
    took: float,
) -> int:
    acknowledged: dict[str, int] = {}
    for phone in phones:
        acknowledged.update(phone.stats.acknowledged)
    rows = _query(
        "SELECT client_id::text, count(*), min(id) FROM command_report WHERE client_id = ANY(%s::uuid[]) GROUP BY 1",
        [list(acknowledged)],
    )
    stored = {client_id: (count, report_id) for client_id, count, report_id in rows}
    duplicates = sum(count - 1 for count, _id in stored.values())
    missing = [c for c in acknowledged if c not in stored]
    wrong_id = [c for c, rid in acknowledged.items() if c in stored and stored[c][1] != rid]
    created_events = _query(
        "SELECT object_id, count(*) FROM command_event"
        " WHERE kind = 'report.created' AND object_id = ANY(%s) GROUP BY 1",
        [[str(rid) for rid in acknowledged.values()]],
    )
    event_duplicates = sum(count - 1 for _oid, count in created_events)
    events_missing = len(acknowledged) - len(created_events)

    print()
    print("fault suite")
    print(f"  reports (N)            {args.reports} from {args.phones} phones, {args.screens} screens")
    print(f"  acknowledged           {len(acknowledged)}")
    print(f"  requests sent          {sum(p.stats.sent for p in phones)}")
    print(f"  dropped by phones      {sum(p.stats.dropped_by_phone for p in phones)} (sent again)")
    errors = sum((p.stats.errors for p in phones), Counter())
    print(f"  errors seen by phones  {dict(errors) or 0} (sent again)")
    print(f"  stored                 {len(stored)}")
    print(f"  duplicates             {duplicates} stored, {event_duplicates} report.created events")
    print(f"  missing                {len(missing)} stored, {events_missing} report.created events")
    print(f"  faults injected        {len(faults)} + {sum(s.cuts for s in screens)} screen disconnects")
    ok = len(acknowledged) == args.reports and not duplicates and not missing and not wrong_id
    ok = ok and not event_duplicates and not events_missing
    print("  catch-up after each fault: screens hold every event committed before its end / the first one after it")
    for fault in faults:
        print(
            f"    {fault.name:<20} at {fault.at:5.1f} s, back in {fault.took:4.1f} s, "
            f"caught up in {_seconds(fault.catch_up)} / {_seconds(fault.fresh)}"
        )
        for seconds in (fault.catch_up, fault.fresh):
            ok = ok and seconds is not None and seconds <= CATCH_UP_LIMIT_SECONDS
    expected = [
        int(seq)
        for (seq,) in _query(
            "SELECT seq FROM command_event WHERE seq > %s AND seq <= %s AND layer = ANY(%s) ORDER BY seq",
            [first_seq, final_seq, LAYERS],
        )
    ]
    # every report wrote its events in this run (a report found already stored writes none)
    ok = ok and len(expected) >= args.reports
    for i, screen in enumerate(screens):
        seqs = [s for s in screen.seqs if screen.start_seq is not None and first_seq < s <= final_seq]
        dupes = len(seqs) - len(set(seqs))
        in_order = seqs == sorted(seqs)
        held = set(seqs)
        gaps = [s for s in expected if s not in held]
        ok = ok and not dupes and in_order and not gaps and not screen.resyncs
        print(
            f"  screen {i}: {len(seqs)} events of {len(expected)}, duplicates {dupes}, missing {len(gaps)}, "
            f"in order {'yes' if in_order else 'NO'}, connects {screen.connects}, resyncs {len(screen.resyncs)}"
        )
    print(f"  took {took:.0f} s")
    print("fault suite: PASSED" if ok else "fault suite: FAILED")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.suite")
    parser.add_argument("--reports", type=int, default=600)
    parser.add_argument("--phones", type=int, default=6)
    parser.add_argument("--screens", type=int, default=4)
    parser.add_argument("--rate", type=float, default=8.0, help="reports per second, all phones together")
    parser.add_argument("--drop", type=float, default=0.1, help="share of requests a phone drops before the answer")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--keep", action="store_true", help="leave the suite's PostgreSQL and Redis running")
    args = parser.parse_args(argv[1:])
    try:
        return run(args)
    finally:
        if not args.keep:
            services_stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
