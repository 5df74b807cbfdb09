"""DRF's JSON parser over command.jsonbody: deep nesting, huge integers and NaN are a 400 with
the reason, not a 500."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from command.jsonbody import json_loads


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = int(getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024) or 2 * 1024 * 1024)
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise ParseError(f"The JSON body is larger than {limit} bytes.")
        try:
            return json_loads(data)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
