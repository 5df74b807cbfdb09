"""Schema-driven fuzzing (schemathesis) of every operation in /api/schema/: no 500, and every
response matches the schema (status code, content type, body, headers), for data that fits
the schema (positive) and data that does not (negative). Bounded: MAX_EXAMPLES per operation
and mode, so the whole run stays well under two minutes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from field_api.throttles import DEFAULT_RATES

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MAX_EXAMPLES = 10

# Loaded at collection: serving the schema needs no database.
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def in_process_requests(db) -> Iterator[None]:
    """In-process WSGI calls share the test's connection and transaction; like Django's test
    client, keep the request signals from closing that connection after each call."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def has_inputs(operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def test_schema_lists_every_field_api_operation():
    labels = {op.label for op in OPERATIONS}
    assert {"POST /api/v1/reports/", "GET /api/v1/assignments/", "POST /api/v1/pings/"} <= labels
    assert len(OPERATIONS) >= 17


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_operation_conforms_to_schema(operation, mode, worker_user, reference, in_process_requests, settings):
    settings.FIELD_API_RATES = dict.fromkeys(DEFAULT_RATES)  # no limits: the fuzzer is not a phone

    def call(case):
        # A fuzzed DELETE /auth/token/ revokes the token: fetch (or make) it for every call.
        token, _created = Token.objects.get_or_create(user=worker_user)
        headers = {**(case.headers or {}), "Authorization": f"Token {token.key}"}
        case.call_and_validate(headers=headers, checks=CHECKS)

    if not has_inputs(operation):
        if mode == GenerationMode.NEGATIVE:
            pytest.skip("no parameters and no body: nothing to make invalid")
        call(operation.Case())
        return

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case):
        call(case)

    try:
        run()
    except Unsatisfiable:
        if mode != GenerationMode.NEGATIVE:
            raise
        # free-form strings only (a layer name, a feature id): every value is valid input
        pytest.skip("nothing in this operation's inputs can be made invalid")
