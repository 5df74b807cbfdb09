"""Real servers for tests: a Daphne process on the test database, and headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_url() -> str:
    """The URL of the database the test run is using right now (pytest-django's test DB)."""
    db = settings.DATABASES["default"]
    host = db["HOST"] or ""
    query = f"?host={host}&port={db['PORT']}" if host.startswith("/") else ""
    netloc = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else (f"{db['USER']}@" if db["USER"] else "")
    if not host.startswith("/") and host:
        netloc += f"{host}:{db['PORT'] or 5432}"
    return f"postgres://{netloc}/{db['NAME']}{query}"


@dataclass
class DaphneServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextmanager
def daphne_server(extra_env: dict[str, str] | None = None, port: int | None = None) -> Iterator[DaphneServer]:
    """Start ``daphne command.asgi:application`` on a free port against the test database.
    Data the test wants it to see must be committed (use ``transactional_db``)."""
    port = port or free_port()
    log = BASE_DIR / ".local" / "log" / f"daphne-test-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "command.test_settings",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CHANNEL_PREFIX": os.environ["CHANNEL_PREFIX"],
        "DB_POOL_MIN": "1",
        **(extra_env or {}),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server must never run ORM code in its event loop
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "command.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = DaphneServer(process, port, log)
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core CI machine has taken more than 30 s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not answer on {server.url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def chromium_launch_kwargs() -> dict[str, object]:
    """Debian's Chromium, never a downloaded browser (see SETUP-NOTES.md)."""
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


def field_app_login(page: Any, base_url: str, username: str, password: str = "pw-for-tests-1") -> None:
    """Open the field app (/field/) in a Playwright ``page`` and log in with its own form."""
    page.goto(f"{base_url}/field/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def site_login(page: Any, base_url: str, next_path: str, username: str, password: str = "pw-for-tests-1") -> None:
    """Log in through the site's login page and land on ``next_path``."""
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_url(f"**{next_path}")


def response_body(response: Any) -> bytes:
    """The whole body of a Django test response, streamed (exports, large GeoJSON) or not."""
    if not response.streaming:
        return bytes(response.content)
    from asgiref.sync import async_to_sync

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return bytes(async_to_sync(collect)())
