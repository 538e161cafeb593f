"""Faulty servers a single client catches: the reference server with one realistic bug each, and what it breaks.

Most faults already exist beside the checks' own unit tests (faults_idem_etag.py,
faults_cancel_page.py, planted_bugs.py); this catalog reuses them by name and adds
the ones nobody had yet (the schema faults, any token accepted, byte-for-byte idempotency). Each
fault replaces one part of the reference server (a subclass of its store, cursor codec, ETag or
idempotency policy, auth middleware or operations, passed to create_app) or wraps it in ASGI
middleware for a bug that lives at the HTTP level.

`breaks` names the requirement IDs the suite must report failed against the fault, run under
--strict (so a SHOULD counts). Other IDs may fail as well; scripts/mutation_score.py shows which.
The bugs only concurrent clients see are in faults_concurrency.py; servers.py joins both.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from conformance.catalog import catalog
from conformance.spec import load_spec
from reference_impl.app import create_app
from reference_impl.auth import BearerAuth
from reference_impl.bodies import MAX_BODY_BYTES
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.idempotency import IdempotencyPolicy
from reference_impl.problems import ProblemError
from reference_impl.store import _COLUMNS, RUN_ID_PATTERN, RunRecord, RunStore
from reference_impl.timestamps import MonotonicTimestamps
from reference_impl.validation import (
    WORKFLOW_RULES,
    WorkflowRule,
    acyclic_dependencies,
    known_dependencies,
    unique_step_ids,
)

from . import faults_cancel_page, faults_idem_etag, planted_bugs
from .asgi import (
    Headers,
    RequestRewrite,
    ResponseRewrite,
    Rewrite,
    header,
    operation,
    rewrite_headers,
    rewrite_json,
    without,
)
from .faults_evidence import evidence_faults

__all__ = ["SINGLE_CLIENT_FAULTS", "Fault", "one_4xx_as_text"]

AppFactory = Callable[[Sequence[str]], ASGIApp]


@dataclass(frozen=True)
class Fault:
    name: str
    area: str
    description: str
    breaks: tuple[str, ...]  # requirement IDs the suite must report failed (under --strict)
    build: AppFactory  # tokens -> the faulty ASGI app
    source: str = "tests/support/faults.py"  # where the bug is written
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
    return _module_fault(faults_idem_etag, name), f"tests/support/faults_idem_etag.py: {name}"


def _cancel_page(name: str) -> tuple[AppFactory, str]:
    return _module_fault(faults_cancel_page, name), f"tests/support/faults_cancel_page.py: {name}"


def _planted(name: str) -> tuple[AppFactory, str]:
    bug = planted_bugs.BUGS[name]
    return (lambda tokens: bug.wrap(create_app(list(tokens)), tokens)), f"tests/support/planted_bugs.py: {name}"


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


# --- schema: headers, Location, read-back ----------------------------------------------------------------
class DefinitionWithoutEtag(RunsApi):
    """The definition's 200 goes out without its ETag: the header is set on the 304 path only."""

    async def get_run_definition(self, request: Request) -> Response:
        response = await super().get_run_definition(request)
        if response.status_code == 200:
            del response.headers["etag"]
        return response


def _location_without_prefix(scope: Any, status: int, headers: Headers) -> tuple[int, Headers]:
    """Location built from the resource's own route, without the /api/v1 mount: /runs/{runId}."""
    if status == 202 and operation(scope) == "startRun":
        value = header(headers, b"location") or b""
        headers = [*without(headers, b"location"), (b"location", value.removeprefix(b"/api/v1"))]
    return status, headers


class InputsDroppedOnRead(RunsApi):
    """getRun serves the run from a summary projection that leaves inputs out: always {}."""

    async def get_run(self, request: Request) -> Response:
        return json_response({**self.find_run(request).to_api(), "inputs": {}})


@dataclass
class ReplicaLagApi(RunsApi):
    """Reads go to a replica a second behind the primary: a new run is 404 and unlisted for its first second."""

    lag_s: float = 1.0
    born: dict[str, float] = field(default_factory=dict)

    async def start_run(self, request: Request) -> Response:
        response = await super().start_run(request)
        if response.status_code == 202:
            self.born.setdefault(json.loads(bytes(response.body))["runId"], time.monotonic())
        return response

    def _unseen(self, run_id: str) -> bool:
        return time.monotonic() - self.born.get(run_id, -math.inf) < self.lag_s

    def find_run(self, request: Request) -> RunRecord:
        run = super().find_run(request)
        if self._unseen(run.run_id):
            raise ProblemError("not-found", f"There is no run {run.run_id!r}.")
        return run

    async def list_runs(self, request: Request) -> Response:
        data = json.loads(bytes((await super().list_runs(request)).body))
        data["items"] = [item for item in data["items"] if not self._unseen(item["runId"])]
        return json_response(data)


# --- errors: what startRun lets through ------------------------------------------------------------------
def _drop_unknown_members(body: Any) -> None:
    """What a model set to ignore extra fields does: unknown members vanish at every level."""
    schemas = load_spec()["components"]["schemas"]

    def keep(value: Any, schema: str) -> None:
        if isinstance(value, dict):
            for name in set(value) - set(schemas[schema]["properties"]):
                del value[name]

    keep(body, "RunStartRequest")
    workflow = body.get("workflow") if isinstance(body, dict) else None
    keep(workflow, "Workflow")
    steps = workflow.get("steps") if isinstance(workflow, dict) else None
    for step in steps if isinstance(steps, list) else []:
        keep(step, "Step")


class UnknownFieldsIgnored(RunsApi):
    """Unknown members are dropped before validation instead of refused."""

    def check_request(self, body: dict[str, Any]) -> None:
        _drop_unknown_members(body)
        super().check_request(body)


def _without_rule(rule: WorkflowRule) -> tuple[WorkflowRule, ...]:
    return tuple(r for r in WORKFLOW_RULES if r is not rule)


class DuplicateStepIdsAccepted(RunsApi):
    """Step ids are never compared: two steps "a" are accepted (the run fails when it is scheduled)."""

    workflow_rules = _without_rule(unique_step_ids)


class UnknownDependenciesAccepted(RunsApi):
    """dependsOn is not checked against the workflow's steps: a step waits for one that does not exist."""

    workflow_rules = _without_rule(known_dependencies)


class CyclesAccepted(RunsApi):
    """No cycle detection: a workflow whose steps wait for each other is accepted, and never runs a step."""

    workflow_rules = _without_rule(acyclic_dependencies)


def _any_content_type_as_json(scope: Any) -> Any:
    """A framework that parses the body as JSON whatever Content-Type says (text/plain, forms, XML)."""
    if operation(scope) == "startRun" and header(scope["headers"], b"content-type") is not None:
        scope["headers"] = [*without(scope["headers"], b"content-type"), (b"content-type", b"application/json")]
    return scope


_RUN_ID = re.compile(RUN_ID_PATTERN)


class MalformedRunIdIs400(RunsApi):
    """An ID not of the server's own form is a bad request (400), not an unknown run (404)."""

    def find_run(self, request: Request) -> RunRecord:
        run_id = str(request.path_params["runId"])
        if not _RUN_ID.fullmatch(run_id):
            raise ProblemError("invalid-request", f"{run_id[:64]!r} is not a run ID.")
        return super().find_run(request)


class PrefixLookupStore(RunStore):
    def by_prefix(self, prefix: str) -> RunRecord | None:
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE run_id LIKE ? || '%' ORDER BY seq LIMIT 1", (prefix,)
            ).fetchone()
        return RunRecord(*row) if row else None


class RunIdPrefixLookup(RunsApi):
    """Runs are found by `run_id LIKE :id || '%'` (short IDs, as git and docker allow): a prefix finds the run."""

    def find_run(self, request: Request) -> RunRecord:
        run_id = str(request.path_params["runId"])
        assert isinstance(self.store, PrefixLookupStore)
        run = self.store.by_prefix(run_id) if run_id else None
        if run is None:
            raise ProblemError("not-found", f"There is no run {run_id[:64]!r}.")
        return run


class RunIdTruncated(RunsApi):
    """The ID is cut to the key column's 30 characters before the lookup: the runId with anything appended finds it."""

    def find_run(self, request: Request) -> RunRecord:
        run_id = str(request.path_params["runId"])[:30]
        run = self.store.get(run_id) if _RUN_ID.fullmatch(run_id) else None
        if run is None:
            raise ProblemError("not-found", f"There is no run {run_id!r}.")
        return run


def one_4xx_as_text(status: int, slug: str, on: str | None = None) -> Rewrite:
    """One kind of 4xx (of one operation, if `on` names it) answered as text/plain, as a handler that
    writes its own error page does; every other answer stays as the reference server gives it."""

    def rewrite(scope: Any, got: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        data = json.loads(body) if got == status and body and on in (None, operation(scope)) else None
        if isinstance(data, dict) and str(data.get("type", "")).endswith("/" + slug):
            return (
                got,
                [*without(headers, b"content-type"), (b"content-type", b"text/plain; charset=utf-8")],
                (f"{data.get('title')}: {data.get('detail')}".encode()),
            )
        return got, headers, body

    return rewrite


# --- auth ---------------------------------------------------------------------------------------------------
class HandlerBeforeAuth:
    """Authentication decided after the handler ran: an unauthenticated request is carried out, then answered 401."""

    def __init__(self, app: ASGIApp, tokens: Sequence[str]) -> None:
        self.app = app
        self.auth = BearerAuth(app, tokens)
        self.token = tokens[0]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        token = BearerAuth.bearer_token(values) if values else None
        if token is not None and self.auth.is_valid(token):
            await self.app(scope, receive, send)
            return
        as_user = [*without(scope["headers"], b"authorization"), (b"authorization", f"Bearer {self.token}".encode())]

        async def discard(message: Any) -> None:
            return None

        await self.app({**scope, "headers": as_user}, receive, discard)
        error = "invalid_token" if values and BearerAuth.is_bearer_attempt(values) else None
        await self.auth.reject(scope, receive, send, "A valid bearer token is required.", error=error)


class ChallengeAlwaysInvalidToken(BearerAuth):
    """error="invalid_token" in every challenge, also when no credentials were sent (RFC 6750 §3.1 says none)."""

    def challenge(self, error: str | None) -> str:
        return super().challenge("invalid_token")


class ChallengeWithoutErrorCode(BearerAuth):
    """A bare `Bearer realm="runs"` challenge, also for a token it refused: the client cannot tell why."""

    def challenge(self, error: str | None) -> str:
        return super().challenge(None)


# --- near misses in listings and keys ----------------------------------------------------------------------
class ClientIdMatchStore(RunStore):
    """The reference listing with another comparison of client_id (one `?` for the filter value)."""

    client_clause: ClassVar[str] = "client_id = ?"

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        clauses, args = [], []
        for clause, value in (("seq < ?", before_seq), ("status = ?", status), (self.client_clause, client_id)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM runs {where} ORDER BY seq DESC LIMIT ?", [*args, limit + 1]
            ).fetchall()
        records = [RunRecord(*row) for row in rows]
        return records[:limit], len(records) > limit


class ClientIdPrefixStore(ClientIdMatchStore):
    """clientId filtered with `LIKE :value || '%'`: the search box's "starts with" reused for the filter."""

    client_clause = "client_id LIKE ? || '%'"


class ClientIdNoCaseStore(ClientIdMatchStore):
    """clientId compared under a case-insensitive collation (MySQL's default, SQLite's NOCASE)."""

    client_clause = "client_id = ? COLLATE NOCASE"


class FilterValuesNormalised(RunsApi):
    """Query values are trimmed, and status lower-cased, before they are validated: 'Succeeded ' is taken."""

    async def list_runs(self, request: Request) -> Response:
        params = [
            (k, v.strip().lower() if k == "status" else v.strip() if k == "clientId" else v)
            for k, v in request.query_params.multi_items()
        ]
        request.scope["query_string"] = urlencode(params).encode()
        return await super().list_runs(Request(request.scope, request.receive))


class DefaultLimit20(RunsApi):
    """Without limit, pages of 20 (the framework's default page size), not the contract's 50."""

    async def list_runs(self, request: Request) -> Response:
        if "limit" not in request.query_params:
            request.scope["query_string"] = b"&".join(p for p in (request.scope["query_string"], b"limit=20") if p)
            request = Request(request.scope, request.receive)
        return await super().list_runs(request)


def _empty_cursor_at_end(scope: Any, status: int, data: Any) -> Any:
    """The last page says nextCursor "" (a serializer that writes missing strings as empty ones)."""
    if operation(scope) == "listRuns" and status == 200 and isinstance(data, dict) and data.get("nextCursor") is None:
        return {**data, "nextCursor": ""}
    return data


class CaseFoldedKeys(IdempotencyPolicy):
    """Keys are stored lower-cased (a case-insensitive unique index): 'RC-1' finds the run of 'rc-1'."""

    def key(self, raw: str | None) -> str | None:
        key = super().key(raw)
        return None if key is None else key.lower()


class UnquotedKeys(IdempotencyPolicy):
    """Keys are read as the draft's sf-String: surrounding quotes are syntax, so '"k"' is the key k."""

    def key(self, raw: str | None) -> str | None:
        key = super().key(raw)
        return None if key is None else key.strip('"') or key


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


def _wrapped(wrap: Callable[[ASGIApp], ASGIApp], **options: Any) -> AppFactory:
    """The reference server (with replaced parts) inside one middleware."""
    inner = _with(**options)
    return lambda tokens: wrap(inner(tokens))


# --- the catalog ----------------------------------------------------------------------------------------
# fmt: off
SINGLE_CLIENT_FAULTS: list[Fault] = [
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
    Fault("idem-keys-case-folded", "idempotency", "keys are stored lower-cased: a key in other case replays the run",
          ("IDEM-011",), _with(idempotency=CaseFoldedKeys)),
    Fault("idem-keys-unquoted", "idempotency", 'keys are read as sf-Strings: "k" in quotes is the key k',
          ("IDEM-011",), _with(idempotency=UnquotedKeys)),
    # etag and the definition snapshot
    _reused("etag-strong", "etag", "the ETag is strong (no W/)", ("ETAG-004",), _idem_etag("strong_etag")),
    _reused("etag-unstable", "etag", "the ETag changes on every response (a counter in it)",
            ("ETAG-004", "ETAG-005"), _idem_etag("unstable_etag")),
    _reused("etag-not-from-definition-hash", "etag", "a stable weak ETag of its own, not W/<definitionHash>",
            ("ETAG-004",), _idem_etag("etag_not_from_hash")),
    _reused("etag-if-none-match-ignored", "etag", "If-None-Match is ignored: always 200",
            ("ETAG-005",), _idem_etag("if_none_match_ignored")),
    _reused("etag-if-none-match-case-insensitive", "etag",
            "If-None-Match compared case-insensitively: a tag differing in case gets 304, not 200",
            ("ETAG-006",), _idem_etag("if_none_match_case_insensitive")),
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
          ("CANCEL-002",), *_cancel_page("cancel_ignored"),
          cli_args=("--timeout", "5")),
    Fault("cancel-never-stops", "cancel", "the executor is never told: a cancelled run stays cancelling",
          ("CANCEL-003",), *_cancel_page("cancel_never_stops"),
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
    Fault("page-client-id-prefix-filter", "pagination", "clientId filtered with LIKE 'x%': its prefix matches",
          ("PAGE-009",), _with(store=ClientIdPrefixStore)),
    Fault("page-client-id-case-insensitive", "pagination", "clientId compared under a case-insensitive collation",
          ("PAGE-009",), _with(store=ClientIdNoCaseStore)),
    Fault("page-filter-values-normalised", "pagination",
          "status and clientId are trimmed (status lower-cased) before validation: 'Succeeded ' is accepted",
          ("PAGE-010",), _with(api_class=FilterValuesNormalised)),
    Fault("page-empty-cursor-on-last-page", "pagination", 'the last page says nextCursor "" instead of null',
          ("PAGE-004",), lambda tokens: rewrite_json(create_app(list(tokens)), _empty_cursor_at_end)),
    Fault("page-default-limit-20", "pagination", "without limit, pages of 20, not 50",
          ("PAGE-002",), _with(api_class=DefaultLimit20)),
    # auth
    _reused("auth-missing-token-accepted", "auth", "a request without Authorization is served as the first token",
            ("AUTH-001",), _planted("token_optional")),
    Fault("auth-any-token-accepted", "auth", "any bearer token is accepted", ("AUTH-002",),
          _with(auth_class=AnyTokenAccepted)),
    _reused("auth-401-without-challenge", "auth", "401 without WWW-Authenticate", ("AUTH-003",),
            _planted("no_challenge")),
    Fault("auth-handler-runs-before-401", "auth",
          "the handler runs before the token is checked: an unauthenticated startRun or cancel takes effect, then 401",
          ("AUTH-004",), lambda tokens: HandlerBeforeAuth(create_app(list(tokens)), tokens)),
    Fault("auth-challenge-always-invalid-token", "auth", 'error="invalid_token" also when no credentials were sent',
          ("AUTH-005",), _with(auth_class=ChallengeAlwaysInvalidToken)),
    Fault("auth-challenge-without-error-code", "auth", "no error code in the challenge for a refused token",
          ("AUTH-005",), _with(auth_class=ChallengeWithoutErrorCode)),
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
    Fault("schema-definition-without-etag", "schema", "getRunDefinition's 200 carries no ETag",
          ("SCHEMA-004",), _with(api_class=DefinitionWithoutEtag)),
    Fault("schema-location-without-prefix", "schema", "startRun's Location is /runs/{runId}, without /api/v1",
          ("SCHEMA-006",), _header_rewrite(_location_without_prefix)),
    Fault("schema-get-run-drops-inputs", "schema", "getRun answers inputs {} whatever was submitted",
          ("SCHEMA-007",), _with(api_class=InputsDroppedOnRead)),
    Fault("schema-read-lag", "schema", "reads lag a second behind: a new run is 404 and unlisted at first",
          ("SCHEMA-008",), _with(api_class=ReplicaLagApi)),
    _reused("errors-500-on-malformed-json", "errors", "a body that is not JSON gets 500",
            ("ERR-003", "ERR-001"), _planted("malformed_json_500")),
    Fault("errors-problem-as-plain-json", "errors", "Problems are sent as application/json",
          ("ERR-002",), _header_rewrite(_problems_as_plain_json)),
    _reused("errors-no-405", "errors", "undeclared methods get 404 without Allow", ("ERR-011",),
            _planted("no_405")),
    Fault("errors-unknown-fields-ignored", "errors", "unknown members are dropped, not refused",
          ("ERR-004",), _with(api_class=UnknownFieldsIgnored)),
    Fault("errors-duplicate-step-ids-accepted", "errors", "two steps with one id are accepted",
          ("ERR-005",), _with(api_class=DuplicateStepIdsAccepted)),
    Fault("errors-unknown-dependency-accepted", "errors", "dependsOn naming no step of the workflow is accepted",
          ("ERR-006",), _with(api_class=UnknownDependenciesAccepted)),
    Fault("errors-cycles-accepted", "errors", "cyclic dependsOn is accepted", ("ERR-007",),
          _with(api_class=CyclesAccepted)),
    Fault("errors-body-limit-off-by-one", "errors", "413 at exactly 1 MiB (size >= limit): a 1 MiB body is refused",
          ("ERR-008",), _with(max_body_bytes=MAX_BODY_BYTES - 1)),
    Fault("errors-no-body-limit", "errors", "no body limit (64 MiB): a body over 1 MiB is taken",
          ("ERR-008",), _with(max_body_bytes=64 * MAX_BODY_BYTES)),
    Fault("errors-any-content-type-as-json", "errors", "the body is parsed as JSON whatever its Content-Type",
          ("ERR-009",), _wrapped(lambda app: RequestRewrite(app, _any_content_type_as_json))),
    Fault("errors-malformed-run-id-400", "errors", "a runId not of the server's form gets 400, not 404",
          ("ERR-010",), _with(api_class=MalformedRunIdIs400)),
    Fault("errors-run-id-prefix-lookup", "errors", "runs are looked up by run_id LIKE :id || '%': a prefix finds one",
          ("ERR-010",), _with(store=PrefixLookupStore, api_class=RunIdPrefixLookup)),
    Fault("errors-run-id-truncated", "errors", "the runId is cut to 30 characters: any suffix still finds the run",
          ("ERR-010",), _with(api_class=RunIdTruncated)),
    Fault("errors-reused-key-409-as-text", "errors",
          "the idempotency-key-reused 409 alone is text/plain; every other 4xx is a Problem",
          ("ERR-002", "IDEM-003"),
          _wrapped(lambda app: ResponseRewrite(app, one_4xx_as_text(409, "idempotency-key-reused")))),
    # lifecycle
    _reused("life-failed-without-finished-at", "lifecycle", "a failed run keeps finishedAt null",
            ("LIFE-003",), _cancel_page("failed_without_finished_at")),
    _reused("life-started-at-rewritten", "lifecycle", "finishing a run re-stamps startedAt",
            ("LIFE-004",), _cancel_page("started_at_rewritten")),
    _reused("life-stale-list-status", "lifecycle", "listRuns shows the status a run was created with",
            ("LIFE-001",), _cancel_page("stale_list_status")),
    _reused("life-failures-swallowed", "lifecycle", "a failing step is logged and the run succeeds",
            ("LIFE-005",), _cancel_page("failures_swallowed")),
    *evidence_faults(),
]
# fmt: on
from .faults_schema import SCHEMA_FAULTS  # noqa: E402

SINGLE_CLIENT_FAULTS += [Fault(*fault) for fault in SCHEMA_FAULTS]
from .faults_stall import KEYLESS_FAULTS  # noqa: E402

SINGLE_CLIENT_FAULTS += KEYLESS_FAULTS
from .faults_final import final_faults  # noqa: E402

SINGLE_CLIENT_FAULTS += final_faults()
