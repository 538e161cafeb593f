"""Faults that compare loosely where the contract compares exactly (or parse a list too strictly).

Each agrees with the reference server on every value sent as it is, so only a near miss tells them
apart: the bearer token folded to lower case, matched by its start, or cut at the first space; the
scheme name matched case-sensitively (so `bearer TOKEN`, the same credential, is refused); an
If-None-Match list of which only the last element counts, whose tabs are kept, or that is split on
", " only; an Idempotency-Key percent-decoded as if it were a URL. Each goes through a seam of
`create_app` (the `auth_class`, the `etags` or `idempotency` policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp

from reference_impl.app import create_app
from reference_impl.auth import BearerAuth
from reference_impl.etags import EtagPolicy
from reference_impl.idempotency import IdempotencyPolicy

from .faults import Fault

__all__ = ["NEAR_MISS_FAULTS"]

SOURCE = "tests/support/faults_nearmiss.py"


class TokenCaseInsensitive(BearerAuth):
    """Tokens looked up in a case-insensitive column (a MySQL `_ci` collation): any case of a token is it."""

    def is_valid(self, token: str) -> bool:
        return token.lower() in {known.lower() for known in self.tokens}


class TokenPrefixAccepted(BearerAuth):
    """`presented.startswith(known)`: a check written for tokens with a version suffix takes any extension."""

    def is_valid(self, token: str) -> bool:
        return any(token.startswith(known) for known in self.tokens)


class TokenCutAtWhitespace(BearerAuth):
    """`value.split()[1]`: the token is the second word, and whatever follows it is dropped unread."""

    @staticmethod
    def bearer_token(values: list[bytes]) -> str | None:
        words = values[0].decode("latin-1").split() if len(values) == 1 else []
        if len(words) < 2 or words[0].lower() != "bearer":
            return None
        return words[1]


class SchemeCaseSensitive(BearerAuth):
    """`header.startswith("Bearer ")`: the scheme matched as RFC 6750's examples spell it, where RFC 9110
    §11.1 makes it case-insensitive: `bearer TOKEN` and `BEARER TOKEN` are refused as invalid tokens."""

    @staticmethod
    def bearer_token(values: list[bytes]) -> str | None:
        if len(values) != 1 or not values[0].startswith(b"Bearer "):
            return None
        return BearerAuth.bearer_token(values)


def _weak_equal(candidate: str, current: str) -> bool:
    return candidate.removeprefix("W/") == current.removeprefix("W/")


class OnlyLastTagHonoured(EtagPolicy):
    """`header.split(",")[-1]`: a cache that sent its newest tag last is served; any other list misses."""

    def none_match(self, header: str | None, current: str) -> bool:
        if header is None:
            return False
        last = header.split(",")[-1].strip()
        return last == "*" or _weak_equal(last, current)


class TabsNotStripped(EtagPolicy):
    """Elements split on commas and trimmed of spaces only: a tab (OWS, RFC 9110 §5.6.3) stays in the tag."""

    def none_match(self, header: str | None, current: str) -> bool:
        if header is None:
            return False
        if header.strip(" ") == "*":
            return True
        return any(_weak_equal(element.strip(" "), current) for element in header.split(","))


class SplitOnCommaSpace(EtagPolicy):
    """`header.split(", ")`: a list written without a space after its commas is read as one tag."""

    def none_match(self, header: str | None, current: str) -> bool:
        if header is None:
            return False
        if header.strip() == "*":
            return True
        return any(_weak_equal(element, current) for element in header.split(", "))


class KeyPercentDecoded(IdempotencyPolicy):
    """The key is percent-decoded as if it were part of a URL: `%38e03…` and `8e03…` are one key."""

    def key(self, raw: str | None) -> str | None:
        return super().key(None if raw is None else unquote(raw))


_POLICIES = frozenset({"etags", "idempotency"})  # create_app takes these as instances, one per server


def _server(**options: Any) -> Any:
    def build(tokens: Sequence[str]) -> ASGIApp:
        made = {name: value() if name in _POLICIES else value for name, value in options.items()}
        return create_app(list(tokens), **made)

    return build


# fmt: off
NEAR_MISS_FAULTS: list[Fault] = [
    Fault("auth-token-case-insensitive", "auth", "the bearer token is compared case-insensitively",
          ("AUTH-002",), _server(auth_class=TokenCaseInsensitive), SOURCE),
    Fault("auth-token-prefix-accepted", "auth", "a token that merely starts with a valid one is accepted",
          ("AUTH-002",), _server(auth_class=TokenPrefixAccepted), SOURCE),
    Fault("auth-token-cut-at-whitespace", "auth",
          "the token is the second word of Authorization: anything after a space or tab is ignored",
          ("AUTH-002",), _server(auth_class=TokenCutAtWhitespace), SOURCE),
    Fault("auth-scheme-case-sensitive", "auth", "the scheme must be spelled `Bearer`: `bearer TOKEN` gets 401",
          ("AUTH-006",), _server(auth_class=SchemeCaseSensitive), SOURCE),
    Fault("etag-inm-only-last-tag", "etag", "only the last element of an If-None-Match list is compared",
          ("ETAG-005",), _server(etags=OnlyLastTagHonoured), SOURCE),
    Fault("etag-inm-tabs-kept", "etag", "If-None-Match elements are trimmed of spaces but not of tabs",
          ("ETAG-005",), _server(etags=TabsNotStripped), SOURCE),
    Fault("etag-inm-split-on-comma-space", "etag", 'If-None-Match is split on ", ": "a",W/"b" is one tag',
          ("ETAG-005",), _server(etags=SplitOnCommaSpace), SOURCE),
    Fault("idem-key-percent-decoded", "idempotency", "the Idempotency-Key is percent-decoded before it is looked up",
          ("IDEM-011",), _server(idempotency=KeyPercentDecoded), SOURCE),
]
# fmt: on
