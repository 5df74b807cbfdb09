"""Fixtures of the field API tests: a worker with a token, and an API client speaking as them."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from command.models import GridCell, Worker

# Inside A-01 (117.000-117.001, 39.000-39.001), see tests/conftest.py.
IN_A01 = (117.0005, 39.0005)


@pytest.fixture
def worker_user(make_user: Callable[..., User], grid: dict[str, GridCell]) -> User:
    user = make_user("grid_worker", username="wang", team="road")
    Worker.objects.get(user=user).cells.set([grid["A-01"]])
    return user


@pytest.fixture
def api(worker_user: User) -> APIClient:
    client = APIClient()
    token, _created = Token.objects.get_or_create(user=worker_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT_LANGUAGE="en")
    return client


def client_for(user: User) -> APIClient:
    client = APIClient()
    token, _created = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT_LANGUAGE="en")
    return client


def report_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": str(uuid.uuid4()),
        "category": "road_damage",
        "location": {"type": "Point", "coordinates": list(IN_A01)},
        "accuracy": 12.5,
        "note": "路面塌陷",
        "client_time": "2026-11-28T10:00:00+08:00",
    }
    body.update(overrides)
    return body


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    kwargs: dict[str, Any] = {"exif": exif} if exif is not None else {}
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()
