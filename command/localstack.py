"""The private PostgreSQL + PostGIS cluster and Redis under ``.local/``.

Used by ``make demo`` / ``make test`` (``python -m command.localstack start``) when
``DATABASE_URL`` / ``REDIS_URL`` are not set. Both listen on unix sockets only, in
``.local/run``, so they never collide with a system PostgreSQL on 5432 or Redis on 6379,
nor with another checkout of the project on the same machine.

Standard library only: it runs before Django is configured.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL = BASE_DIR / ".local"
RUN_DIR = LOCAL / "run"
PG_DATA = LOCAL / "pgdata"
PG_LOG = LOCAL / "log" / "postgres.log"
PG_PORT = 55432  # only names the socket file: the cluster has no TCP listener
PG_USER = "gridcommand"
PG_DB = "gridcommand"
REDIS_SOCKET = RUN_DIR / "redis.sock"
REDIS_DIR = LOCAL / "redis"


def default_database_url() -> str:
    return f"postgres://{PG_USER}@/{PG_DB}?host={RUN_DIR}&port={PG_PORT}"


def default_redis_url() -> str:
    return f"unix://{REDIS_SOCKET}"


def _pg_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    for pg_ctl in candidates:
        version = pg_ctl.parent.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return pg_ctl.parent
    if candidates:
        return candidates[0].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    sys.exit("PostgreSQL server binaries not found: run `make deps` (apt-get install postgresql-15-postgis-3).")


def _as_pg_owner() -> list[str]:
    """initdb/postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _chown_to_pg_owner(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def _psql(bindir: Path, sql: str, db: str = "postgres", run: Path = RUN_DIR, port: int = PG_PORT) -> str:
    out = _run(
        [str(bindir / "psql"), "-h", str(run), "-p", str(port), "-U", PG_USER, "-d", db, "-tAc", sql],
        capture_output=True,
    )
    return str(out.stdout).strip()


def _pg_running(bindir: Path, data: Path = PG_DATA) -> bool:
    if not (data / "PG_VERSION").exists():
        return False
    status = subprocess.run(
        [*_as_pg_owner(), str(bindir / "pg_ctl"), "-D", str(data.resolve()), "status"],
        capture_output=True,
        text=True,
    )
    return status.returncode == 0


def _pg_owner_can_reach(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    return subprocess.run([*_as_pg_owner(), "test", "-x", str(path)], capture_output=True).returncode == 0


def _link_outside_if_unreachable(path: Path) -> None:
    """As root, the `postgres` user runs the cluster; when the checkout lies below a folder it may
    not enter (e.g. /root), or its socket path would be too long for a unix socket, keep the
    cluster's folders in /var/tmp and link them from .local/."""
    if not path.is_relative_to(LOCAL):
        return
    too_long = path.name == "run" and len(str(path / ".s.PGSQL.55432.lock")) > 100  # sun_path holds 107 bytes
    if path.exists() or path.is_symlink() or (_pg_owner_can_reach(LOCAL) and not too_long):
        return
    digest = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:12]  # noqa: S324 - a name, not security
    outside = Path("/var/tmp") / f"gridcommand-{digest}" / "-".join(path.relative_to(LOCAL).parts)  # noqa: S108
    outside.mkdir(parents=True, exist_ok=True)
    outside.parent.chmod(0o755)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(outside)


def start_postgres(
    data_dir: Path = PG_DATA, run_dir: Path = RUN_DIR, log_file: Path = PG_LOG, port: int = PG_PORT
) -> None:
    """Start (initdb first when new) a socket-only cluster; the defaults are the private one of
    ``make services``, the fault suite starts another one elsewhere under ``.local/``."""
    bindir = _pg_bindir()
    LOCAL.mkdir(parents=True, exist_ok=True)
    for d in (run_dir, log_file.parent, data_dir):
        _link_outside_if_unreachable(d)
    for d in (run_dir, log_file.parent):
        d.mkdir(parents=True, exist_ok=True)
        _chown_to_pg_owner(d)
    # The server gets real paths: a link from .local/ may pass through a folder it cannot enter.
    data, run, log = data_dir.resolve(), run_dir.resolve(), log_file.resolve()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        _chown_to_pg_owner(data)
        print(f"localstack: initdb {data}")
        _run(
            [
                *_as_pg_owner(),
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            capture_output=True,
        )
    if not _pg_running(bindir, data):
        print("localstack: starting PostgreSQL on", run_dir, port)
        _pg_ctl_start(bindir, data, run, log, port)
    exists_sql = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"  # noqa: S608 - a constant
    if _psql(bindir, exists_sql, run=run, port=port) != "1":
        _psql(bindir, f"CREATE DATABASE {PG_DB}", run=run, port=port)
    _psql(bindir, "CREATE EXTENSION IF NOT EXISTS postgis", db=PG_DB, run=run, port=port)
    # pytest-django creates test databases from template1: give them PostGIS too.
    _psql(bindir, "CREATE EXTENSION IF NOT EXISTS postgis", db="template1", run=run, port=port)


def _pg_ctl_start(bindir: Path, data: Path, run: Path, log: Path, port: int) -> None:
    _run(
        [
            *_as_pg_owner(),
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-c listen_addresses='' -k {run} -p {port} -c max_connections=300 -c shared_buffers=256MB",
            "start",
        ],
        capture_output=True,
    )


def stop_postgres(data_dir: Path = PG_DATA, mode: str = "fast") -> None:
    bindir = _pg_bindir()
    if _pg_running(bindir, data_dir):
        print("localstack: stopping PostgreSQL", data_dir)
        _run(
            [*_as_pg_owner(), str(bindir / "pg_ctl"), "-D", str(data_dir.resolve()), "-m", mode, "-w", "stop"],
            capture_output=True,
        )


# --- a streaming replica of the private cluster (make cluster; the replica-routing tests) ----

REPLICA_DATA = LOCAL / "pgreplica"
REPLICA_LOG = LOCAL / "log" / "postgres-replica.log"
REPLICA_PORT = 55433  # names its socket in .local/run, beside the primary's


def default_replica_url() -> str:
    return f"postgres://{PG_USER}@/{PG_DB}?host={RUN_DIR}&port={REPLICA_PORT}"


def start_replica(
    data_dir: Path = REPLICA_DATA,
    run_dir: Path = RUN_DIR,
    log_file: Path = REPLICA_LOG,
    port: int = REPLICA_PORT,
    primary_run: Path = RUN_DIR,
    primary_port: int = PG_PORT,
) -> None:
    """A hot standby of the primary, streaming its WAL: ``pg_basebackup -R`` the first time
    (the primary's ``local replication`` trust rule from initdb lets it in over the socket)."""
    bindir = _pg_bindir()
    for d in (run_dir, log_file.parent, data_dir):
        _link_outside_if_unreachable(d)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    data, run, log = data_dir.resolve(), run_dir.resolve(), log_file.resolve()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        _chown_to_pg_owner(data)
        print(f"localstack: pg_basebackup of the primary into {data}")
        _run(
            [
                *_as_pg_owner(),
                str(bindir / "pg_basebackup"),
                "-h",
                str(primary_run.resolve()),
                "-p",
                str(primary_port),
                "-U",
                PG_USER,
                "-D",
                str(data),
                "-R",  # standby.signal + primary_conninfo: a streaming replica
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            capture_output=True,
        )
    if not _pg_running(bindir, data):
        print("localstack: starting the PostgreSQL replica on", run_dir, port)
        _pg_ctl_start(bindir, data, run, log, port)


def stop_replica(data_dir: Path = REPLICA_DATA) -> None:
    if (data_dir / "PG_VERSION").exists():
        stop_postgres(data_dir)


def redis_ping(path: Path = REDIS_SOCKET) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(sock: Path, workdir: Path) -> None:
    """Start a socket-only Redis (also used by tests that restart Redis mid-stream)."""
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(redis_server).exists():
        sys.exit("redis-server not found: run `make deps` (apt-get install redis-server).")
    workdir.mkdir(parents=True, exist_ok=True)
    sock.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            redis_server,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(workdir / "redis.pid"),
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
    )
    for _ in range(100):
        if redis_ping(sock):
            return
        time.sleep(0.05)
    sys.exit(f"Redis did not answer on {sock}; see {workdir / 'redis.log'}")


def stop_redis_server(sock: Path, workdir: Path) -> None:
    pidfile = workdir / "redis.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 15)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
    except (ProcessLookupError, ValueError):
        pass
    pidfile.unlink(missing_ok=True)


def start_redis() -> None:
    if redis_ping():
        return
    print("localstack: starting Redis on", REDIS_SOCKET)
    start_redis_server(REDIS_SOCKET, REDIS_DIR)


def stop_redis() -> None:
    if redis_ping():
        print("localstack: stopping Redis")
    stop_redis_server(REDIS_SOCKET, REDIS_DIR)


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "start"
    if action == "start":
        if os.environ.get("DATABASE_URL"):
            print("localstack: DATABASE_URL is set, not starting a private PostgreSQL")
        else:
            start_postgres()
        if os.environ.get("REDIS_URL"):
            print("localstack: REDIS_URL is set, not starting a private Redis")
        else:
            start_redis()
        return 0
    if action == "replica":
        start_replica()
        return 0
    if action == "stop":
        stop_replica()
        stop_redis()
        if (PG_DATA / "PG_VERSION").exists():
            stop_postgres()
        return 0
    print("usage: python -m command.localstack start|replica|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
