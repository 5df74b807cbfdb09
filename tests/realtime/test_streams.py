"""Completeness and order under load and failure: every event once, in seq order."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from command import eventlog, localstack
from command.eventlog import latest_seq
from command.models import Report
from tests.realtime.conftest import session_cookie
from tests.realtime.live_client import LiveClient
from tests.support import daphne_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Reports spread over a 10 x 10 lattice of the test grid, so they open distinct incidents.
LONS = [117.0001 + 0.00018 * i for i in range(10)]
LATS = [39.0001 + 0.00008 * i for i in range(10)]


def _write_reports(submit, count: int, writers: int, pause: float = 0.0, until: threading.Event | None = None) -> int:
    """``count`` reports (or, with ``until``, at least ``count`` and on until it is set) from
    ``writers`` concurrent threads, 2 events each; returns how many."""
    errors: list[BaseException] = []
    written = [0] * writers

    def writer(index: int) -> None:
        try:
            n = index
            while n < count or (until is not None and not until.is_set()):
                submit(note=f"r{n}", lon=LONS[n % 10], lat=LATS[(n // 10) % 10])
                written[index] += 1
                n += writers
                if pause:
                    time.sleep(pause)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return sum(written)


def _assert_exactly_once_in_order(seqs: list[int], first: int, last: int) -> None:
    assert seqs == sorted(seqs), "out of order"
    assert len(seqs) == len(set(seqs)), f"duplicates {[s for s, n in Counter(seqs).items() if n > 1]}"
    assert seqs == list(range(first, last + 1)), f"missing {sorted(set(range(first, last + 1)) - set(seqs))[:10]}"


def _arrives_by_wake(client: LiveClient, submit, **kwargs) -> bool:
    """Right after a heartbeat (every 3 s) submit a report: arriving within 1.5 s means it came
    by its wake, not by the next heartbeat."""
    beats = len(client.of_type("heartbeat"))
    client.wait_type("heartbeat", count=beats + 1, timeout=5)
    events = len(client.events)
    submit(**kwargs)
    return client.wait_for(lambda c: len(c.events) > events, timeout=1.5)


def test_500_events_from_concurrent_writers_reach_5_screens_complete_and_in_order(screens, make_user, submit):
    # given
    operator = make_user("operator")
    clients = [screens(operator) for _ in range(5)]
    start = min(c.subscribe(["incidents", "reports"])["seq"] for c in clients)
    # when: 250 reports = 500 events from 5 concurrent writers
    _write_reports(submit, 250, writers=5)
    end = latest_seq()
    assert end - start == 500
    # then
    for client in clients:
        assert client.wait_for(lambda c: len(c.events) >= 500, timeout=60), len(client.events)
    time.sleep(0.5)
    for client in clients:
        seqs = client.event_seqs()
        if len(seqs) != len(set(seqs)):
            import json

            with open("/tmp/dup_msgs.json", "w") as f:
                json.dump(client.messages, f)
        _assert_exactly_once_in_order(client.event_seqs(), start + 1, end)


def test_event_committed_without_a_wake_arrives_with_the_heartbeat(screens, make_user, submit, monkeypatch):
    # given
    screen = screens(make_user("operator"))
    screen.subscribe(["reports"])
    # when: the process "crashes" between commit and wake: the wake is never sent
    monkeypatch.setattr(eventlog, "wakes_send", lambda wires: None)
    submit(note="no wake")
    sent_at = time.monotonic()
    # then: the heartbeat (every 3 s) finds it in the log
    assert screen.wait_for(lambda c: len(c.events) == 1, timeout=5)
    assert time.monotonic() - sent_at < 4.5
    assert Report.objects.get(pk=screen.events[0]["object_id"]).note == "no wake"
    assert screen.wait_type("heartbeat")["seq"] == screen.events[0]["seq"]


def test_idle_screen_still_receives_by_wake_after_15_seconds(screens, make_user, submit):
    # redis-py 8 with a 5 s read timeout killed idle channel-layer readers after ~12 s (SETUP-NOTES)
    screen = screens(make_user("operator"))
    screen.subscribe(["reports"])
    time.sleep(15)
    assert _arrives_by_wake(screen, submit, note="after a quiet while")
    assert Report.objects.get(pk=screen.events[0]["object_id"]).note == "after a quiet while"


def test_redis_restart_and_dropped_connections_lose_nothing(make_user, submit, settings):
    """A private, throwaway Redis for this test only: restarted mid-stream while screens lose
    their connections and resume with ``since``."""
    workdir = Path(tempfile.mkdtemp(prefix="gcr"))
    sock = workdir / "redis.sock"
    localstack.start_redis_server(sock, workdir)
    eventlog.wakes_flush()  # the fixtures' wakes are out before the channel layer changes
    layers = {**settings.CHANNEL_LAYERS["default"]}
    layers["CONFIG"] = {**layers["CONFIG"], "hosts": [{**layers["CONFIG"]["hosts"][0], "address": f"unix://{sock}"}]}
    settings.CHANNEL_LAYERS = {"default": layers}  # the writers' wakes go to the throwaway Redis too
    operator = make_user("operator")
    cookie = session_cookie(operator)
    try:
        with daphne_server(extra_env={"REDIS_URL": f"unix://{sock}"}) as server:
            url = f"{server.ws_url}/ws/live/"

            def connect(since: int | None = None) -> LiveClient:
                client = LiveClient(url, cookie=cookie, origin=server.url, since=since)
                client.subscribe(["incidents", "reports"])
                return client

            clients = [connect() for _ in range(3)]
            start = min(c.of_type("subscribed")[0]["seq"] for c in clients)
            received: list[list[int]] = [[] for _ in clients]
            stop_writing = threading.Event()
            written: list[int] = []
            writer = threading.Thread(
                target=lambda: written.append(_write_reports(submit, 20, writers=2, pause=0.05, until=stop_writing))
            )
            writer.start()
            # when: client 0 and 1 lose their connection 3 times each, and Redis restarts mid-stream
            for round_ in range(3):
                time.sleep(0.3)
                if round_ == 1:
                    localstack.stop_redis_server(sock, workdir)
                    time.sleep(0.3)
                    localstack.start_redis_server(sock, workdir)
                for i in (0, 1):
                    clients[i].abort()  # first: nothing arrives after what it holds
                    received[i].extend(clients[i].event_seqs())
                    clients[i] = connect(since=clients[i].last_seq)
            time.sleep(0.3)
            stop_writing.set()
            writer.join(60)
            end = latest_seq()
            assert end - start == 2 * written[0] >= 40
            # then: after the heartbeat has healed what the restart lost, each holds every event once
            for i, client in enumerate(clients):
                assert client.wait_for(lambda c: c.last_seq >= end, timeout=15), (i, client.last_seq, end)
                received[i].extend(client.event_seqs())
                assert not client.of_type("resync") or all(
                    r["reason"] == "initial" for r in client.of_type("resync")
                ), "a resume within retention must replay, not resync"
            time.sleep(0.5)
            for seqs in received:
                _assert_exactly_once_in_order(seqs, start + 1, end)
            # and wakes flow again through the restarted Redis
            assert _arrives_by_wake(clients[2], submit)
    finally:
        localstack.stop_redis_server(sock, workdir)
