"""A committed report reaches the screens of a real Daphne; a rolled-back one never does."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from command.eventlog import latest_seq
from command.models import Report

pytestmark = pytest.mark.django_db(transaction=True)


def test_committed_report_reaches_a_subscribed_screen(screens, make_user, submit):
    # given
    operator = make_user("operator")
    screen = screens(operator)
    hello = screen.wait_type("hello")
    assert "reports" in hello["layers"]
    subscribed = screen.subscribe(["incidents", "reports"])
    assert screen.wait_type("resync")["reason"] == "initial"  # no since: load the snapshot
    # when
    report = submit(note="3 号楼电梯困人")
    # then
    assert screen.wait_for(lambda c: len(c.events) == 2)
    incident_event, report_event = screen.events
    assert [e["seq"] for e in screen.events] == [subscribed["seq"] + 1, subscribed["seq"] + 2]
    assert (incident_event["kind"], incident_event["layer"]) == ("incident.created", "incidents")
    assert report_event["kind"] == "report.created"
    assert report_event["object_id"] == str(report.pk)
    assert report_event["payload"]["properties"]["note"] == "***"  # personal data masked (the log holds it so)
    assert report_event["payload"]["geometry"] == {"type": "Point", "coordinates": [117.0005, 39.0005]}


def test_rolled_back_report_never_reaches_a_screen(screens, make_user, submit):
    # given
    screen = screens(make_user("operator"))
    screen.subscribe(["incidents", "reports"])
    before = latest_seq()
    # when: the report is written, then its transaction rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        submit(note="never committed")
        raise RuntimeError("rollback")
    # ... and a later report commits
    submit(note="committed")
    # then: only the committed one arrives, with the seq the rolled-back one did not keep
    assert screen.wait_for(lambda c: len(c.events) == 2)
    time.sleep(0.5)
    reports = [e for e in screen.events if e["layer"] == "reports"]
    assert [Report.objects.get(pk=e["object_id"]).note for e in reports] == ["committed"]
    assert screen.event_seqs() == [before + 1, before + 2]


def test_token_client_without_origin_is_accepted(screens, make_user, submit):
    screen = screens(make_user("operator"), via="token")
    screen.subscribe(["reports"])
    submit()
    assert screen.wait_for(lambda c: len(c.events) == 1)
    assert screen.events[0]["layer"] == "reports"
