"""command/asgi.py: Daphne hands POST bodies to the application unparsed (Twisted's form parsing
is off), and the application still gets every kind of body whole."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest
import requests
from twisted.internet.testing import StringTransport
from twisted.web import http

from command.models import Report, ReportPhoto
from tests.field_api.conftest import image_bytes, report_body


def test_daphne_requests_leave_form_bodies_to_the_application():
    # given: the application loaded, as Daphne loads it
    from daphne.http_protocol import WebRequest

    import command.asgi  # noqa: F401

    channel = http.HTTPChannel()
    channel.makeConnection(StringTransport())
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
    # then: Twisted does not parse a POST's form body for Daphne's requests (its own are unchanged)
    assert WebRequest(channel)._parsePOSTFormSubmission is False
    assert http.Request(channel)._parsePOSTFormSubmission is True


@pytest.mark.slow
def test_multipart_and_form_posts_arrive_whole_through_daphne(live_daphne, grid, make_user):
    # given: a worker who logs in with a form, then reports with a photo (multipart)
    make_user("grid_worker", username="lobby", team="road", password="pw-lobby-12345")
    # when: the token is asked for with an urlencoded form
    answer = requests.post(
        f"{live_daphne.url}/api/v1/auth/token/", data={"username": "lobby", "password": "pw-lobby-12345"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    # ... and a report goes as multipart with its photo
    body = report_body(client_id=str(uuid.uuid4()))
    fields = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in body.items()}
    sent = requests.post(
        f"{live_daphne.url}/api/v1/reports/",
        data=fields,
        files={"photos": ("lift.jpg", image_bytes(size=(320, 240)), "image/jpeg")},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    # then: both bodies reached Django whole
    assert sent.status_code == 201, sent.text
    assert Report.objects.filter(client_id=body["client_id"]).count() == 1
    assert ReportPhoto.objects.filter(report__client_id=body["client_id"]).count() == 1
