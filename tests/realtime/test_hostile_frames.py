"""Issue 18: the websocket answers hostile input with a refusal or a short error, never a 500
or a dropped server: an unknown path, a 1 MiB frame, a frame naming a huge field."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.realtime.conftest import user_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/ws/nothing/", "/ws/live/extra", "/", "/ws/live%00/"])
def test_unknown_path_is_refused_at_the_handshake(live_daphne, make_user, path):
    token = user_token(make_user("operator"))
    with pytest.raises(InvalidStatus) as refused:
        connect(live_daphne.ws_url + path, additional_headers={"Authorization": f"Token {token}"}, proxy=None)
    assert refused.value.response.status_code == 403
    assert "Internal Server Error" not in live_daphne.log.read_text()


@pytest.mark.parametrize(
    "frame",
    [
        "x" * (1 << 20),
        # a field name of almost 1 MiB (Daphne's message limit): the error must not echo it
        json.dumps({"type": "subscribe", "layers": ["incidents"], "y" * ((1 << 20) - 100): 1}),
        json.dumps({"type": "subscribe", "layers": ["z" * 20000]}),
        "[" * 20000 + "]" * 20000,
    ],
)
def test_a_huge_or_deep_frame_gets_a_short_error_and_the_connection_goes_on(live_daphne, make_user, frame):
    token = user_token(make_user("operator"))
    with connect(
        live_daphne.ws_url + "/ws/live/",
        additional_headers={"Authorization": f"Token {token}"},
        proxy=None,
        max_size=1 << 16,  # the server's answer must be small
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        ws.send(frame)
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error"
        assert len(error["detail"]) <= 300
        ws.send(json.dumps({"type": "subscribe", "layers": ["incidents"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"


def test_a_frame_over_daphnes_limit_closes_that_connection_only(live_daphne, make_user):
    token = user_token(make_user("operator"))
    headers = {"Authorization": f"Token {token}"}
    with connect(live_daphne.ws_url + "/ws/live/", additional_headers=headers, proxy=None) as ws:
        ws.recv(timeout=10)
        try:
            ws.send("x" * ((1 << 20) + 1))
            ws.recv(timeout=10)
        except Exception:  # noqa: S110 - closed by the server, as intended
            pass
    with connect(live_daphne.ws_url + "/ws/live/", additional_headers=headers, proxy=None) as again:
        assert json.loads(again.recv(timeout=10))["type"] == "hello"
    assert "Internal Server Error" not in live_daphne.log.read_text()
