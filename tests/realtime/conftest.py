"""Fixtures for the real-time tests: real Daphne, real Redis, real PostGIS, real websockets."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from django.test import Client
from rest_framework.authtoken.models import Token

from command.models import Category, Report
from command.services.reports import report_submit
from tests.realtime.live_client import LiveClient
from tests.support import DaphneServer


def session_cookie(user: User) -> str:
    """Log in through Django's session machinery; the cookie a browser would carry."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def user_token(user: User) -> str:
    token, _created = Token.objects.get_or_create(user=user)
    return token.key


@pytest.fixture
def screens(live_daphne: DaphneServer) -> Iterator[Callable[..., LiveClient]]:
    """``screens(user, since=None, via="cookie")``: a connected LiveClient on live_daphne."""
    opened: list[LiveClient] = []

    def open_screen(
        user: User, *, via: str = "cookie", server: DaphneServer | None = None, **kwargs: Any
    ) -> LiveClient:
        server = server or live_daphne
        url = f"{server.ws_url}/ws/live/"
        if via == "cookie":
            client = LiveClient(url, cookie=session_cookie(user), origin=server.url, **kwargs)
        else:
            client = LiveClient(url, token=user_token(user), **kwargs)
        opened.append(client)
        return client

    yield open_screen
    for client in opened:
        with contextlib.suppress(Exception):  # already closed by the test
            client.close()


@pytest.fixture
def submit(reference: dict[str, Category], grid: Any) -> Callable[..., Report]:
    """``submit(note="...", lon=..., lat=...)``: a report through the service, committed."""

    def make(
        *,
        note: str = "电梯困人",
        lon: float = 117.0005,
        lat: float = 39.0005,
        category: str = "elevator_fault",
        reporter: User | None = None,
    ) -> Report:
        return report_submit(
            reporter_id=reporter.pk if reporter else None,
            client_id=uuid.uuid4(),
            category=reference[category],
            location=Point(lon, lat, srid=4326),
            note=note,
        ).report

    return make
