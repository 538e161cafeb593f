"""Near misses: values one small edit away from a real one, for every comparison the contract makes exact.

A server that compares loosely (SQL `LIKE 'x%'`, a case-insensitive collation, a trimmed or
unquoted header, a lookup by a prefix of an ID) agrees with an exact one on every value the suite
uses as it is; only a value that differs a little tells them apart. Each function here gives, for
one real value, the near misses that are still valid of their kind (so the server must take them
as other values, not reject them), labelled for a failure message; `look_alike` gives one that is
not valid (a Latin letter swapped for its Cyrillic twin), which must be refused.
"""

from __future__ import annotations

__all__ = ["look_alike", "near_client_ids", "near_keys", "near_run_ids"]

CLIENT_ID_MAX = 64
KEY_MAX = 255
# Cyrillic letters drawn like these Latin ones in most fonts.
_CYRILLIC_TWINS = {"a": "\u0430", "c": "\u0441", "e": "\u0435", "o": "\u043e", "p": "\u0440", "x": "\u0445"}


def look_alike(value: str) -> str:
    """`value` with its first letter that has a Cyrillic twin replaced by the twin: no longer ASCII."""
    for index, char in enumerate(value):
        if char in _CYRILLIC_TWINS:
            return value[:index] + _CYRILLIC_TWINS[char] + value[index + 1 :]
    return _CYRILLIC_TWINS["c"] + value[1:]


def _valid(near: dict[str, str], value: str, longest: int) -> dict[str, str]:
    return {label: v for label, v in near.items() if v and v != value and len(v) <= longest}


def near_client_ids(value: str) -> dict[str, str]:
    """Valid ClientIds a prefix, suffix or case-insensitive match would confuse with `value`."""
    near = {
        "it with a suffix": value + "x",
        "it with a prefix": "x" + value,
        "its prefix": value[:-1],
        "it in other case": value.swapcase(),
    }
    return _valid(near, value, CLIENT_ID_MAX)


def near_keys(value: str) -> dict[str, str]:
    """Valid Idempotency-Keys a case-folding, prefix, unquoting or truncating comparison would take for `value`."""
    near = {
        "it in other case": value.swapcase(),
        "its prefix (the last character dropped)": value[:-1],
        "it with a suffix": value + "-2",
        "it in double quotes": f'"{value}"',
    }
    return _valid(near, value, KEY_MAX)


def near_run_ids(value: str) -> dict[str, str]:
    """IDs a lookup by prefix, by a parsed or truncated part, would take for the runId `value`.

    Other case is left to the caller: a server may compare IDs case-insensitively.
    """
    appended = "0" if value[-1:] != "0" else "1"
    near = {
        "its prefix (the last character dropped)": value[:-1],
        "its suffix (the first character dropped)": value[1:],
        f"it with {appended!r} appended": value + appended,
    }
    return _valid(near, value, 10_000)
