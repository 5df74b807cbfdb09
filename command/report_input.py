"""A report's input, declared once.

A phone sends a report as its idempotency key (``client_id``), its ``category`` (a code) and its
``location`` — the fixed parts every report has, which the write itself works with (the unique
key, routing and grouping, the grid cell) — and the **values** declared here, which a report
carries as they were sent. ``REPORT_INPUT`` is the only list of those values. Everything else
derives from it:

- ``Report``'s columns for them (command/models.py adds ``ReportValue.model_field()``);
- the function's input type ``gc_report_input`` and the report row it inserts
  (command/services/report_rows.py, report_function.py; frozen in command/sql/);
- the service's checks and the content hash of the idempotency key (command/services/reports.py);
- the DRF input serializer and the receipt (field_api/serializers.py), and the lean path's
  validator (field_api/fast.py: ``ReportValue.lean``);
- the reports layer's fields (``on_layer``, ``sensitive``: command/layers.py), hence its events,
  tiles, GeoJSON, OGC and exports.

A new value is one ``ReportValue`` here, ``makemigrations`` (its column), ``manage.py
report_sql_freeze`` (the function's next frozen version and its migration) and its tests.

This module imports no models (models import it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

Kind = Literal["float", "text", "time"]

# What a value of each kind is in the function's composite input type (SQL).
SQL_TYPES: dict[str, str] = {"float": "double precision", "text": "text", "time": "timestamptz"}
# What DRF's CharField refuses (NUL, lone surrogates): the lean path leaves such text to DRF.
_TEXT_REFUSED = re.compile("[\x00\ud800-\udfff]")


class _Unsure:
    """``ReportValue.lean``'s answer when only DRF can say (with its per-field reason)."""


UNSURE = _Unsure()


@dataclass(frozen=True)
class ReportValue:
    """One value a report carries as the phone sent it."""

    name: str  # on the wire: the JSON key, the form field, the receipt's key, the content hash's key
    column: str  # Report's column, gc_report_input's attribute, the reports layer's field
    kind: Kind
    label: Any  # the column's verbose name (lazy translation)
    help: str  # the API documentation's words
    minimum: float | None = None  # float: the range accepted
    maximum: float | None = None
    max_chars: int | None = None  # text: the longest accepted (after trimming)
    on_layer: bool = False  # a field of the reports layer (events, tiles, GeoJSON, OGC, exports)
    sensitive: bool = False  # on the layer: personal data (only with the personal-data grant)

    @property
    def sql(self) -> str:
        return SQL_TYPES[self.kind]

    @property
    def default(self) -> Any:
        """The value of a report sent without it."""
        return "" if self.kind == "text" else None

    def model_field(self) -> models.Field[Any, Any]:
        """Report's column for this value."""
        if self.kind == "float":
            return models.FloatField(self.label, null=True, blank=True)
        if self.kind == "text":
            return models.TextField(self.label, blank=True)
        return models.DateTimeField(self.label, null=True, blank=True)

    def check(self, value: Any) -> Any:
        """The service's own check of a value (the APIs check first, with their per-field
        reasons); the value as stored. Raises ValidationError keyed by the wire name."""
        if value is None and self.kind != "text":
            return None
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError({self.name: _("A number is required.")})
            try:
                number = float(value)
            except OverflowError:
                raise ValidationError({self.name: _("A finite number is required (not NaN or infinity).")}) from None
            low = -math.inf if self.minimum is None else self.minimum
            high = math.inf if self.maximum is None else self.maximum
            if not low <= number <= high:  # also refuses NaN
                raise ValidationError({self.name: _("%(name)s must be between %(min)s and %(max)s.") % _limits(self)})
            return number
        if self.kind == "text":
            if not isinstance(value, str):
                raise ValidationError({self.name: _("Text is required.")})
            if self.max_chars is not None and len(value) > self.max_chars:
                raise ValidationError({self.name: _("%(name)s is longer than %(max)s characters.") % _limits(self)})
            return value
        if not isinstance(value, datetime) or timezone.is_naive(value):
            raise ValidationError({self.name: _("A time with its time zone is required.")})
        return value

    def lean(self, raw: Any) -> Any:
        """The value as DRF's field for it would take ``raw`` from a JSON body (``raw`` is
        ``UNSURE`` when the key is absent: the default), or ``UNSURE`` when anything is doubtful
        (DRF then answers, with its reason). The lean report path's validator."""
        if raw is UNSURE:
            return self.default
        if self.kind == "float":
            if raw is None:
                return None
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                return UNSURE
            try:
                number = float(raw)
            except OverflowError:
                return UNSURE
            if not math.isfinite(number):
                return UNSURE
            if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum
            ):
                return UNSURE
            return number
        if self.kind == "text":
            if not isinstance(raw, str) or _TEXT_REFUSED.search(raw):
                return UNSURE
            text = raw.strip()  # DRF's CharField trims
            return UNSURE if self.max_chars is not None and len(text) > self.max_chars else text
        if raw is None:
            return None
        if not isinstance(raw, str):
            return UNSURE
        try:
            parsed = parse_datetime(raw)
        except ValueError:
            return UNSURE
        if parsed is None or timezone.is_naive(parsed):
            return UNSURE  # a naive time: DRF's rules (the current time zone) apply
        # Nothing on the lean path activates a time zone, so the current one is the default
        # (read without get_current_timezone's context-local look-up: 7 % of the path's time).
        return parsed.astimezone(timezone.get_default_timezone())

    def canonical(self, value: Any) -> Any:
        """The value in the content hash (which decides whether a reused client id is a retry)."""
        if self.kind == "float":
            return None if value is None else round(float(value), 2)
        if self.kind == "text":
            return str(value).strip()
        return value.astimezone(UTC).isoformat(timespec="seconds") if value else None

    def wire(self, value: Any) -> Any:
        """The value in a receipt (JSON)."""
        if self.kind == "time":
            return value.isoformat() if value else None
        return value


def _limits(value: ReportValue) -> dict[str, Any]:
    return {
        "name": value.name,
        "min": value.minimum,
        "max": value.maximum if value.kind == "float" else value.max_chars,
    }


NOTE_MAX_CHARS = 4000

REPORT_INPUT: tuple[ReportValue, ...] = (
    ReportValue(
        "accuracy",
        "accuracy_m",
        "float",
        gettext_lazy("accuracy (m)"),
        "GPS accuracy in metres.",
        minimum=0,
        maximum=100_000,
    ),
    ReportValue(
        "note",
        "note",
        "text",
        gettext_lazy("note"),
        "What the reporter saw, in their words (may name people: personal data).",
        max_chars=NOTE_MAX_CHARS,
        on_layer=True,
        sensitive=True,
    ),
    ReportValue("client_time", "client_time", "time", gettext_lazy("time on the phone"), "When the phone took it."),
)

VALUES_BY_COLUMN: dict[str, ReportValue] = {v.column: v for v in REPORT_INPUT}
VALUES_BY_NAME: dict[str, ReportValue] = {v.name: v for v in REPORT_INPUT}


def report_values(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared value of a report (by column), checked, from ``given`` (by column; a
    missing one takes its default). An undeclared name is a programming error (TypeError)."""
    unknown = set(given) - set(VALUES_BY_COLUMN)
    if unknown:
        raise TypeError(f"not a declared report value: {sorted(unknown)}")
    return {v.column: v.check(given.get(v.column, v.default)) for v in REPORT_INPUT}


def report_value(report: Any, name: str) -> Any:
    """The declared value ``name`` (its wire name) of a stored report."""
    return getattr(report, VALUES_BY_NAME[name].column)


def report_values_from_wire(given: Mapping[str, Any]) -> dict[str, Any]:
    """The declared values of validated wire data (by wire name) as ``report_values`` takes them."""
    return {v.column: given[v.name] for v in REPORT_INPUT if given.get(v.name) is not None}
