"""A report's values are declared once (command/report_input.py): the model's columns, the
function's input type, the service's checks, the DRF serializers, the lean path's validator, the
receipt and the reports layer all follow the declaration, and the lean validator never takes a
value DRF would refuse or take differently."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from command.layers import LAYERS
from command.models import Report
from command.report_input import REPORT_INPUT, UNSURE, ReportValue, report_values
from command.services.report_rows import SubmitInput
from field_api.fast import FIELDS
from field_api.serializers import ReportInputSerializer, ReportOutputSerializer

# Raw JSON values a phone might send, per kind: the lean path must agree with DRF on each.
SAMPLES: dict[str, list[Any]] = {
    "float": [0, 8, 8.5, -1, 100_000, 100_001, 1e308, 10**400, None, True, "8", [], {}],
    "text": ["", " padded ", "门口有积水", "a\x00b", "\ud800", "x" * 5000, None, 3, []],
    "time": [
        "2026-12-06T10:00:00+08:00",
        "2026-12-06T10:00:00Z",
        "2026-12-06T10:00:00",  # naive: DRF's rules (the current time zone)
        "yesterday",
        "2026-13-40T99:00:00Z",
        None,
        17,
    ],
}


@pytest.mark.parametrize("value", REPORT_INPUT, ids=lambda v: v.name)
def test_every_channel_has_the_declared_value(value: ReportValue) -> None:
    # given the declaration of one value
    # then the model stores it, the function takes it, both APIs read it and the receipt shows it
    assert Report._meta.get_field(value.column).null == (value.kind != "text")
    assert value.column in {f.name for f in dataclasses.fields(SubmitInput)}
    assert value.name in ReportInputSerializer().fields
    assert value.name in FIELDS
    assert value.name in ReportOutputSerializer().fields
    assert (value.column in LAYERS["reports"].all_fields) == value.on_layer
    if value.on_layer:
        assert (value.column in LAYERS["reports"].sensitive_fields) == value.sensitive


@pytest.mark.parametrize(
    ("value", "raw"),
    [(v, raw) for v in REPORT_INPUT for raw in SAMPLES[v.kind]],
    ids=lambda x: x.name if isinstance(x, ReportValue) else repr(x)[:20],
)
def test_the_lean_validator_takes_only_what_drf_takes_alike(value: ReportValue, raw: Any) -> None:
    # given one raw value of a JSON report
    field = ReportInputSerializer().fields[value.name]
    # when the lean path and DRF read it
    lean = value.lean(raw)
    try:
        drf: Any = field.run_validation(raw)
    except Exception:  # DRF's ValidationError: refused
        drf = UNSURE
    # then the lean path takes a value only when DRF takes the same one (else DRF answers)
    if lean is not UNSURE:
        assert drf is not UNSURE, (raw, lean)
        assert lean == drf, (raw, lean, drf)
        if isinstance(lean, datetime):
            assert lean.utcoffset() == drf.utcoffset()


def test_a_missing_value_takes_its_default_and_drf_agrees() -> None:
    serializer = ReportInputSerializer()
    for value in REPORT_INPUT:
        assert value.lean(UNSURE) == value.default
        field = serializer.fields[value.name]
        assert not field.required
        assert (field.default if value.kind == "text" else None) == value.default


def test_the_service_checks_each_value_and_refuses_undeclared_ones() -> None:
    # given values out of their declared limits, an undeclared one
    with pytest.raises(ValidationError) as refused:
        report_values({"accuracy_m": -5})
    assert "accuracy" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        report_values({"note": "x" * 4001})
    assert "note" in refused.value.message_dict
    with pytest.raises(ValidationError):
        report_values({"client_time": datetime(2026, 12, 6, 10, 0)})  # naive
    with pytest.raises(TypeError):
        report_values({"undeclared": 3})
    # then a report without them has every default
    assert report_values({}) == {v.column: v.default for v in REPORT_INPUT}


def test_the_statement_parameters_are_the_declared_input_type() -> None:
    # given a submission as the services make it
    from django.utils import timezone

    from command.services.report_rows import CONSTANTS, INPUT_NAMES
    from command.services.reports import _Submission

    submission = _Submission(
        token=None,
        reporter_id=1,
        client_id=uuid.uuid4(),
        category_code="road_damage",
        lon_lat=(117.0, 39.0),
        values=report_values({}),
        source="field",
        now=timezone.now(),
    )
    # then its parameters are gc_report_input's attributes, the token and the constants: no more, no less
    assert set(submission.params()) == {*INPUT_NAMES, "token", *CONSTANTS}
