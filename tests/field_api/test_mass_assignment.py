"""Mass assignment (issue 13): read-only and privileged fields cannot be set through any write.

The writes are not listed by hand: every POST/PUT/PATCH operation of the API is enumerated from
its routes with drf-spectacular (as /api/schema/ is built), with the request serializer each
declares. Two checks per operation:

- the declaration: the request serializer, and every serializer nested in it, refuses fields it
  does not declare (``StrictInputSerializer``); an operation that takes no fields is checked
  over HTTP like the others;
- over HTTP, as an administrator (no permission check stops the request first): a body with
  the fields the server sets (an id, a status, a grid cell, a reporter, the times; and every
  field of the operation's declared response that its input does not declare) answers 400
  naming each of them, and nothing is written."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework import serializers
from rest_framework.test import APIClient

from command.models import Event
from command.services.campaigns import campaign_create
from command.services.registry import household_create
from command.services.reports import report_submit
from command.services.requests import request_submit
from field_api.serializers import StrictInputSerializer
from field_api.throttles import DEFAULT_RATES
from tests.registry_support import footprint

WRITES = ("POST", "PUT", "PATCH")
# Fields a server sets on the records these operations write; each is refused where an input
# does not declare it (the operation's response fields are added to these).
SERVER_SET = ("id", "pk", "status", "grid_cell", "grid_cell_id", "reporter", "reporter_id", "user", "created_at")


def _operations() -> list[tuple[str, str, Any, Any]]:
    """(method, path, request serializer or None, responses) of every write operation of the API."""
    generator = SchemaGenerator()
    out = []
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        if method not in WRITES:
            continue
        view = generator.create_view(callback, method)
        request = view.schema.get_request_serializer()
        response = view.schema.get_response_serializers()
        out.append((method, path, request, response))
    return out


OPERATIONS = _operations()


def _serializers(declared: Any) -> list[serializers.Serializer]:
    """The serializers a declaration names (one, or one per media type), as instances."""
    found = declared.values() if isinstance(declared, dict) else [declared]
    return [s() if isinstance(s, type) else s for s in found if s is not None]


def _nested(serializer: serializers.BaseSerializer) -> list[serializers.BaseSerializer]:
    """The serializer and every serializer nested in its fields (lists of them too)."""
    out: list[serializers.BaseSerializer] = [serializer]
    for field in getattr(serializer, "fields", {}).values():
        child = field.child if isinstance(field, serializers.ListSerializer | serializers.ListField) else field
        if isinstance(child, serializers.BaseSerializer):
            out += _nested(child)
    return out


def _fields(declared: Any) -> set[str]:
    return {name for s in _serializers(declared) for name in getattr(s, "fields", {})}


def _response_fields(response: Any) -> set[str]:
    found = [v for k, v in response.items() if str(k) in ("200", "201")] if isinstance(response, dict) else [response]
    names: set[str] = set()
    for item in found:
        item = getattr(item, "response", item)  # OpenApiResponse
        for s in _serializers(item) if item is not None and not isinstance(item, str | int) else []:
            s = getattr(s, "child", s)
            names |= set(getattr(s, "fields", {}))
    return names


def test_every_write_is_enumerated() -> None:
    paths = {f"{m} {p}" for m, p, _req, _resp in OPERATIONS}
    assert {"POST /api/v1/reports/", "POST /api/v1/households/{pk}/visits/", "POST /api/v1/requests/"} <= paths
    assert "POST /open311/v2/requests.json" in paths


@pytest.mark.parametrize(("method", "path", "request_", "response"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_every_declared_input_refuses_undeclared_fields(method, path, request_, response) -> None:
    for serializer in _serializers(request_):
        for nested in _nested(serializer):
            assert isinstance(nested, StrictInputSerializer), (
                f"{method} {path}: {type(nested).__name__} must refuse fields it does not declare "
                "(derive it from field_api.serializers.StrictInputSerializer)"
            )


@pytest.fixture
def world(grid, reference, make_user: Callable[..., User]) -> dict[str, Any]:
    """One record of each kind a write's path names, and an administrator."""
    reporter = make_user("grid_worker", team="road", cells=["A-01"])
    report = report_submit(
        reporter_id=reporter.pk,
        client_id=uuid.uuid4(),
        category=reference["road_damage"],
        location=Point(117.0005, 39.0005, srid=4326),
        note="路面塌陷",
    ).report
    from command.services.places import building_save

    building = building_save(footprint=footprint(117.0006, 39.0004), address="东楼", floors=3)
    household = household_create(
        building=building,
        unit="101",
        members=[{"full_name": "张小明", "relation": "head", "resident_type": "registered"}],
    )
    campaign = campaign_create(actor_id=None, name="走访", kind="census", target_kind="households", cell_codes=["A-01"])
    admin = make_user("admin")
    request = request_submit(channel="phone", title="电梯故障", requester_phone="13800000001", actor=admin)
    return {
        "incidents": report.incident_id,
        "households": household.pk,
        "campaigns": campaign.pk,
        "requests": request.pk,
        "layer": "households",
        "feature_id": household.pk,
        "admin": admin,
    }


def _url(path: str, world: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "pk":
            resource = path[: match.start()].rstrip("/").rsplit("/", 1)[-1]
            assert resource in world, f"{path}: add a record of {resource} to the world fixture"
            return str(world[resource])
        assert name in world, f"{path}: add a value of {name} to the world fixture"
        return str(world[name])

    return re.sub(r"\{(\w+)\}", value, path)


def _named(answer: Any, field: str) -> bool:
    body = answer.json()
    if isinstance(body, list):  # Open311's error list
        return any(str(item.get("description", "")).startswith(f"{field}:") for item in body)
    return field in body


@pytest.mark.parametrize(("method", "path", "request_", "response"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_no_write_takes_a_field_the_server_sets(method, path, request_, response, world, settings) -> None:
    # given an administrator (every permission) and the records the path names
    settings.FIELD_API_RATES = dict.fromkeys(DEFAULT_RATES)
    client = APIClient()
    client.force_authenticate(world["admin"])
    declared = _fields(request_)
    privileged = sorted((set(SERVER_SET) | _response_fields(response)) - declared)
    media = list(request_) if isinstance(request_, dict) else ["application/json"]
    events = Event.objects.count()
    # when a body carries the fields the server sets (as JSON, or as a form where only forms are taken)
    for field in privileged:
        body = {field: "1"}
        if "application/json" in media:
            answer = client.generic(method, _url(path, world), data=json.dumps(body), content_type="application/json")
        else:
            answer = getattr(client, method.lower())(_url(path, world), body)
        # then 400, naming the field
        assert answer.status_code == 400, (method, path, field, answer.status_code, answer.content[:300])
        assert _named(answer, field), (method, path, field, answer.json())
    # and nothing was written
    assert Event.objects.count() == events, (method, path)
