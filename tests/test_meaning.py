"""Equality of meaning (conformance.meaning): the comparisons that keep the suite from failing a
correct server that merely writes the same value in another form."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.meaning import (
    Instant,
    changed_run_fields,
    json_equal,
    parse_instant,
    parse_json,
    run_instant_fields,
    same_instant,
    same_page,
)

NINES_308 = "1" + "0" * 308  # 1e308 written out, as an exact-decimal store (jsonb, BigDecimal) does


@pytest.mark.parametrize(
    ("server_text", "suite_value", "equal"),
    [
        (NINES_308, 1e308, True),  # the suite sent json.dumps(1e308) == "1e+308": the same number
        ("1E+308", 1e308, True),
        ("0.00000015", 1.5e-7, True),
        ("1.0", 1, True),
        ("1", 1.0, True),
        ("-0.0", 0, True),
        ("100", 1e2, True),
        ("true", 1, False),  # Python says True == 1; JSON does not
        ("1", True, False),
        ("0", False, False),
        # Decided: exact decimals, not doubles. 0.10000000000000001 is the same double as 0.1 but
        # not the same number; the suite sent "0.1", and a server that answers otherwise changed
        # the number for every client that reads JSON numbers exactly (jsonb, BigDecimal, JS BigInt
        # parsers). A double-based server that writes shortest round-trip forms passes either way.
        ("0.10000000000000001", 0.1, False),
        ("9007199254740993", 9007199254740992, False),  # 2**53 + 1: equal as doubles, not as numbers
        (NINES_308 + "1", 1e308, False),
    ],
)
def test_numbers_compare_as_the_exact_decimals_their_text_says(server_text: str, suite_value: Any, equal: bool) -> None:
    assert json_equal(parse_json(server_text), suite_value) is equal
    assert json_equal(suite_value, parse_json(server_text)) is equal


def test_json_parse_is_exact_and_refuses_what_is_not_json() -> None:
    parsed = parse_json('{"a": 1e308, "b": 12, "c": 0.1}')
    assert parsed == {"a": Decimal("1E+308"), "b": 12, "c": Decimal("0.1")}
    assert isinstance(parsed["b"], int)
    for text in ("NaN", "[Infinity]", "{", ""):
        with pytest.raises(ValueError):
            parse_json(text)


def test_an_integer_too_long_for_python_int_stays_exact() -> None:
    digits = "7" * 5000
    assert json_equal(parse_json(digits), parse_json(digits + ".0"))
    assert not json_equal(parse_json(digits), parse_json(digits[:-1] + "8"))


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"a": 1, "b": [True]}, {"b": [True], "a": 1.0}, True),
        ({"a": None}, {}, False),
        ([1, 2], [2, 1], False),
        ("é", "e\u0301", False),  # code points, not canonical equivalence
        (None, {}, False),
        ("1", 1, False),
    ],
)
def test_structures_ignore_member_order_only(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(value=st.recursive(st.none() | st.booleans() | st.integers() | finite | st.text(), st.lists))
def test_a_value_equals_its_own_json_text_read_exactly(value: Any) -> None:
    assert json_equal(parse_json(json.dumps(value)), value)


@given(value=finite)
def test_a_double_equals_its_text_written_out_in_full(value: float) -> None:
    written_out = format(Decimal(repr(value)), "f")  # what an exact-decimal server sends back
    assert json_equal(parse_json(written_out), value)


# --- instants ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T05:30:00.000+05:30",
        "2026-01-01t05:30:00+05:30",
        "2026-01-01t00:00:00z",
        "2025-12-31T16:00:00.000000000-08:00",
        "2025-12-31T23:59:60Z",  # a leap second is the instant after :59
        "2026-01-01T00:00:00-00:00",  # RFC 3339 §4.3: UTC, local offset unknown
    ],
)
def test_every_rfc3339_form_of_one_instant_is_that_instant(text: str) -> None:
    assert same_instant(text, "2026-01-01T00:00:00Z")
    assert parse_instant(text) == parse_instant("2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00Z"),  # a microsecond
        ("2026-01-01T00:00:00.000000001Z", "2026-01-01T00:00:00Z"),  # a nanosecond: no float, no datetime
        ("2026-01-01T05:30:00.000001+05:30", "2026-01-01t00:00:00z"),
        ("2026-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z"),
    ],
)
def test_instants_a_moment_apart_differ(a: str, b: str) -> None:
    assert not same_instant(a, b)
    assert parse_instant(a) != parse_instant(b)


def test_instants_order_to_full_precision() -> None:
    earlier, later = parse_instant("2026-01-01T00:00:00.1234567891Z"), parse_instant("2026-01-01T00:00:00.1234567892Z")
    assert earlier is not None and later is not None and earlier < later
    assert parse_instant("2026-01-01T05:29:59.999+05:30") < parse_instant("2026-01-01T00:00:00Z")  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01 00:00:00Z",  # a space is ISO 8601's option, not RFC 3339's date-time
        "2026-01-01T00:00:00",  # no offset
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+0530",
        "2026-01-01T00:00:00+24:00",
        "２０２６-01-01T00:00:00Z",  # digits are ASCII digits
        None,
        12,
    ],
)
def test_what_is_not_an_rfc3339_date_time_is_no_instant(text: Any) -> None:
    assert parse_instant(text) is None


def test_unparseable_or_null_timestamps_only_equal_themselves() -> None:
    assert same_instant(None, None)
    assert not same_instant(None, "2026-01-01T00:00:00Z")
    assert same_instant("yesterday", "yesterday")
    assert not same_instant("yesterday", "2026-01-01T00:00:00Z")


def test_an_instant_keeps_seconds_and_fraction_exact() -> None:
    assert parse_instant("1970-01-01T00:00:01.5Z") == Instant(1, Decimal("0.5"))


# --- runs and pages ----------------------------------------------------------------------------


def test_run_fields_compare_by_meaning() -> None:
    assert run_instant_fields() == {"createdAt", "startedAt", "finishedAt", "cancelRequestedAt"}
    before = {"status": "succeeded", "inputs": {"n": 1e308}, "finishedAt": "2026-01-01T00:00:00Z", "startedAt": None}
    same = {"status": "succeeded", "inputs": {"n": int(NINES_308)}, "finishedAt": "2026-01-01t05:30:00.0+05:30"}
    assert changed_run_fields(before, same, ["status", "inputs", "finishedAt", "startedAt"]) == {}
    moved = {**same, "finishedAt": "2026-01-01T00:00:00.001Z", "status": "cancelled"}
    assert set(changed_run_fields(before, moved, ["status", "inputs", "finishedAt"])) == {"status", "finishedAt"}


def test_pages_compare_by_their_runs_ids_in_order_and_next_page() -> None:
    page = {"items": [{"runId": "a", "seenAt": 1}, {"runId": "b"}], "nextCursor": "c1"}
    assert same_page(page, {"items": [{"runId": "a", "seenAt": 2}, {"runId": "b"}], "nextCursor": "c2"})
    assert not same_page(page, {"items": [{"runId": "b"}, {"runId": "a"}], "nextCursor": "c1"})
    assert not same_page(page, {"items": [{"runId": "a"}, {"runId": "b"}], "nextCursor": None})
    assert not same_page(page, {"error": "not a page"})
