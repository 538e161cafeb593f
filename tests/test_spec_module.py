"""conformance.spec: the validators compiled from the spec judge as JSON Schema (ECMA-262) does."""

from __future__ import annotations

import pytest

from conformance.spec import operation_of, parameter_pointer, required_response_headers, schema_validator


@pytest.mark.parametrize("value", ["abc\n", "abc\n\n", "", "a b"])
def test_client_id_pattern_rejects_what_ecma_262_rejects(value: str) -> None:
    # Python's `$` matches before a final newline; the spec's patterns must not.
    assert list(schema_validator("/components/schemas/ClientId").iter_errors(value))


@pytest.mark.parametrize("value", ["abc", "a.b_c:d-e", "x" * 64])
def test_client_id_pattern_accepts_valid_ids(value: str) -> None:
    assert not list(schema_validator("/components/schemas/ClientId").iter_errors(value))


def test_formats_are_checked() -> None:
    errors = list(schema_validator("/components/schemas/Timestamp").iter_errors("yesterday"))
    assert errors and "date-time" in errors[0].message


@pytest.mark.parametrize(
    ("operation", "status", "headers"),
    [
        ("getRunDefinition", 200, ("ETag",)),
        ("getRunDefinition", 304, ("ETag",)),
        ("getRunDefinition", 404, ()),
        ("getRun", 200, ()),
        ("startRun", 202, ()),  # Location is a SHOULD, kept off the 202 on purpose (components.headers)
        ("listRuns", 401, ("WWW-Authenticate",)),  # through components.responses.Unauthorized
        ("cancelRun", 405, ()),  # undocumented: nothing required
    ],
)
def test_required_response_headers_follow_references(operation: str, status: int, headers: tuple[str, ...]) -> None:
    assert required_response_headers(operation, status) == headers


def test_parameter_pointers_resolve_to_the_parameter_schema() -> None:
    limit = parameter_pointer("listRuns", "query", "limit")
    assert limit is not None and not schema_validator(limit).is_valid(0) and schema_validator(limit).is_valid(5)
    key = parameter_pointer("startRun", "header", "idempotency-key")  # header names in any case
    assert key == "/components/parameters/IdempotencyKey/schema"
    assert parameter_pointer("listRuns", "query", "nope") is None
    assert operation_of("cancelRun") == ("/api/v1/runs/{runId}/cancel", "post")
