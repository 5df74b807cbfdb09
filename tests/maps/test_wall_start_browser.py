"""How the control-room wall starts (headless Chromium, a real Daphne, PostGIS and Redis): it asks
for its first numbers (``/control/api/state.json``) and its first snapshot of the map's open
incidents at once, while its streams connect, and each stream's first resync takes them only if
they count every event up to the resync's seq (``seq`` in the state, ``X-Event-Seq`` on the
GeoJSON); an older answer is asked for again, so nothing committed before the stream was
subscribed is missed."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from command.eventlog import latest_seq
from command.models import Incident
from tests.maps.test_wall_browser import ENV, READY, feed_count, submit
from tests.maps.test_wall_browser import people as wall_people  # noqa: F401 - a fixture, by this name
from tests.support import DaphneServer, daphne_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

QUIET = {**ENV, "PERIODIC_JOBS_SECONDS": "0"}  # no SLA job: no event but the test's own
OPEN = ",".join(Incident.OPEN_STATUSES)


def get(server: DaphneServer, path: str, cookie: str) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(server.url + path, headers={"Cookie": f"sessionid={cookie}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), dict(response.headers)


Answers = dict[str, tuple[bytes, dict[str, str]]]


def open_wall(chromium: Any, server: DaphneServer, cookie: str, answers: Answers) -> Any:
    """The wall, with the first answer to each path in ``answers`` replaced by the one given (a
    real answer of the same server, read earlier); every request to a path of ``answers`` counted."""
    context = chromium.new_context(viewport={"width": 1920, "height": 1080})
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
    page = context.new_page()
    page.asked = dict.fromkeys(answers, 0)  # type: ignore[attr-defined]

    def route(path: str) -> Any:
        def handle(r: Any) -> None:
            page.asked[path] += 1
            if page.asked[path] == 1 and answers[path][0]:
                body, headers = answers[path]
                r.fulfill(status=200, headers=headers, body=body)
            else:
                r.continue_()

        return handle

    for path in answers:
        page.route(f"**{path}*", route(path))
    page.goto(server.url + "/control/")
    page.wait_for_function(READY + " && GridWall.mapLoaded", timeout=20000)
    return page


def what_it_shows(page: Any, incident_id: int) -> dict[str, Any]:
    """Half a second after the wall is ready: the requests counted, the incident in the feed and
    on the map, the open total and the stream's status; the page is closed."""
    page.wait_for_timeout(500)
    seen = {
        "asked": dict(page.asked),
        "in_feed": feed_count(page, incident_id),
        "on_map": page.evaluate(f"GridWall.markers['{incident_id}'] !== undefined"),
        "open_total": page.evaluate("GridWall.kpis.open_total"),
        "status": page.evaluate("GridWall.status"),
    }
    page.context.close()
    return seen


def test_first_answers_older_than_the_streams_are_asked_for_again(wall_people, chromium) -> None:  # noqa: F811 - the fixture above
    cookie = wall_people["cookie"]
    with daphne_server(extra_env=QUIET) as server:
        # given: the numbers and the open incidents as they were before a report
        old_state = get(server, "/control/api/state.json", cookie)
        old_map = get(server, f"/maps/layers/incidents.geojson?status={OPEN}&limit=5000", cookie)
        # when: a report commits, then the wall opens and its first two requests get those answers
        incident_id = submit(wall_people["reference"], "sanitation", 117.0006, 39.0006).incident_id
        page = open_wall(
            chromium,
            server,
            cookie,
            {"/control/api/state.json": old_state, "/maps/layers/incidents.geojson": old_map},
        )
        # then: each stream's resync came after the report, so both were asked again, and the
        # report's incident is in the feed, on the map and in the numbers
        seen = what_it_shows(page, incident_id)
    assert json.loads(old_state[0])["seq"] < latest_seq()  # the answers served first were older
    assert int(old_map[1]["X-Event-Seq"]) < latest_seq()
    assert seen["asked"] == {"/control/api/state.json": 2, "/maps/layers/incidents.geojson": 2}
    assert seen["in_feed"] == 1
    assert seen["on_map"] is True
    assert seen["open_total"] == Incident.objects.filter(status__in=Incident.OPEN_STATUSES).count()


def test_a_quiet_start_takes_the_first_answers(wall_people, chromium) -> None:  # noqa: F811 - the fixture above
    cookie = wall_people["cookie"]
    incident_id = submit(wall_people["reference"], "sanitation", 117.0006, 39.0006).incident_id
    with daphne_server(extra_env=QUIET) as server:
        # when: the wall opens and nothing commits meanwhile (its own requests, only counted)
        counted: Answers = {"/control/api/state.json": (b"", {}), "/maps/layers/incidents.geojson": (b"", {})}
        page = open_wall(chromium, server, cookie, counted)
        seen = what_it_shows(page, incident_id)
    # then: one request each, asked before the streams were subscribed and taken by their resync
    assert seen["asked"] == {"/control/api/state.json": 1, "/maps/layers/incidents.geojson": 1}
    assert seen["in_feed"] == 1
    assert seen["on_map"] is True
    assert seen["status"] == "live"
