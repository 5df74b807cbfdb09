"""Masked forms of personal data, in Python and in SQL (the same answer from both).

A sensitive field of a layer (command/layers.py: ``Field(sensitive=True, mask=...)``) is shown
in its masked form by default, in every channel; an authorised user unmasks one record with a
stated purpose (command/access.py), and that view is written to the access log.

- ``name``: the first and last character, stars between: 张三明 -> 张*明, 张三 -> 张*, 欧阳小明 -> 欧**明
  (one character stays as it is);
- ``phone``: 8 or more characters keep the first 3 and the last 4 (13812345678 -> 138****5678);
  5 to 7 keep the last 4; shorter ones are all stars;
- ``id_number``: more than 10 characters keep the region (first 6) and the last 4
  (120104199003071234 -> 120104********1234); shorter ones are all stars;
- ``text``: free text may name people anywhere (report notes), so it is withheld: ``***`` when
  not empty (a name in free text cannot be found reliably; the unmasked note is one request away);
- ``flags``: a list (vulnerable-group flags): ``["***"]`` when not empty, so a viewer knows that
  a household needs care without learning why;
- ``null``: a number that identifies a person (a reporter's user id): null.

Every mask is idempotent (a masked value masks to itself), so the event log can store masked
payloads and a channel may mask again without harm. This module imports nothing of the project.
"""

from __future__ import annotations

from typing import Any, Literal

Mask = Literal["name", "phone", "id_number", "text", "flags", "null"]
MASKS: tuple[str, ...] = ("name", "phone", "id_number", "text", "flags", "null")
HIDDEN = "***"


def mask_name(s: str | None) -> str | None:
    """The first and last character, the rest starred: 张小明 -> 张*明, 李四 -> 李*."""
    if s is None:
        return None
    s = s.strip()
    if len(s) <= 1:
        return s
    if len(s) == 2:
        return s[0] + "*"
    return s[0] + "*" * (len(s) - 2) + s[-1]


def mask_phone(s: str | None) -> str | None:
    """The first three and the last four digits: 13812345678 -> 138****5678."""
    if s is None:
        return None
    s = s.strip()
    if len(s) <= 4:
        return "*" * len(s)
    if len(s) < 8:
        return "*" * (len(s) - 4) + s[-4:]
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def mask_id_number(s: str | None) -> str | None:
    """The region code (first six) and the last four characters: 120104********123X."""
    if s is None:
        return None
    s = s.strip()
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def mask_text(s: str | None) -> str | None:
    return HIDDEN if s else s


def mask_flags(values: list[str] | None) -> list[str] | None:
    return [HIDDEN] if values else values


def mask_value(value: Any, mask: str) -> Any:
    """``value`` in its masked form (None stays None)."""
    if value is None:
        return None
    if mask == "name":
        return mask_name(str(value))
    if mask == "phone":
        return mask_phone(str(value))
    if mask == "id_number":
        return mask_id_number(str(value))
    if mask == "text":
        return mask_text(str(value))
    if mask == "flags":
        return mask_flags(list(value))
    if mask == "null":
        return None
    raise ValueError(f"unknown mask {mask!r}")


def mask_sql(expr: str, mask: str) -> str:
    """The SQL of ``mask`` over the SQL expression ``expr`` (text, or text[] for ``flags``)."""
    t = f"btrim({expr})"
    n = f"char_length({t})"
    if mask == "name":
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL WHEN {n} <= 1 THEN {t} WHEN {n} = 2 THEN left({t}, 1) || '*' "
            f"ELSE left({t}, 1) || repeat('*', {n} - 2) || right({t}, 1) END"
        )
    if mask == "phone":
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL WHEN {n} <= 4 THEN repeat('*', {n}) "
            f"WHEN {n} < 8 THEN repeat('*', {n} - 4) || right({t}, 4) "
            f"ELSE left({t}, 3) || repeat('*', {n} - 7) || right({t}, 4) END"
        )
    if mask == "id_number":
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL WHEN {n} <= 10 THEN repeat('*', {n}) "
            f"ELSE left({t}, 6) || repeat('*', {n} - 10) || right({t}, 4) END"
        )
    if mask == "text":
        return f"CASE WHEN {expr} IS NULL OR {expr} = '' THEN {expr} ELSE '{HIDDEN}' END"
    if mask == "flags":
        return f"CASE WHEN cardinality({expr}) > 0 THEN ARRAY['{HIDDEN}']::text[] ELSE {expr} END"
    if mask == "null":
        return "NULL"
    raise ValueError(f"unknown mask {mask!r}")
