"""The catalog of faulty servers: the reference server with one realistic bug each, and what it breaks.

Most faults already exist beside the checks' own unit tests (tests/faults_idem_etag.py,
tests/faults_cancel_page.py, tests/planted_bugs.py); this catalog reuses them by name and adds
the ones nobody had yet (the schema faults, any token accepted, byte-for-byte idempotency). Each
fault replaces one part of the reference server (a subclass of its store, cursor codec, ETag or
idempotency policy, auth middleware or operations, passed to create_app) or wraps it in ASGI
middleware for a bug that lives at the HTTP level.

`breaks` names the requirement IDs the suite must report failed against the fault, run under
--strict (so a SHOULD counts). Other IDs may fail as well; scripts/mutation_score.py shows which.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faults_cancel_page
import faults_idem_etag
import planted_bugs
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from conformance.catalog import catalog
from reference_impl.app import create_app
from reference_impl.auth import BearerAuth
from reference_impl.endpoints import RunsApi
from reference_impl.idempotency import IdempotencyPolicy
from reference_impl.store import RunStore
from reference_impl.timestamps import MonotonicTimestamps

from .asgi import Headers, header, operation, rewrite_headers, rewrite_json, without

__all__ = ["FAULTS", "Fault", "fault"]

AppFactory = Callable[[Sequence[str]], ASGIApp]


@dataclass(frozen=True)
class Fault:
    name: str
    area: str
    description: str
    breaks: tuple[str, ...]  # requirement IDs the suite must report failed (under --strict)
    build: AppFactory  # tokens -> the faulty ASGI app
    source: str = "tests/selfcheck/faults.py"  # where the bug is written
    cli_args: tuple[str, ...] = field(default=())  # extra arguments it needs to be caught in good time

    @property
    def select(self) -> tuple[str, ...]:
        """The areas of the requirements it breaks: what the self-check runs against it."""
        reqs = catalog()
        return tuple(sorted({reqs[rid].area for rid in self.breaks}))


# --- reused faults ------------------------------------------------------------------------------------
def _module_fault(module: Any, name: str) -> AppFactory:
    """A fault of a module whose factories are bound to its own tokens (the tests' conftest tokens)."""
    factories: Mapping[str, Callable[[], ASGIApp]] = module.FAULTS
    factory = factories[name]

    def build(tokens: Sequence[str]) -> ASGIApp:
        if list(tokens) != list(module.TOKENS):
            raise ValueError(f"{module.__name__}.{name} serves the tokens {module.TOKENS}, not these")
        return factory()

    return build


def _idem_etag(name: str) -> tuple[AppFactory, str]:
    return _module_fault(faults_idem_etag, name), f"tests/faults_idem_etag.py: {name}"


def _cancel_page(name: str) -> tuple[AppFactory, str]:
    return _module_fault(faults_cancel_page, name), f"tests/faults_cancel_page.py: {name}"


def _planted(name: str) -> tuple[AppFactory, str]:
    bug = planted_bugs.BUGS[name]
    return (lambda tokens: bug.wrap(create_app(list(tokens)), tokens)), f"tests/planted_bugs.py: {name}"


def _reused(name: str, area: str, description: str, breaks: tuple[str, ...], origin: tuple[AppFactory, str]) -> Fault:
    build, source = origin
    return Fault(name, area, description, breaks, build, source)


# --- faults of this module ----------------------------------------------------------------------------
_RAW_BODY: contextvars.ContextVar[bytes] = contextvars.ContextVar("raw_body", default=b"")


class RawBodyApi(RunsApi):
    """Makes the raw request body visible to the idempotency policy (Starlette caches it on the request)."""

    async def start_run(self, request: Request) -> Response:
        token = _RAW_BODY.set(await request.body())
        try:
            return await super().start_run(request)
        finally:
            _RAW_BODY.reset(token)


class BytewiseFingerprint(IdempotencyPolicy):
    """Compares request bodies byte for byte: other key order or whitespace makes 'a different body'."""

    def fingerprint(self, body: Any) -> str:
        return hashlib.sha256(_RAW_BODY.get()).hexdigest()


class AnyTokenAccepted(BearerAuth):
    """Checks that a bearer token is there, not that it is one of the server's."""

    def is_valid(self, token: str) -> bool:
        return True


def _spell_canceled(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("canceled" if k == "status" and v == "cancelled" else _spell_canceled(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_spell_canceled(v) for v in value]
    return value


def _omit_null_run_members(value: Any) -> Any:
    """A serializer set to drop null members, applied to Runs (cancelRequestedAt, finishedAt, ...)."""
    if isinstance(value, dict):
        is_run = "definitionHash" in value
        return {k: _omit_null_run_members(v) for k, v in value.items() if not (is_run and v is None)}
    if isinstance(value, list):
        return [_omit_null_run_members(v) for v in value]
    return value


class LocalTimestamps(MonotonicTimestamps):
    """ISO 8601 without an offset (`2026-11-28T10:00:00.123456`), which RFC 3339 does not allow."""

    def now(self) -> str:
        return super().now().removesuffix("Z")


class LocalTimestampStore(RunStore):
    def __init__(self) -> None:
        super().__init__(None, LocalTimestamps())


class DefinitionAsText(RunsApi):
    """Serves the workflow snapshot as text/plain (the stored JSON text, sent as it is stored)."""

    async def get_run_definition(self, request: Request) -> Response:
        response = await super().get_run_definition(request)
        if response.status_code != 200:
            return response
        return Response(bytes(response.body), media_type="text/plain", headers={"ETag": response.headers["etag"]})


def _created_not_accepted(scope: Any, status: int, headers: Headers) -> tuple[int, Headers]:
    return (201 if status == 202 and operation(scope) == "startRun" else status), headers


def _problems_as_plain_json(scope: Any, status: int, headers: Headers) -> tuple[int, Headers]:
    if header(headers, b"content-type") == b"application/problem+json":
        headers = [*without(headers, b"content-type"), (b"content-type", b"application/json")]
    return status, headers


_CLASS_OPTIONS = frozenset({"api_class", "auth_class"})  # create_app takes these as classes


def _with(**options: Any) -> AppFactory:
    """create_app with replaced parts; other classes are instantiated per server, so no state is shared."""

    def build(tokens: Sequence[str]) -> ASGIApp:
        made = {k: v() if isinstance(v, type) and k not in _CLASS_OPTIONS else v for k, v in options.items()}
        return create_app(list(tokens), **made)

    return build


def _json_rewrite(transform: Callable[[Any], Any]) -> AppFactory:
    return lambda tokens: rewrite_json(create_app(list(tokens)), lambda scope, status, data: transform(data))


def _header_rewrite(transform: Callable[[Any, int, Headers], tuple[int, Headers]]) -> AppFactory:
    return lambda tokens: rewrite_headers(create_app(list(tokens)), transform)


# --- the catalog ----------------------------------------------------------------------------------------
# fmt: off
FAULTS: list[Fault] = [
    # idempotency
    _reused("idem-key-ignored", "idempotency", "the Idempotency-Key header is never read",
            ("IDEM-001", "IDEM-002"), _idem_etag("key_ignored")),
    _reused("idem-cached-202-other-body", "idempotency", "a reused key replays the first run's 202 for any body",
            ("IDEM-003",), _idem_etag("any_body_replays")),
    _reused("idem-check-then-insert", "idempotency",
            "the key is looked up, the handler awaits, then stores it: concurrent retries both start runs",
            ("IDEM-006",), _idem_etag("racy_key_cache")),
    _reused("idem-keys-shared-across-tokens", "idempotency", "keys live in one namespace for every credential",
            ("IDEM-007",), _idem_etag("keys_shared_across_tokens")),
    Fault("idem-bodies-byte-for-byte", "idempotency",
          "bodies are compared byte for byte: other key order or whitespace is 'a different body' (409)",
          ("IDEM-005",), _with(api_class=RawBodyApi, idempotency=BytewiseFingerprint)),
    _reused("idem-conflict-creates-run", "idempotency", "the 409 path inserts the run before it checks the key",
            ("IDEM-004",), _idem_etag("run_created_on_conflict")),
    _reused("idem-invalid-keys-accepted", "idempotency", "no syntax check on Idempotency-Key",
            ("IDEM-008",), _idem_etag("invalid_keys_accepted")),
    _reused("idem-rejected-request-burns-key", "idempotency", "a 400 uses the key up: the corrected retry gets 409",
            ("IDEM-009",), _idem_etag("rejected_requests_burn_keys")),
    _reused("idem-keyless-requests-share-a-key", "idempotency", "a missing header is read as one default key",
            ("IDEM-010",), _idem_etag("keyless_requests_share_a_key")),
    # etag and the definition snapshot
    _reused("etag-strong", "etag", "the ETag is strong (no W/)", ("ETAG-004",), _idem_etag("strong_etag")),
    _reused("etag-unstable", "etag", "the ETag changes on every response (a counter in it)",
            ("ETAG-004", "ETAG-005"), _idem_etag("unstable_etag")),
    _reused("etag-not-from-definition-hash", "etag", "a stable weak ETag of its own, not W/<definitionHash>",
            ("ETAG-004",), _idem_etag("etag_not_from_hash")),
    _reused("etag-if-none-match-ignored", "etag", "If-None-Match is ignored: always 200",
            ("ETAG-005",), _idem_etag("if_none_match_ignored")),
    _reused("etag-304-without-etag", "etag", "the 304 carries no ETag",
            ("ETAG-005",), _idem_etag("not_modified_without_etag")),
    _reused("etag-304-beats-404", "etag", "If-None-Match: * gets 304 before the run is looked up (unknown runs too)",
            ("ETAG-007",), _idem_etag("not_modified_for_unknown_run")),
    _reused("etag-hash-of-name-only", "etag", "definitionHash covers only name and version",
            ("ETAG-002",), _idem_etag("definition_hash_of_name_only")),
    _reused("etag-hash-not-rfc8785", "etag", "definitionHash over json.dumps(sort_keys=True), not RFC 8785",
            ("ETAG-003",), _idem_etag("definition_hash_not_rfc8785")),
    _reused("definition-normalised", "etag", "the definition is served with defaults filled in, not as submitted",
            ("ETAG-001",), _idem_etag("definition_with_defaults")),
    # cancel
    _reused("cancel-unknown-202", "cancel", "cancel of an unknown run answers 202 cancelled",
            ("CANCEL-001",), _cancel_page("cancel_of_unknown_accepted")),
    _reused("cancel-finished-flips", "cancel", "cancel of a succeeded or failed run makes it cancelled",
            ("CANCEL-004", "LIFE-002"), _cancel_page("cancel_flips_terminal")),
    _reused("cancel-requested-at-overwritten", "cancel", "every cancel writes cancelRequestedAt again (no COALESCE)",
            ("CANCEL-005",), _cancel_page("cancel_restamps")),
    Fault("cancel-ignored", "cancel", "202 cancelling, but the cancel is never recorded",
          ("CANCEL-002",), _cancel_page("cancel_ignored")[0], "tests/faults_cancel_page.py: cancel_ignored",
          cli_args=("--timeout", "5")),
    Fault("cancel-never-stops", "cancel", "the executor is never told: a cancelled run stays cancelling",
          ("CANCEL-003",), _cancel_page("cancel_never_stops")[0], "tests/faults_cancel_page.py: cancel_never_stops",
          cli_args=("--timeout", "5")),
    # pagination
    _reused("page-offset-cursor", "pagination", "cursors hold an offset: runs created mid-walk repeat runs",
            ("PAGE-006",), _cancel_page("offset_cursors")),
    _reused("page-boundary-dropped", "pagination", "the look-ahead row's key goes in the cursor: it is never listed",
            ("PAGE-006",), _cancel_page("boundary_dropped")),
    _reused("page-boundary-repeated", "pagination", "seq <= cursor: each page repeats the last run of the one before",
            ("PAGE-006",), _cancel_page("boundary_repeated")),
    _reused("page-limit-ignored", "pagination", "limit is validated, then ignored (pages of 50)",
            ("PAGE-002",), _cancel_page("limit_ignored")),
    _reused("page-filters-lost", "pagination", "status and clientId filters apply to the first page only",
            ("PAGE-009",), _cancel_page("filters_lost_after_first_page")),
    _reused("page-tampered-cursor-500", "pagination", "the cursor is trusted unsigned and unchecked: garbage gives 500",
            ("PAGE-007", "ERR-001"), _cancel_page("tampered_cursor_500")),
    _reused("page-tampered-cursor-restarts", "pagination", "a cursor it cannot read restarts the walk",
            ("PAGE-007",), _cancel_page("bad_cursor_restarts")),
    _reused("page-cursor-on-full-last-page", "pagination", "a full last page still gets a nextCursor",
            ("PAGE-004",), _cancel_page("cursor_on_full_last_page")),
    _reused("page-oldest-first", "pagination", "the listing is oldest first", ("PAGE-001",),
            _cancel_page("oldest_first")),
    _reused("page-cursor-ignores-filters", "pagination", "the cursor is accepted with any filters",
            ("PAGE-008",), _cancel_page("cursor_ignores_filters")),
    _reused("page-server-side-cursors", "pagination", "a cursor advances each time it is read",
            ("PAGE-005",), _cancel_page("server_side_cursors")),
    _reused("page-limit-coerced", "pagination", "an out-of-range limit is clamped instead of refused",
            ("PAGE-003",), _cancel_page("limit_coerced")),
    _reused("page-filters-unvalidated", "pagination", "a status no run can have is an empty page, not 400",
            ("PAGE-010",), _cancel_page("filters_unvalidated")),
    # auth
    _reused("auth-missing-token-accepted", "auth", "a request without Authorization is served as the first token",
            ("AUTH-001",), _planted("token_optional")),
    Fault("auth-any-token-accepted", "auth", "any bearer token is accepted", ("AUTH-002",),
          _with(auth_class=AnyTokenAccepted)),
    _reused("auth-401-without-challenge", "auth", "401 without WWW-Authenticate", ("AUTH-003",),
            _planted("no_challenge")),
    # schema and errors
    Fault("schema-misspelled-status", "schema", 'the status "cancelled" is spelled "canceled" in responses',
          ("SCHEMA-002",), _json_rewrite(_spell_canceled)),
    Fault("schema-missing-field", "schema", "null members of a Run are left out (cancelRequestedAt, finishedAt)",
          ("SCHEMA-002",), _json_rewrite(_omit_null_run_members)),
    Fault("schema-bad-timestamps", "schema", "timestamps without an offset (not RFC 3339)",
          ("SCHEMA-002",), _with(store=LocalTimestampStore)),
    Fault("schema-wrong-content-type", "schema", "the definition is served as text/plain",
          ("SCHEMA-003",), _with(api_class=DefinitionAsText)),
    Fault("schema-201-not-202", "schema", "startRun answers 201 instead of 202",
          ("SCHEMA-001", "SCHEMA-005"), _header_rewrite(_created_not_accepted)),
    _reused("errors-500-on-malformed-json", "errors", "a body that is not JSON gets 500",
            ("ERR-003", "ERR-001"), _planted("malformed_json_500")),
    Fault("errors-problem-as-plain-json", "errors", "Problems are sent as application/json",
          ("ERR-002",), _header_rewrite(_problems_as_plain_json)),
    _reused("errors-no-405", "errors", "undeclared methods get 404 without Allow", ("ERR-011",),
            _planted("no_405")),
    # lifecycle
    _reused("life-failed-without-finished-at", "lifecycle", "a failed run keeps finishedAt null",
            ("LIFE-003",), _cancel_page("failed_without_finished_at")),
    _reused("life-started-at-rewritten", "lifecycle", "finishing a run re-stamps startedAt",
            ("LIFE-004",), _cancel_page("started_at_rewritten")),
    _reused("life-stale-list-status", "lifecycle", "listRuns shows the status a run was created with",
            ("LIFE-001",), _cancel_page("stale_list_status")),
    _reused("life-failures-swallowed", "lifecycle", "a failing step is logged and the run succeeds",
            ("LIFE-005",), _cancel_page("failures_swallowed")),
]
# fmt: on


def fault(name: str) -> Fault:
    for item in FAULTS:
        if item.name == name:
            return item
    raise KeyError(name)
