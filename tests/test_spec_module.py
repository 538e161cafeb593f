"""conformance.spec: the validators compiled from the spec judge as JSON Schema (ECMA-262) does."""

from __future__ import annotations

import pytest

from conformance.spec import schema_validator


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
