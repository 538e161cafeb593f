"""Faults at the documented bounds: a limit, a key length or a body size off at its very edge.

Each is the reference server with one bound wrong by a little, the way such bugs ship: a framework's
own page-size cap under the contract's, a range written with `<` where `<=` was meant, a column one
character short, a size test with `>` one byte late. Only a request at the bound tells them apart
from a correct server, so each is caught only by a check that goes exactly there.

- `page-size-capped-100`: a limit above 100 is served as 100 (a framework's max_page_size), so
  limit=200 over more than 200 runs gives 100 and a cursor; the contract says a page holds exactly
  `limit` runs unless it is the last (PAGE-002), and fewer than `limit` is a violation, not a choice.
- `page-limit-max-199`: limit=200 gets 400 (`1 <= limit < 200`) (PAGE-003).
- `idem-key-max-254`: an Idempotency-Key of 255 characters gets 400 (a VARCHAR(254)) (IDEM-008).
- `idem-key-cut-to-64`: keys are valid up to 255 characters but stored cut to 64 (a VARCHAR(64) under
  MySQL's non-strict mode): two keys of 255 that differ only at the end are one key (IDEM-011).
- `errors-body-limit-one-byte-late`: the size test lets 1 MiB + 1 through and refuses from 1 MiB + 2
  (ERR-008); the other way round, 413 at exactly 1 MiB, is `errors-body-limit-off-by-one` in faults.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from reference_impl.app import create_app
from reference_impl.bodies import MAX_BODY_BYTES
from reference_impl.endpoints import RunsApi
from reference_impl.idempotency import IdempotencyPolicy
from reference_impl.problems import ProblemError

from .faults import Fault

__all__ = ["BOUND_FAULTS"]

SOURCE = "tests/support/faults_bounds.py"
FRAMEWORK_MAX_PAGE = 100


def _with_limit(request: Request, change: int | None) -> Request:
    """The request with its limit replaced (None: left out), everything else as sent."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "limit"]
    if change is not None:
        params.append(("limit", str(change)))
    request.scope["query_string"] = urlencode(params).encode()
    return Request(request.scope, request.receive)


class PageSizeCapped(RunsApi):
    """A limit over 100 is quietly served as 100: the framework's max_page_size, below the contract's 200."""

    async def list_runs(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "")
        if raw.isdigit() and FRAMEWORK_MAX_PAGE < int(raw) <= 200:
            request = _with_limit(request, FRAMEWORK_MAX_PAGE)
        return await super().list_runs(request)


class LimitMax199(RunsApi):
    """limit is checked as 1 <= limit < 200: the documented maximum itself is refused."""

    async def list_runs(self, request: Request) -> Response:
        if request.query_params.get("limit") == "200":
            raise ProblemError("invalid-request", "limit must be from 1 to 199.")
        return await super().list_runs(request)


_KEY_254 = re.compile(r"[\x21-\x7e]{1,254}")


class KeyMax254(IdempotencyPolicy):
    """Keys are stored in a VARCHAR(254) and checked against it: a key of 255 characters is refused."""

    def key(self, raw: str | None) -> str | None:
        if raw is not None and not _KEY_254.fullmatch(raw):
            raise ProblemError("invalid-request", "Idempotency-Key must be 1 to 254 visible ASCII characters.")
        return super().key(raw)


class KeyCutTo64(IdempotencyPolicy):
    """Keys are validated up to 255 characters, then stored cut to 64: only their start is compared."""

    def key(self, raw: str | None) -> str | None:
        valid = super().key(raw)
        return None if valid is None else valid[:64]


def _page_capped(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), api_class=PageSizeCapped)


def _limit_max_199(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), api_class=LimitMax199)


def _key_max_254(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), idempotency=KeyMax254())


def _key_cut_to_64(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), idempotency=KeyCutTo64())


def _body_one_byte_late(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), max_body_bytes=MAX_BODY_BYTES + 1)


# fmt: off
BOUND_FAULTS: list[Fault] = [
    Fault("page-size-capped-100", "pagination",
          "limit above 100 is served as 100 with a cursor: limit=200 over 201 runs gives a page of 100",
          ("PAGE-002",), _page_capped, SOURCE),
    Fault("page-limit-max-199", "pagination", "limit=200, the documented maximum, gets 400",
          ("PAGE-003",), _limit_max_199, SOURCE),
    Fault("idem-key-max-254", "idempotency", "an Idempotency-Key of 255 characters gets 400 (a VARCHAR(254))",
          ("IDEM-008",), _key_max_254, SOURCE),
    Fault("idem-key-cut-to-64", "idempotency",
          "keys are stored cut to 64 characters: two keys of 255 that share their start are one key",
          ("IDEM-011",), _key_cut_to_64, SOURCE),
    Fault("errors-body-limit-one-byte-late", "errors", "a body of 1 MiB + 1 byte is taken; 413 from 1 MiB + 2",
          ("ERR-008",), _body_one_byte_late, SOURCE),
]
# fmt: on
