"""What the benchmarks share: their own database next to the app's, and real Daphne processes.

Scripts in bench/ run as ``python bench/<name>.py``, so this module is importable as ``benchlib``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
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
