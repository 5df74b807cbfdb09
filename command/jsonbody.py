"""The one reader of JSON sent by clients (REST bodies, the lean report path, multipart fields
holding JSON, Open311): whatever the input, it answers the data or ``ValueError`` with a reason
a person can act on, never another exception (a 500).

- Nesting deeper than ``MAX_DEPTH`` (Python's parser would raise RecursionError at ~1000-20000
  levels, depending on the stack) is refused before parsing.
- Integers of more than ``MAX_INT_DIGITS`` digits are refused (``float(10**400)`` raises
  OverflowError; no field of ours holds such a number).
- NaN and Infinity are not JSON (RFC 8259) and are refused, as DRF's STRICT_JSON does.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
MAX_INT_DIGITS = 40
_OPENERS = re.compile(rb"[\[\]{}]|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)


class BadJSON(ValueError):
    pass


def _depth_check(data: bytes) -> None:
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return  # cannot nest deeper than there are brackets
    depth = 0
    for match in _OPENERS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise BadJSON(f"JSON nested more than {MAX_DEPTH} levels deep.")
        elif token in (b"]", b"}"):
            depth -= 1


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadJSON(f"A number in the JSON has more than {MAX_INT_DIGITS} digits.")
    return int(text)


def _constant(name: str) -> Any:
    raise BadJSON(f"{name} is not valid JSON: send numbers as finite values.")


def json_loads(data: str | bytes | bytearray) -> Any:
    """Parse client JSON by the rules above; ``ValueError`` (``BadJSON`` or the parser's own
    ``JSONDecodeError``) for anything else."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    _depth_check(raw)
    try:
        return json.loads(raw, parse_int=_int, parse_constant=_constant)
    except RecursionError:
        raise BadJSON(f"JSON nested more than {MAX_DEPTH} levels deep.") from None
    except UnicodeDecodeError as exc:
        raise BadJSON("The JSON is not valid UTF-8.") from exc
