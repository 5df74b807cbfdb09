"""A screen for the tests: a real ``websockets`` client in a background thread.

It validates every message it receives against realtime.messages' schemas, acks heartbeats
and events as the JS client does, and remembers everything for the assertions.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from realtime.messages import server_message_validate

ACK_EVERY = 50


class LiveClient:
    def __init__(
        self,
        url: str,
        *,
        cookie: str | None = None,
        token: str | None = None,
        origin: str | None = None,
        since: int | None = None,
        ack: bool = True,
        read: bool = True,
    ) -> None:
        headers: dict[str, str] = {}
        if cookie:
            headers["Cookie"] = f"sessionid={cookie}"
        if token:
            headers["Authorization"] = f"Token {token}"
        if since is not None:
            url = f"{url}?since={since}"
        self.ack = ack
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.cond = threading.Condition()
        self.ws: ClientConnection = connect(
            url,
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers,
            proxy=None,
            compression=None,
            open_timeout=10,
            max_queue=4 if not read else 16,
        ).__enter__()
        self._unacked = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        if read:
            self.thread.start()

    # --- reading ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            for text in self.ws:
                message = json.loads(text)
                server_message_validate(message)  # every message fits its schema
                with self.cond:
                    self.messages.append(message)
                    if message["type"] == "event":
                        self.events.append(message)
                    self.cond.notify_all()
                if self.ack:
                    self._maybe_ack(message)
        except ConnectionClosed:
            pass
        finally:
            with self.cond:
                self.close_code = self.ws.close_code if self.ws.close_code is not None else 1006
                self.cond.notify_all()

    def _maybe_ack(self, message: dict[str, Any]) -> None:
        if message["type"] == "event":
            self._unacked += 1
        if message["type"] == "heartbeat" or self._unacked >= ACK_EVERY:
            self._unacked = 0
            with contextlib.suppress(ConnectionClosed):
                self.send({"type": "ack", "seq": self.last_seq})

    @property
    def last_seq(self) -> int:
        """What a client resumes from: the highest seq of an event, heartbeat or subscribe."""
        with self.cond:
            seqs = [m["seq"] for m in self.messages if m["type"] in {"event", "heartbeat", "subscribed", "resync"}]
        return max(seqs, default=0)

    def wait_for(self, predicate: Callable[[LiveClient], bool], timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
        return True

    def wait_type(self, kind: str, timeout: float = 10, count: int = 1) -> dict[str, Any]:
        assert self.wait_for(lambda c: len(c.of_type(kind)) >= count, timeout), (
            f"no {kind!r} within {timeout}s; got {[m['type'] for m in self.messages]}"
        )
        return self.of_type(kind)[count - 1]

    def wait_closed(self, timeout: float = 10) -> int:
        assert self.wait_for(lambda c: c.close_code is not None, timeout), "still open"
        assert self.close_code is not None
        return self.close_code

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.cond:
            return [m for m in self.messages if m["type"] == kind]

    def event_seqs(self) -> list[int]:
        with self.cond:
            return [e["seq"] for e in self.events]

    # --- writing ----------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def subscribe(self, layers: list[str], bbox: list[float] | None = None, wait: bool = True) -> dict[str, Any]:
        count = len(self.of_type("subscribed")) + 1
        self.send({"type": "subscribe", "layers": layers, "bbox": bbox})
        return self.wait_type("subscribed", count=count) if wait else {}

    def close(self) -> None:
        self.ws.close()
        if self.thread.is_alive():
            self.thread.join(5)

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a network failure)."""
        assert self.close_code is None, f"the server had closed the connection ({self.close_code})"
        self.ws.socket.shutdown(socket.SHUT_RDWR)
        self.ws.socket.close()
        if self.thread.is_alive():
            self.thread.join(5)
