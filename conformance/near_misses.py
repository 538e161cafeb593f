"""Near misses: values one small edit away from a real one, for every comparison the contract makes exact.

A server that compares loosely (SQL `LIKE 'x%'`, a case-insensitive collation, a trimmed or
unquoted header, a lookup by a prefix of an ID) agrees with an exact one on every value the suite
uses as it is; only a value that differs a little tells them apart. Each function here gives, for
one real value, the near misses that are still valid of their kind (so the server must take them
as other values, not reject them), labelled for a failure message; `look_alike` gives one that is
not valid (a Latin letter swapped for its Cyrillic twin), which must be refused.

Two comparisons are not exact, and their near misses say so. The bearer credential: the scheme
name is case-insensitive (RFC 9110 §11.1) and HTTP strips whitespace around a field value
(§5.5), so neither is probed; only the token is, and it is compared exactly. If-None-Match: a
list (§5.6.1: OWS around commas, empty elements ignored) compared weakly (§8.8.3.2), so the
forms of a list that holds the tag must all match, and tags one edit away from it must not.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Sequence

from conformance.spec import load_spec

__all__ = [
    "look_alike",
    "malformed_credentials",
    "matching_tag_lists",
    "near_client_ids",
    "near_cursors",
    "near_entity_tags",
    "near_keys",
    "near_run_ids",
    "near_tokens",
    "refused_near_misses",
    "resembling_run_ids",
    "scheme_cases",
]

# The longest valid values, as the spec bounds them: a near miss longer is invalid, not a near miss.
CLIENT_ID_MAX = int(load_spec()["components"]["schemas"]["ClientId"]["maxLength"])
KEY_MAX = int(load_spec()["components"]["parameters"]["IdempotencyKey"]["schema"]["maxLength"])
# Characters tried, in this order, as the one a value's schema does not allow: a slash and a space
# first (a path separator, a word break), then the rest of ASCII's punctuation, then a letter beyond it.
_FOREIGN = "/ " + "".join(c for c in string.punctuation if c != "/") + "\u00e9"
# Cursors no server issues, whatever its encoding: they must be refused as well as the edited ones.
_MADE_UP_CURSORS = {"a made-up cursor 'not a cursor!'": "not a cursor!", "a made-up cursor '{}'": "{}",
                    "a made-up non-ASCII cursor": "\u00e9\u00e9"}  # fmt: skip
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


def refused_near_misses(
    value: str, accepts: Callable[[str], bool], *, longest: int | None = None, others: Sequence[str] = ()
) -> dict[str, str]:
    """Near misses of the valid `value` that `accepts` (the spec's schema of it) refuses, labelled.

    Tried: other case, cut short at either end, extended at either end, a space before or after it,
    a Unicode look-alike letter, a character the schema does not allow in its middle, one
    character more than `longest`, and a list of it and the first of `others` (a server that
    splits on commas). Only what `accepts` refuses is kept, so a near miss is refused by the spec
    itself: a value the schema allows ("nightly-etlx" for a ClientId) is a comparison's near miss
    (`near_client_ids`), not an invalid one, and never sent here.
    """
    middle = len(value) // 2
    foreign = next((c for c in _FOREIGN if not accepts(value[:middle] + c + value[middle:])), None)
    near = {
        "in upper case": value.upper(),
        "capitalised": value[:1].upper() + value[1:],
        "in other case": value.swapcase(),
        "cut short (its last character dropped)": value[:-1],
        "cut short (its first character dropped)": value[1:],
        "extended by one character": value + "x",
        "with a character before it": "x" + value,
        "with a space after it": value + " ",
        "with a space before it": " " + value,
        "with a Unicode look-alike letter": look_alike(value),
    }
    if foreign is not None:
        near[f"with {foreign!r} in its middle"] = value[:middle] + foreign + value[middle:]
    if longest is not None and value:
        near[f"repeated to {longest + 1} characters (the longest allowed is {longest})"] = (
            value * (longest // len(value) + 2)
        )[: longest + 1]
    other = next((o for o in others if o != value), None)
    if other is not None:
        near[f"and {other!r} as a comma-separated list"] = f"{value},{other}"
    made: dict[str, str] = {}
    for label, candidate in near.items():
        if candidate not in made.values() and not accepts(candidate):
            made[f"{value!r} {label}"] = candidate
    return made


def near_cursors(cursor: str, times: int = 20) -> dict[str, str]:
    """Cursors one edit from the one a server issued (and a few it never could): none names a page.

    `times`: how often to repeat it in one (the caller keeps the request line within what front
    ends take). A server may decode leniently and read an edited cursor as the very same one,
    so its answer is 400 or exactly that cursor's page (PAGE-007).
    """
    middle = len(cursor) // 2
    replacement = "A" if cursor[middle : middle + 1] != "A" else "B"
    near = {
        "a tampered cursor (one character in the middle changed)": cursor[:middle] + replacement + cursor[middle + 1 :],
        "a truncated cursor (its first half)": cursor[:middle],
        "a truncated cursor (its last character dropped)": cursor[:-1],
        "a cursor with a character appended": cursor + "A",
        **({f"a cursor repeated {times} times": cursor * times} if times > 1 else {}),
        **_MADE_UP_CURSORS,
    }
    return {label: value for label, value in near.items() if value and value != cursor}


def scheme_cases(scheme: str) -> dict[str, str]:
    """The auth-scheme name in other cases than `scheme`'s own: the same scheme (RFC 9110 §11.1).

    A valid token sent under each must be accepted as under the scheme as the spec names it.
    """
    near = {
        "the scheme in lower case": scheme.lower(),
        "the scheme in upper case": scheme.upper(),
        "the scheme in other case": scheme.swapcase(),
        "the scheme capitalised": scheme[:1].upper() + scheme[1:].lower(),
    }
    made: dict[str, str] = {}
    for label, value in near.items():
        if value != scheme and value not in made.values():
            made[label] = value
    return made


def near_keys(value: str) -> dict[str, str]:
    """Valid Idempotency-Keys a case-folding, prefix, unquoting or truncating comparison would take for `value`."""
    near = {
        "it in other case": value.swapcase(),
        "its prefix (the last character dropped)": value[:-1],
        "it with a suffix": value + "-2",
        "it in double quotes": f'"{value}"',
        # A header is no URI: a server that percent-decodes it merges two keys.
        "its first character percent-encoded": _percent_encoded_first(value),
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


def _percent_encoded_first(value: str) -> str:
    """`value` with its first character written as a percent-escape: another string unless something decodes it."""
    return f"%{ord(value[0]):02X}{value[1:]}" if value and value[0].isascii() else "%25" + value


def near_tokens(token: str) -> dict[str, str]:
    """Bearer tokens (RFC 6750 b64token syntax, so well formed) one edit from `token`: each is another token.

    No `=` appended: a server that verifies a signed token (a JWT) may decode base64 leniently, and
    padding then changes nothing it compares.
    """
    extra = "x" if not token.endswith("x") else "y"
    near = {
        "the token in other case": token.swapcase(),
        "the token's prefix (its last character dropped)": token[:-1],
        "the token's suffix (its first character dropped)": token[1:],
        f"the token extended by {extra!r}": token + extra,
    }
    return _valid(near, token, 10_000)


def malformed_credentials(token: str) -> dict[str, bytes]:
    """Authorization field values that hold `token` with something more: none carries the token.

    None is a well-formed Bearer credential (RFC 9110 §11.4: the scheme, one or more spaces, one
    token68), so a server may answer 400 (RFC 6750 §3.1 invalid_request) as well as 401. Bytes:
    the look-alike is sent as UTF-8, as a client that does not check would.
    """
    return {
        "the token, a space and more": f"Bearer {token} x".encode(),
        "the token, a tab and more": f"Bearer {token}\tx".encode(),
        "the token, a comma and more": f"Bearer {token},x".encode(),
        "the token glued to the scheme": f"Bearer{token}".encode(),
        "the token with its first character percent-encoded": f"Bearer {_percent_encoded_first(token)}".encode(),
        "the token with a Unicode look-alike letter (UTF-8)": f"Bearer {look_alike(token)}".encode(),
    }


def matching_tag_lists(tag: str, other: str = '"rc-other"') -> dict[str, str]:
    """If-None-Match values that match the weak `tag` (`W/"..."`): every list form RFC 9110 allows.

    §5.6.1: `#element => [ element ] *( OWS "," OWS [ element ] )`, OWS being spaces and tabs,
    empty elements ignored; §8.8.3.2: weak comparison ignores `W/`. `other` is a tag that does not match.
    """
    strong = tag.removeprefix("W/")
    third = 'W/"rc-third"'
    return {
        "the tag itself": tag,
        "its strong form (weak comparison ignores W/)": strong,
        "a list with the tag first": f"{tag}, {other}",
        "a list with the tag last": f"{other}, {tag}",
        "a list of three with the tag in the middle": f"{other}, {tag}, {third}",
        "a list with no whitespace after the comma": f"{other},{tag}",
        "a list with spaces before and after the comma": f"{other} , {tag}",
        "a list with a tab after the comma": f"{other},\t{tag}",
        "a list with a tab before the comma": f"{other}\t,{strong}",
        "a list with an empty element first": f", {tag}",
        "a list with an empty element last": f"{tag},",
        "a list with empty elements between": f"{other},, ,\t,{strong}",
        "*": "*",
    }


def near_entity_tags(tag: str) -> dict[str, bytes]:
    """If-None-Match values one edit from the weak `tag` that do not match it (opaque-tags compare exactly).

    Bytes: the look-alike is obs-text, which an opaque-tag may hold (RFC 9110 §8.8.3).
    """
    opaque = tag.removeprefix("W/").strip('"')
    near = {
        "another tag": 'W/"rc-no-such-tag"',
        "the tag in other case": f'W/"{opaque.swapcase()}"',
        "the tag's prefix (its last character dropped)": f'W/"{opaque[:-1]}"',
        "the tag extended by one character": f'W/"{opaque}0"',
        "the tag with a character percent-encoded": f'W/"{_percent_encoded_first(opaque)}"',
        "the tag with a Unicode look-alike letter (UTF-8)": f'W/"{look_alike(opaque)}"',
        "a list of near misses": f'"{opaque[:-1]}", W/"{opaque}0"',
    }
    return {label: value.encode() for label, value in near.items() if value != tag}
