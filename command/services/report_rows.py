# ruff: noqa: S608, RUF009 -- SQL from the declarations below (values are bound); fields carry their SQL type
"""The shapes of the report write, declared once: what goes into ``gc_report_submit`` (one
composite, ``gc_report_input``) and what comes out (``gc_report_result``), as dataclasses.

The composite types' SQL (command/services/report_function.py, frozen in command/sql/), the
statements that call the function (one report; a batch as one array) and the reading of their
rows (psycopg's ``class_row``, by column name) all derive from these two declarations: a new
value of a report is one ``ReportValue`` in command/report_input.py, a new frozen version of the
function and its migration (``manage.py report_sql_freeze``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row

from command.logins import token_user_id_sql
from command.report_input import REPORT_INPUT


def sql_field(kind: str) -> Any:
    """A dataclass field of a declared row shape, with its SQL type (the composite's attribute)."""
    return field(metadata={"sql": kind})


_sql = sql_field


# One report as ``gc_report_submit`` takes it (the composite type ``gc_report_input``): who and
# when (the service's part), the fixed parts of every report, then the values a report carries as
# sent, as command/report_input.py declares them.
SubmitInput = make_dataclass(
    "SubmitInput",
    [
        ("reporter_id", int | None, _sql("integer")),
        # True when the report comes from a login (an API token): a NULL reporter_id then means
        # the token named no active user, and the function refuses the report as ``unauthorized``.
        ("from_login", bool, _sql("boolean")),
        ("content_hash", str, _sql("text")),
        ("source", str, _sql("text")),
        ("received_at", datetime, _sql("timestamptz")),
        ("client_id", uuid.UUID, _sql("uuid")),
        ("category_code", str, _sql("text")),
        ("lon", float, _sql("double precision")),
        ("lat", float, _sql("double precision")),
        *((value.column, Any, _sql(value.sql)) for value in REPORT_INPUT),
    ],
    frozen=True,
    slots=True,
)


@dataclass(frozen=True, slots=True)
class SubmitRow:
    """What ``gc_report_submit`` answers (the composite type ``gc_report_result``), read by name."""

    status: str = _sql("text")  # created | unauthorized | unknown_category
    reporter_id: int | None = _sql("integer")
    report_id: int | None = _sql("bigint")
    incident_id: int | None = _sql("bigint")
    incident_created: bool | None = _sql("boolean")
    grid_cell_id: int | None = _sql("bigint")
    building_id: int | None = _sql("bigint")
    incident_status: str | None = _sql("text")
    team_id: int | None = _sql("bigint")
    worker_id: int | None = _sql("bigint")
    report_count: int | None = _sql("integer")
    due_at: datetime | None = _sql("timestamptz")
    events: Any = _sql("jsonb")  # the wire form of both events (a list, or its text)
    incident: Any = _sql("jsonb")  # to_jsonb(the incident row) when asked for (the service's callers)

    @property
    def wires(self) -> list[dict[str, Any]]:
        """The wire form of the events the row carries."""
        events = self.events
        return list(events) if isinstance(events, list) else list(json.loads(events))


def sql_attributes(shape: type) -> list[tuple[str, str]]:
    """``(name, SQL type)`` of each field of a declared shape, in order."""
    return [(f.name, f.metadata["sql"]) for f in fields(shape)]


INPUT_TYPE = "gc_report_input"
RESULT_TYPE = "gc_report_result"

# The grouping constants, bound with every call (command.services.reports).
CONSTANTS = ("group_metres", "group_window", "building_metres")
_CONSTANTS = ", ".join(f"%({name})s" for name in CONSTANTS)
_INPUT = sql_attributes(SubmitInput)
INPUT_NAMES = tuple(name for name, _kind in _INPUT)


def input_row_sql(values: dict[str, str]) -> str:
    """``ROW(...)::gc_report_input`` of the SQL expressions ``values`` gives for each attribute."""
    return f"ROW({', '.join(values[name] for name, _kind in _INPUT)})::{INPUT_TYPE}"


_row = input_row_sql


# One report of a service caller: every input value bound by name.
SUBMIT_SQL = f"SELECT * FROM gc_report_submit({_row({n: f'%({n})s' for n, _k in _INPUT})}, {_CONSTANTS}, true)"
# One report of the lean path: the reporter is the token's user (command.logins' one rule),
# looked up in the same statement; the incident row is not wanted.
LOGIN_SUBMIT_SQL = (
    "SELECT * FROM gc_report_submit("
    + _row({**{n: f"%({n})s" for n, _k in _INPUT}, "reporter_id": f"({token_user_id_sql('%(token)s')})"})
    + f", {_CONSTANTS}, false)"
)
# A batch of the lean path: each value an array, one element per report, made into the array
# of inputs gc_report_submit_batch takes (in the given order).
_ARRAY_COLUMNS = [("token", "text"), *((n, k) for n, k in _INPUT if n != "reporter_id")]
BATCH_SUBMIT_SQL = (
    "SELECT * FROM gc_report_submit_batch(ARRAY(SELECT "
    + _row({**{n: f"x.{n}" for n, _k in _INPUT}, "reporter_id": f"({token_user_id_sql('x.token')})"})
    + " FROM unnest("
    + ", ".join(f"%({n})s::{k}[]" for n, k in _ARRAY_COLUMNS)
    + f") WITH ORDINALITY AS x({', '.join(n for n, _k in _ARRAY_COLUMNS)}, n) ORDER BY x.n), {_CONSTANTS})"
)
BATCH_ARRAYS = tuple(n for n, _k in _ARRAY_COLUMNS)

submit_row = class_row(SubmitRow)
