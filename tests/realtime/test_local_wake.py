"""Reports posted to the Daphne process that also serves the screens: the wake reaches those
screens directly on the event loop (command.eventlog's local listener, realtime.hub) and again
through Redis; each screen still holds every event once, in seq order, and a screen on another
Daphne process gets the same through Redis."""

from __future__ import annotations

import http.client
import json
import threading
import uuid

import pytest

from command.eventlog import latest_seq
from command.models import Report
from tests.realtime.conftest import user_token
from tests.support import daphne_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _post_reports(port: int, token: str, count: int, writers: int) -> list[int]:
    """``count`` JSON reports over keep-alive HTTP from ``writers`` threads; one in five with a
    query string, so Django (a sync view in a thread) writes those and the lean path the rest."""
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n in range(index, count, writers):
            body = {
                "client_id": str(uuid.uuid4()),
                "category": "road_damage",
                "location": {
                    "type": "Point",
                    "coordinates": [117.0001 + 0.00018 * (n % 10), 39.0001 + 0.00008 * (n // 10)],
                },
                "note": f"r{n}",
            }
            path = "/api/v1/reports/" + ("?via=django" if n % 5 == 0 else "")
            conn.request(
                "POST", path, json.dumps(body), {"Authorization": f"Token {token}", "Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            with lock:
                statuses.append(response.status)
        conn.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_reports_posted_to_the_screens_process_arrive_once_in_order(live_daphne, screens, make_user, grid):
    # given: 4 screens on the Daphne that takes the reports, 1 on another Daphne process
    operator = make_user("operator")
    worker = make_user("grid_worker", team="road")
    token = user_token(worker)
    start = latest_seq()
    local = [screens(operator) for _ in range(4)]
    with daphne_server() as other:
        remote = screens(operator, server=other)
        for screen in [*local, remote]:
            screen.subscribe(["reports", "incidents"])
        # when: 60 reports from 4 concurrent phones
        statuses = _post_reports(live_daphne.port, token, count=60, writers=4)
        # then: every one stored once ...
        assert statuses.count(201) == 60, [s for s in statuses if s != 201]
        assert Report.objects.count() == 60
        end = latest_seq()
        assert end - start == 120
        # ... and every screen holds each of the 120 events once, in seq order
        for screen in [*local, remote]:
            assert screen.wait_for(lambda c: c.event_seqs() and c.event_seqs()[-1] >= end, timeout=15)
            seqs = screen.event_seqs()
            assert seqs == list(range(start + 1, end + 1)), (len(seqs), len(set(seqs)))
