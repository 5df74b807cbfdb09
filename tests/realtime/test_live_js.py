"""realtime/static/realtime/live.js in headless Chromium against a real Daphne: subscribe, load
the snapshot, apply events once and in order, survive a server restart and resume with since."""

from __future__ import annotations

import pytest

from tests.realtime.conftest import session_cookie
from tests.support import daphne_server, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

ENV = {"WHITENOISE_USE_FINDERS": "1"}

SETUP = """
window.events = []; window.statuses = []; window.resyncs = 0;
window.live = GridLive.connect({
  layers: ["incidents", "reports"],
  onEvent(e) { window.events.push(e); },
  onResync() { window.resyncs += 1; return new Promise((r) => setTimeout(r, 200)); },
  onStatus(s) { window.statuses.push(s); },
});
"""


def test_live_js_applies_every_event_once_across_a_server_restart(make_user, submit, chromium):
    # given: an operator's browser with live.js, subscribed
    cookie = session_cookie(make_user("operator"))
    port = free_port()
    page = chromium.new_page()
    with daphne_server(extra_env=ENV, port=port) as server:
        page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
        page.goto(f"{server.url}/accounts/login/")
        page.add_script_tag(url="/static/realtime/live.js")
        page.evaluate(SETUP)
        page.wait_for_function("() => window.statuses.includes('live') && window.resyncs === 1")
        # when: a report arrives live
        submit(note="one")
        page.wait_for_function("() => window.events.length === 2")
    # ... the server goes away; a report commits while the screen is offline
    page.wait_for_function("() => window.statuses[window.statuses.length - 1] === 'offline'")
    submit(note="two", lon=117.0015)
    with daphne_server(extra_env=ENV, port=port):
        # then: it reconnects by itself and resumes from its last seq
        page.wait_for_function("() => window.events.length === 4", timeout=20000)
        submit(note="three", lon=117.0016)
        page.wait_for_function("() => window.events.length === 6", timeout=10000)
        events = page.evaluate("window.events")
        resyncs = page.evaluate("window.resyncs")
        page.evaluate("window.live.close()")
        statuses = page.evaluate("window.statuses")
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs == list(range(seqs[0], seqs[0] + 6))
    reports = [e for e in events if e["layer"] == "reports"]
    assert len({e["object_id"] for e in reports}) == 3, "each of the three reports once"
    # the event log keeps personal data masked (docs/privacy.md): the notes arrive withheld
    assert [e["payload"]["properties"]["note"] for e in reports] == ["***"] * 3
    assert resyncs == 1, "a resume within retention replays; it does not reload the snapshot"
    assert statuses[:2] == ["connecting", "live"] and "offline" in statuses and statuses[-1] == "offline"
