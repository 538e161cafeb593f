"""Near misses: values one small edit away from a real one, for every comparison the contract makes exact.

A server that compares loosely (SQL `LIKE 'x%'`, a case-insensitive collation, a trimmed or
unquoted header, a lookup by a prefix of an ID) agrees with an exact one on every value the suite
uses as it is; only a value that differs a little tells them apart. Each function here gives, for
one real value, the near misses that are still valid of their kind (so the server must take them
as other values, not reject them), labelled for a failure message; `look_alike` gives one that is
not valid (a Latin letter swapped for its Cyrillic twin), which must be refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

__all__ = ["look_alike", "near_client_ids", "near_keys", "near_run_ids", "resembling_run_ids"]

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


def resembling_run_ids(run_id: str, tail: int = 12, longer: int = 8) -> list[str]:
    """Two IDs shaped like `run_id`: its last `tail` characters redrawn, and it with `longer` more.

    Each new character is drawn from the characters of its kind (digit, lower case, upper case)
    that `run_id` itself holds, so a ULID stays Crockford base32, a UUID hex, an integer digits;
    anything else is kept. Such an ID may still exist (few characters to draw from): confirm first.
    """
    kinds: list[Callable[[str], bool]] = [str.isdigit, str.islower, str.isupper]

    def pool(char: str) -> str:
        for kind in kinds:
            if char.isascii() and kind(char):
                return "".join(sorted({c for c in run_id if c.isascii() and kind(c)}))
        return char

    def redraw(chars: str) -> str:
        return "".join(secrets.choice(pool(char)) for char in chars)

    cut = max(0, len(run_id) - tail)
    return [run_id[:cut] + redraw(run_id[cut:]), run_id + redraw(run_id[-1:] * longer)]
