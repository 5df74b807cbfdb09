"""``make cluster``: N Daphne processes on their own ports behind nginx, on one machine.

``python -m command.cluster start`` starts a supervisor in the background (its state in
``.local/cluster/``) and returns once nginx answers ``/healthz``; ``stop`` ends it. The
supervisor

- writes nginx's configuration (``nginx.conf``: loopback only, one ``upstream`` of the N
  Daphne ports, websocket upgrade, ``/static/`` served from ``STATIC_ROOT`` by nginx itself,
  ``X-Forwarded-For`` set to the client's address, which Daphne reads with ``--proxy-headers``)
  and runs nginx in the foreground as its child;
- runs N Daphne processes, ``127.0.0.1:<port>`` each, all on the same PostgreSQL and Redis,
  with one ``PROMETHEUS_MULTIPROC_DIR`` (``/metrics`` of any of them sums all);
- restarts a child that dies (a Daphne killed with -9 is back on its port within a second or
  two; its live gauges are dropped), and keeps ``cluster.json`` up to date: the ports and pids,
  which the fault suite and the tests read.

Standard library only (with the metrics helper), like ``command.localstack``: it runs outside
Django. Tests and the fault suite start their own cluster in another folder with
``cluster_running()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from command.localstack import BASE_DIR, LOCAL

CLUSTER_DIR = LOCAL / "cluster"
RESTART_DELAY_SECONDS = 0.5


@dataclass
class ClusterSpec:
    processes: int = 2
    port: int = 8080  # nginx, on 127.0.0.1
    first_backend_port: int = 8101
    workdir: str = str(CLUSTER_DIR)
    static_root: str = str(LOCAL / "static")
    env: dict[str, str] = field(default_factory=dict)  # added to each Daphne's environment
    python: str = sys.executable
    backends: list[int] = field(default_factory=list)  # the Daphne ports, when not consecutive

    @property
    def backend_ports(self) -> list[int]:
        return self.backends or [self.first_backend_port + i for i in range(self.processes)]

    @property
    def dir(self) -> Path:
        return Path(self.workdir)


def _nginx() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        sys.exit("nginx not found: run `make deps` (apt-get install nginx).")
    return found


def _worker_user() -> str | None:
    """As root, nginx's workers run as ``nobody``; its temp folders must be theirs."""
    if os.geteuid() != 0:
        return None
    return "nobody"


def nginx_conf(spec: ClusterSpec) -> str:
    d = spec.dir
    servers = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in spec.backend_ports)
    user = _worker_user()
    static_root = Path(spec.static_root).resolve()
    return f"""# written by command/cluster.py; edits are lost at the next start
{f"user {user} nogroup;" if user else ""}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 16384; }}
worker_rlimit_nofile 40000;
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path {d}/temp/body;
  proxy_temp_path {d}/temp/proxy;
  fastcgi_temp_path {d}/temp/fastcgi;
  uwsgi_temp_path {d}/temp/uwsgi;
  scgi_temp_path {d}/temp/scgi;
  client_max_body_size 70m;
  server_tokens off;
  upstream gridcommand {{
    least_conn;  # websockets are long: the process with the fewest open connections gets the next
{servers}
    keepalive 64;
  }}
  map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
  server {{
    listen 127.0.0.1:{spec.port};
    location /static/ {{
      alias {static_root}/;
      expires 1h;
      add_header X-GC-Served-By nginx;
    }}
    location / {{
      proxy_pass http://gridcommand;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      add_header X-GC-Upstream $upstream_addr always;
    }}
  }}
}}
"""


def _daphne_cmd(spec: ClusterSpec, port: int) -> list[str]:
    return [
        spec.python,
        "-m",
        "daphne",
        "--proxy-headers",
        "--application-close-timeout",
        "3",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "command.asgi:application",
    ]


def _metrics_dir(spec: ClusterSpec) -> Path:
    return spec.dir / "metrics"


class Supervisor:
    """Runs nginx and the Daphne processes, restarts any that dies, until SIGTERM."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False
        self.env = {**os.environ, **spec.env, "PROMETHEUS_MULTIPROC_DIR": str(_metrics_dir(spec))}
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

    def _start(self, name: str) -> None:
        log = (self.spec.dir / f"{name}.log").open("ab")
        if name == "nginx":
            cmd = [_nginx(), "-c", str(self.spec.dir / "nginx.conf"), "-e", str(self.spec.dir / "nginx-error.log")]
        else:
            cmd = _daphne_cmd(self.spec, int(name.split("-")[1]))
        self.children[name] = subprocess.Popen(
            cmd, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "supervisor": os.getpid(),
            "spec": asdict(self.spec),
            "url": f"http://127.0.0.1:{self.spec.port}",
            "children": {name: child.pid for name, child in self.children.items()},
            "restarts": self.restarts,
        }
        tmp = self.spec.dir / "cluster.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.spec.dir / "cluster.json")

    def run(self) -> None:
        d = self.spec.dir
        metrics_dir = _metrics_dir(self.spec)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        user = _worker_user()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / "temp" / sub).mkdir(parents=True, exist_ok=True)
            if user:
                entry = pwd.getpwnam(user)
                os.chown(d / "temp" / sub, entry.pw_uid, entry.pw_gid)
        (d / "nginx.conf").write_text(nginx_conf(self.spec))
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for port in self.spec.backend_ports:
            self._start(f"daphne-{port}")
        self._start("nginx")
        while not self.stopping:
            for name, child in list(self.children.items()):
                if child.poll() is not None and not self.stopping:
                    self._died(name, child)
            time.sleep(0.2)
        self._stop_children()

    def _died(self, name: str, child: subprocess.Popen[bytes]) -> None:
        with (self.spec.dir / f"{name}.log").open("a") as log:
            log.write(f"\n--- supervisor: {name} (pid {child.pid}) exited with {child.returncode}; restarting\n")
        if name.startswith("daphne"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(child.pid, str(_metrics_dir(self.spec)))
        self.restarts[name] = self.restarts.get(name, 0) + 1
        time.sleep(RESTART_DELAY_SECONDS)
        self._start(name)

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _stop_children(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.terminate()  # nginx: fast shutdown; daphne: closes its sockets
        deadline = time.monotonic() + 5
        for child in self.children.values():
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        (self.spec.dir / "cluster.json").unlink(missing_ok=True)


# --- controlling a cluster from outside ---------------------------------------------------


def state(workdir: Path = CLUSTER_DIR) -> dict[str, object] | None:
    path = workdir / "cluster.json"
    try:
        found: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = found.get("supervisor")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - our own
            return bool(response.status == 200)
    except OSError:
        return False


def wait_healthy(spec: ClusterSpec, timeout: float = 60) -> None:
    """Until every Daphne, then nginx, answer /healthz 200. The processes are asked first (``all``
    stops at the first that fails): asked through nginx while one was still starting, nginx marked
    it failed for ``fail_timeout`` and sent everything to the other (a test saw one upstream)."""
    urls = [f"http://127.0.0.1:{p}" for p in spec.backend_ports] + [f"http://127.0.0.1:{spec.port}"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_healthy(url) for url in urls):
            return
        if state(spec.dir) is None and time.monotonic() > deadline - timeout + 5:
            break
        time.sleep(0.2)
    logs = "\n".join(
        f"== {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(spec.dir.glob("*.log")) if p.exists()
    )
    raise RuntimeError(f"the cluster did not become healthy on port {spec.port}:\n{logs}")


def start(spec: ClusterSpec, timeout: float = 60) -> dict[str, object]:
    """Start the supervisor in the background (or reuse a running one) and wait until healthy."""
    running = state(spec.dir)
    if running is not None:
        return running
    spec.dir.mkdir(parents=True, exist_ok=True)
    (spec.dir / "spec.json").write_text(json.dumps(asdict(spec)))
    with (spec.dir / "supervisor.log").open("ab") as log:
        subprocess.Popen(
            [spec.python, "-m", "command.cluster", "supervise", str(spec.dir / "spec.json")],
            cwd=BASE_DIR,
            env={**os.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_healthy(spec, timeout)
    found = state(spec.dir)
    assert found is not None
    return found


def stop(workdir: Path = CLUSTER_DIR, timeout: float = 20) -> bool:
    running = state(workdir)
    if running is None:
        return False
    pid = int(running["supervisor"])  # type: ignore[call-overload]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


@contextlib.contextmanager
def cluster_running(spec: ClusterSpec, timeout: float = 60, remove: bool = False) -> Iterator[dict[str, object]]:
    """A cluster for a test, a benchmark or the fault suite, stopped afterwards (its folder
    removed too with ``remove``)."""
    try:
        yield start(spec, timeout)
    finally:
        stop(spec.dir)
        if remove:
            shutil.rmtree(spec.dir, ignore_errors=True)


def daphne_pids(workdir: Path = CLUSTER_DIR) -> dict[int, int]:
    """port -> pid of each Daphne process of the running cluster."""
    running = state(workdir) or {}
    children: dict[str, int] = running.get("children", {})  # type: ignore[assignment]
    return {int(name.split("-")[1]): pid for name, pid in children.items() if name.startswith("daphne-")}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m command.cluster")
    sub = parser.add_subparsers(dest="action", required=True)
    start_p = sub.add_parser("start", help="start N Daphne processes behind nginx in the background")
    start_p.add_argument("--processes", type=int, default=int(os.environ.get("CLUSTER_PROCESSES", "2")))
    start_p.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", "8080")))
    start_p.add_argument("--first-backend-port", type=int, default=int(os.environ.get("CLUSTER_BACKEND_PORT", "8101")))
    start_p.add_argument("--replica", action="store_true", help="read map/OGC selectors from the private replica")
    sub.add_parser("stop", help="stop the cluster")
    sub.add_parser("status", help="print the cluster's state")
    supervise_p = sub.add_parser("supervise", help="(internal) run the supervisor in the foreground")
    supervise_p.add_argument("spec")
    args = parser.parse_args(argv[1:])
    if args.action == "supervise":
        spec = ClusterSpec(**json.loads(Path(args.spec).read_text()))
        Supervisor(spec).run()
        return 0
    if args.action == "stop":
        print("cluster: stopped" if stop() else "cluster: not running")
        return 0
    if args.action == "status":
        print(json.dumps(state() or {"running": False}, indent=2))
        return 0
    env: dict[str, str] = {}
    if args.replica:
        from command import localstack

        localstack.start_replica()
        env["DATABASE_REPLICA_URL"] = os.environ.get("DATABASE_REPLICA_URL") or localstack.default_replica_url()
    spec = ClusterSpec(processes=args.processes, port=args.port, first_backend_port=args.first_backend_port, env=env)
    found = start(spec)
    print(f"cluster: {spec.processes} Daphne processes on ports {spec.backend_ports} behind nginx")
    print(f"  GridCommand   {found['url']}/")
    print(f"  health        {found['url']}/healthz   metrics {found['url']}/metrics")
    if args.replica:
        print(f"  map and OGC reads from the replica {env['DATABASE_REPLICA_URL']}")
    print(f"  state         {spec.dir}/cluster.json   logs {spec.dir}/*.log   stop: make cluster-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
