"""What the server's data means, and equality of meaning: the one place checks compare server data.

A correct server may write one value in many forms (see the shared notes on correct servers): a
number as `1e308`, `1E+308` or 309 digits; an instant as `…Z`, `…z` or any offset, with any
fractional precision; a Run with extra fields that change between reads. A check that compares
forms fails such a server for nothing, so every comparison of what a server sent goes through
here:

- JSON values: objects ignore member order, numbers compare as the exact decimals their text
  says (never through a double), `true` is not `1`, strings compare by code points.
- Instants: RFC 3339 date-times compared as points in time, to any fractional precision.
- Run fields: the timestamps as instants, the rest as JSON values.
- Pages of listRuns: their runs' IDs in order, and whether a next page exists.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from conformance.spec import load_spec

__all__ = [
    "Instant",
    "changed_run_fields",
    "json_equal",
    "page_of",
    "parse_instant",
    "parse_json",
    "run_instant_fields",
    "same_instant",
    "same_page",
]

# Python refuses int() of more digits than this (CVE-2020-10735); longer integers stay Decimals.
_INT_DIGITS = 4000


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: bytes | str) -> Any:
    """The JSON value of `text` with every number exact: integers as int, the rest as Decimal.

    Raises ValueError when `text` is not JSON (NaN and Infinity included: they are not JSON).
    """
    return json.loads(text, parse_float=Decimal, parse_int=_integer, parse_constant=_no_constant)


def _number(value: Any) -> Decimal | None:
    """The exact decimal a JSON number means, or None for anything that is not a number."""
    if isinstance(value, bool):
        return None  # a bool is an int to Python, never a number to JSON
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # The suite's own values: json.dumps writes repr(float), so that text is what was sent.
        return Decimal(repr(value))
    return None


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: member order ignored, numbers by exact value, `true` is not `1`.

    Either side may come from `parse_json` (server text, exact) or be a value the suite built
    (Python int and float, whose JSON text is what the suite sent).
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    x, y = _number(a), _number(b)
    if x is not None or y is not None:
        return x is not None and y is not None and x == y  # Decimal comparison is exact
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


# --- instants ----------------------------------------------------------------------------------

# RFC 3339 §5.6 date-time; `T` and `Z` may be lower case (its note under the grammar), the
# fraction has any number of digits, and second 60 is a leap second.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Instant:
    """A point in time to the full precision its text gave: whole seconds since the epoch (UTC),
    plus the exact fraction of a second. Never a float: two instants a nanosecond apart differ."""

    seconds: int
    fraction: Decimal


def parse_instant(value: Any) -> Instant | None:
    """The instant an RFC 3339 date-time names, or None when `value` is not one."""
    return _instant(value) if isinstance(value, str) else None


# A concurrent history holds the same few timestamps in hundreds of thousands of observations.
@functools.lru_cache(maxsize=65536)
def _instant(value: str) -> Instant | None:
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zulu, sign, off_hours, off_minutes = match.group(7, 8, 9, 10, 11)
    if hour > 23 or minute > 59 or second > 60:
        return None
    if zulu:
        offset = timedelta(0)
    else:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            return None
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes)) * (1 if sign == "+" else -1)
    try:
        # Second 60 (a leap second) is the instant one second after :59.
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone(offset))
    except ValueError:
        return None  # no such date (February 30th)
    whole = (moment - _EPOCH) // timedelta(seconds=1) + (1 if second == 60 else 0)
    return Instant(whole, Decimal(f"0.{fraction}") if fraction else Decimal(0))


def same_instant(a: Any, b: Any) -> bool:
    """Both null, or both the same instant; text that is no date-time only equals itself."""
    if a is None or b is None:
        return a is None and b is None
    x, y = parse_instant(a), parse_instant(b)
    if x is None or y is None:
        return bool(a == b)  # the schema checks say what is wrong with the text
    return x == y


# --- runs --------------------------------------------------------------------------------------


@functools.cache
def run_instant_fields() -> frozenset[str]:
    """The Run members the spec types as timestamps (nullable or not)."""
    timestamp = "#/components/schemas/Timestamp"
    fields: set[str] = set()
    for name, schema in load_spec()["components"]["schemas"]["Run"]["properties"].items():
        options = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
        if any(option.get("$ref") == timestamp for option in options):
            fields.add(name)
    return frozenset(fields)


def changed_run_fields(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, tuple[Any, Any]]:
    """The `fields` whose meaning differs between two readings of a run: field -> (before, after).

    Timestamps compare as instants, everything else as JSON values.
    """
    instants = run_instant_fields()
    changed: dict[str, tuple[Any, Any]] = {}
    for name in fields:
        old, new = before.get(name), after.get(name)
        same = same_instant(old, new) if name in instants else json_equal(old, new)
        if not same:
            changed[name] = (old, new)
    return changed


# --- pages -------------------------------------------------------------------------------------


def page_of(data: Any) -> tuple[tuple[str, ...], bool] | None:
    """What a listRuns page means: its runs' IDs in order, and whether a next page exists.

    None when `data` is not a RunList. The runs' other fields are left out on purpose: a server
    may add fields that change between two reads of the same page.
    """
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return None
    ids = tuple(str(item.get("runId")) if isinstance(item, dict) else repr(item) for item in data["items"])
    return ids, bool(data.get("nextCursor"))


def same_page(a: Any, b: Any) -> bool:
    """Two RunList bodies show the same page: the same runs in the same order, and both or neither
    with a next page."""
    x = page_of(a)
    return x is not None and x == page_of(b)
