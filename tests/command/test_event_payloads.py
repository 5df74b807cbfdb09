"""Each event kind's payload schema (command/event_payloads.py), derived from the layers."""

from __future__ import annotations

import typing

import pytest
from django.db import transaction
from pydantic import ValidationError

from command.event_payloads import EVENT_KIND_LAYERS, FEATURES, payload_validate
from command.eventlog import EventKind, event_append
from command.layers import LAYERS
from command.models import Event

pytestmark = pytest.mark.django_db


def test_every_kind_has_a_schema_and_every_layer_a_feature_schema():
    assert set(EVENT_KIND_LAYERS) == set(typing.get_args(EventKind))
    assert set(FEATURES) == set(LAYERS)
    for name, model in FEATURES.items():
        properties = model.model_fields["properties"].annotation
        assert set(LAYERS[name].all_fields) <= set(properties.model_fields)  # type: ignore[union-attr]


def _camera(**changes):
    properties = {
        "id": 1,
        "code": "C-1",
        "name": "北门",
        "heading": 90.0,
        "fov": 60.0,
        "range_m": 40.0,
        "status": "online",
        "owner": "",
        "grid_cell_id": None,
    }
    return {"id": "1", "geometry": {"type": "Point", "coordinates": [117.0, 39.0]}, "properties": properties | changes}


def test_a_feature_payload_is_typed_by_its_layers_fields():
    assert payload_validate("camera.updated", "cameras", _camera())["properties"]["heading"] == 90.0
    for wrong in ({"heading": "ninety"}, {"status": 3}, {"unknown_field": 1}):
        with pytest.raises(ValidationError):
            payload_validate("camera.updated", "cameras", _camera(**wrong))
    missing = _camera()
    del missing["properties"]["fov"]
    with pytest.raises(ValidationError):
        payload_validate("camera.updated", "cameras", missing)


def test_a_kind_on_another_layer_is_refused_and_nothing_is_written():
    with pytest.raises(ValueError, match="about the cameras layer"), transaction.atomic():
        event_append(kind="camera.updated", layer="roads", object_id=1, actor_id=None, payload=_camera())
    with pytest.raises(ValidationError), transaction.atomic():
        event_append(kind="camera.updated", layer="cameras", object_id=1, actor_id=None, payload=_camera(fov=None, x=1))
    assert not Event.objects.exists()
