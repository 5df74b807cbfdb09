"""The OpenAPI document's refusals, one rule for every operation: drf-spectacular documents what a
view declares; this hook adds the refusals any operation of the REST API may answer with and that
its view did not name (every request: 400, 401, 403, 429; a path with an id: 404; a body: 413,
415), each as ``{"detail": ...}`` (field_api.middleware and DRF's handler answer so)."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "Bad input: one list of reasons per field, or detail.",
    401: "Not logged in (send Authorization: Token <key>).",
    403: "Logged in, but not allowed.",
    404: "No such object, or one this login may not see (answered alike).",
    413: "Body too large.",
    415: "Unsupported content type.",
    429: "Rate limit reached; see Retry-After.",
}
_BODY = {
    "application/json": {
        "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "additionalProperties": True}
    }
}


def document_refusals(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = {400, 401, 403, 429}
            if "{" in path:
                codes.add(404)
            if "requestBody" in operation:
                codes |= {413, 415}
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(str(code), {"description": REASONS[code], "content": _BODY})
    return result
