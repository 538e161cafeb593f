"""Correct variants: servers that differ from the reference but keep the contract.

The suite must pass each with no failure and no warning (--strict): a check that fails one of
these is too strict, i.e. it tests the reference server rather than the contract. The variants that
differ where only concurrency shows are in variants_concurrency.py; servers.py joins both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import hmac
import itertools
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.actions import DEFAULT_ACTIONS, Action
from reference_impl.app import create_app
from reference_impl.bodies import check_json_media_type
from reference_impl.cursors import CursorCodec, Filters
from reference_impl.definitions import definition_hash
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.problems import ProblemError
from reference_impl.store import RunRecord, RunStore
from reference_impl.timestamps import utc_now

from . import faults_cancel_page, faults_idem_etag
from .asgi import Headers, ResponseRewrite, header, is_json, operation, rewrite_headers, rewrite_json, without

__all__ = ["SINGLE_CLIENT_VARIANTS", "JitterLatency", "LenientCursorCodec", "Variant"]


class AppFactory(Protocol):
    """Builds a variant for these tokens: in memory, or on the SQLite file `db_path`, from which it comes
    back after a restart with everything a real deployment keeps (runs, keys, cursor secret, ID counter)."""

    def __call__(self, tokens: Sequence[str], db_path: str | None = None, /) -> ASGIApp: ...


JITTER_SEED = 20260214


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    build: AppFactory
    source: str = "tests/support/variants.py"


class JitterLatency:
    """Delays every request by 0–`max_s` seconds drawn from a seeded generator, as a loaded server would.

    The delays are reproducible (same seed, same sequence of delays in order of arrival), and they
    reorder concurrent requests, which is the point.
    """

    def __init__(self, app: ASGIApp, max_s: float = 0.03, seed: int = JITTER_SEED) -> None:
        self.app = app
        self.max_s = max_s
        self.random = random.Random(seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(self.random.uniform(0.0, self.max_s))
        await self.app(scope, receive, send)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class UuidRunsApi(RunsApi):
    """Run IDs are random UUIDs (no prefix, no time order) rather than prefixed ULIDs."""

    def find_run(self, request: Request) -> RunRecord:
        run_id = str(request.path_params["runId"])
        run = self.store.get(run_id) if _UUID.fullmatch(run_id) else None
        if run is None:
            raise ProblemError("not-found", f"There is no run {run_id[:64]!r}.")
        return run


def _other_encodings(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    store = RunStore(db_path, id_factory=lambda: str(uuid.uuid4()))
    codec = faults_cancel_page.HexCursorCodec(store.cursor_secret())  # in the file: cursors outlive a restart
    return create_app(list(tokens), store=store, api_class=UuidRunsApi, cursor_codec=codec)


def _problem_extensions(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    """Extension members on Problems (RFC 9457 §3.2) and extra members on every success body but the definition."""

    def extend(scope: Scope, status: int, data: Any) -> Any:
        if str(scope.get("path", "")).endswith("/definition") and status == 200:
            return data  # the snapshot must stay JSON-equal to what was submitted
        if isinstance(data, dict):
            data = {**data, "requestId": secrets.token_hex(8)}
            if isinstance(data.get("items"), list):
                data["items"] = [{**item, "owner": {"team": "etl"}} for item in data["items"]]
                data["totalEstimate"] = None
            if "runId" in data:
                data["links"] = {"self": f"/api/v1/runs/{data['runId']}"}
        return data

    return rewrite_json(create_app(list(tokens), db_path), extend)


def _lowercase_challenge(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    def lower(scope: Scope, status: int, headers: Headers) -> tuple[int, Headers]:
        return status, [
            (name, b"bearer" + value[len(b"Bearer") :] if name.lower() == b"www-authenticate" else value)
            for name, value in headers
        ]

    return rewrite_headers(create_app(list(tokens), db_path), lower)


def _connection_close(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    def close(scope: Scope, status: int, headers: Headers) -> tuple[int, Headers]:
        return status, [*headers, (b"connection", b"close")]

    return rewrite_headers(create_app(list(tokens), db_path), close)


def _gzip(app: ASGIApp) -> ASGIApp:
    """gzip for every response with a body, when the client accepts it.

    Not Starlette's GZipMiddleware: it gzips the empty body of a 304 too, which h11 then refuses
    to send (the connection is reset), and the suite rightly fails that server on ETAG-005.
    """

    def compress(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        accepted = b"gzip" in (header(list(scope["headers"]), b"accept-encoding") or b"")
        if not body or not accepted or status in (204, 304):
            return status, headers, body
        headers = [*headers, (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
        return status, headers, gzip.compress(body, mtime=0)

    return ResponseRewrite(app, compress)


# --- runIds: sequential integers -------------------------------------------------------------------
_INTEGER_ID = re.compile(r"[1-9][0-9]{0,18}")


class IntegerRunsApi(RunsApi):
    """Run IDs are "1", "2", ...: one counter for every client, as an autoincrement column gives."""

    def find_run(self, request: Request) -> RunRecord:
        run_id = str(request.path_params["runId"])
        run = self.store.get(run_id) if _INTEGER_ID.fullmatch(run_id) else None
        if run is None:
            raise ProblemError("not-found", f"There is no run {run_id[:64]!r}.")
        return run


def _integer_id_store(db_path: str | None) -> RunStore:
    """IDs from one counter (called under the store's lock) that goes on after the newest run in the
    file, as an autoincrement column does after a restart: an ID is never handed out twice."""
    counter = itertools.count(1)
    store = RunStore(db_path, id_factory=lambda: str(next(counter)))
    newest, _ = store.list_runs(None, None, None, 1)
    if newest:
        counter = itertools.count(int(newest[0].run_id) + 1)  # the lambda reads `counter` at each call
    return store


def _sequential_ids(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    return create_app(list(tokens), store=_integer_id_store(db_path), api_class=IntegerRunsApi)


_SOMEONE_ELSES_WORKFLOW = {"steps": [{"id": "s", "action": "noop"}]}


class BusyIntegerRunsApi(IntegerRunsApi):
    """Sequential IDs on a busy server: the moment a lookup of the next number misses, another client
    starts a run and takes it. An ID a client confirmed unknown may name a run at its next request."""

    def find_run(self, request: Request) -> RunRecord:
        try:
            return super().find_run(request)
        except ProblemError:
            if str(request.path_params["runId"]) == str(self.store.count() + 1):
                workflow = _SOMEONE_ELSES_WORKFLOW
                self.store.start_run("someone-else", workflow, {}, definition_hash(workflow))
            raise


def _sequential_ids_busy(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    return create_app(list(tokens), store=_integer_id_store(db_path), api_class=BusyIntegerRunsApi)


# --- numbers: exact decimals ---------------------------------------------------------------------
def _exact_number_text(value: Any) -> str:
    """JSON text with every number written out in positional notation, as an exact-decimal store
    (PostgreSQL jsonb, BigDecimal) renders it: 1e308 is 309 digits, 1.5e-7 is 0.00000015."""
    if isinstance(value, dict):
        members = (f"{json.dumps(k, ensure_ascii=False)}:{_exact_number_text(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_exact_number_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)


def _exact_decimals(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not body or not is_json(headers):
            return status, headers, body
        value = json.loads(body, parse_float=Decimal)  # the number as the text says, not a double
        return status, headers, _exact_number_text(value).encode("utf-8")

    return ResponseRewrite(create_app(list(tokens), db_path), rewrite)


# --- cursors: a lenient decoder --------------------------------------------------------------------
class LenientCursorCodec(CursorCodec):
    """Cursors are hex (payload) + "." + padded base64url (MAC); the decoder reads hex in either case
    and base64 with or without its padding. Still signed and bound to the filters: a changed
    cursor is refused unless it decodes to the very same bytes."""

    def encode(self, after: int, filters: Filters) -> str:
        payload = json.dumps(
            {"after": after, "status": filters.status, "clientId": filters.client_id}, separators=(",", ":")
        ).encode("ascii")
        return payload.hex() + "." + base64.urlsafe_b64encode(self._mac(payload)).decode("ascii")

    def decode(self, cursor: str, filters: Filters) -> int:
        invalid = ProblemError("invalid-cursor", "The cursor is malformed or was not issued by this server.")
        if len(cursor) > 512 or cursor.count(".") != 1 or not cursor.isascii():
            raise invalid
        hex_part, mac_part = cursor.split(".")
        unpadded = mac_part.rstrip("=")
        try:
            payload = bytes.fromhex(hex_part)
            mac = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        data = json.loads(payload)
        if data.get("status") != filters.status or data.get("clientId") != filters.client_id:
            raise ProblemError("invalid-cursor", "The cursor was issued for other filters.")
        after = data.get("after")
        if not isinstance(after, int):
            raise invalid
        return after


def _lenient_cursors(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    store = RunStore(db_path)
    # The secret is kept in the store (its file, with one): a cursor issued before a restart still reads.
    return create_app(list(tokens), store=store, cursor_codec=LenientCursorCodec(store.cursor_secret()))


# --- timestamps: other offsets, milliseconds, lower case ---------------------------------------------
TIMESTAMP_FIELDS = ("createdAt", "startedAt", "finishedAt", "cancelRequestedAt")
_INDIA = timezone(timedelta(hours=5, minutes=30))
_PACIFIC = timezone(timedelta(hours=-8))


def _millisecond_clock() -> datetime:
    now = utc_now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _timestamp_forms() -> list[Callable[[datetime], str]]:
    """RFC 3339 forms of one instant (§5.6: any offset, any fraction, `t` and `z` in either case)."""
    return [
        lambda m: m.astimezone(_INDIA).isoformat(timespec="milliseconds"),
        lambda m: m.astimezone(_PACIFIC).isoformat(timespec="milliseconds").replace("T", "t"),
        lambda m: m.astimezone(UTC).strftime("%Y-%m-%dt%H:%M:%S.%f000z"),
        lambda m: m.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    ]


def _other_timestamp_forms(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    """Millisecond instants, each response in the next of several RFC 3339 forms: the same run read
    twice shows its timestamps in two different spellings of the same instants."""
    forms = _timestamp_forms()
    turn = itertools.count()
    lock = threading.Lock()

    def respell(value: Any, form: Callable[[datetime], str]) -> Any:
        if isinstance(value, list):
            return [respell(v, form) for v in value]
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            if key in TIMESTAMP_FIELDS and isinstance(item, str):
                out[key] = form(datetime.fromisoformat(item.replace("Z", "+00:00")))
            else:
                out[key] = respell(item, form)
        return out

    def transform(scope: Scope, status: int, data: Any) -> Any:
        with lock:
            form = forms[next(turn) % len(forms)]
        return respell(data, form)

    return rewrite_json(create_app(list(tokens), db_path, clock=_millisecond_clock), transform)


# --- validation: params per action ------------------------------------------------------------------
ParamsCheck = Callable[[Mapping[str, Any]], str | None]


def _params_check(allowed: frozenset[str], base: ParamsCheck) -> ParamsCheck:
    def check(params: Mapping[str, Any]) -> str | None:
        unknown = sorted(set(params) - allowed)
        if unknown:
            return f"params: unknown parameter(s) {unknown} (allowed: {sorted(allowed)})"
        return base(params)

    return check


def _strict_actions() -> dict[str, Action]:
    """noop takes no params, fail only `message`, sleep only (and always) `seconds`."""
    allowed = {"noop": frozenset(), "fail": frozenset({"message"}), "sleep": frozenset({"seconds"})}
    return {
        name: Action(check=_params_check(allowed[name], action.check), run=action.run)
        for name, action in DEFAULT_ACTIONS.items()
    }


def _params_per_action(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    return create_app(list(tokens), db_path, actions=_strict_actions())


# --- strings: I-JSON only ---------------------------------------------------------------------------
def _not_ijson(text: str) -> bool:
    """NUL, a lone surrogate or a noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF): RFC 7493 §2.1."""
    for char in text:
        code = ord(char)
        if code == 0 or 0xD800 <= code <= 0xDFFF or 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            return True
    return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class IJsonOnlyApi(RunsApi):
    """Refuses a startRun body holding a string outside I-JSON (NUL included: PostgreSQL text has none)."""

    async def start_run(self, request: Request) -> Response:
        check_json_media_type(request)  # 415 before anything is read, as the reference does
        raw = await request.body()  # cached: the reference's own reading sees the same bytes
        try:
            body = json.loads(raw)
        except ValueError:
            body = None  # not JSON: the reference says why
        if any(_not_ijson(text) for text in _strings(body)):
            raise ProblemError("invalid-request", "The body holds a string outside I-JSON (RFC 7493 §2.1).")
        return await super().start_run(request)


def _ijson_only(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    return create_app(list(tokens), db_path, api_class=IJsonOnlyApi)


# --- timing: runs settled before the 202 -----------------------------------------------------------
class SettledBeforeAnswerApi(RunsApi):
    """Answers startRun only once the run has left `queued` (and, for a quick one, has finished):
    a quick run is `succeeded` in the 202's RunRef, and no client ever sees a run queued."""

    async def start_run(self, request: Request) -> Response:
        response = await super().start_run(request)
        if response.status_code != 202:
            return response
        run_id = json.loads(bytes(response.body))["runId"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        finish_by = None
        run = self.store.get(run_id)
        while run is not None and run.status in ("queued", "running") and loop.time() < deadline:
            if run.status == "running":
                finish_by = finish_by or loop.time() + 0.1  # a long run goes on; answer `running`
                if loop.time() >= finish_by:
                    break
            await asyncio.sleep(0.002)
            run = self.store.get(run_id)
        assert run is not None
        return json_response(self.run_ref(run), status=202, headers={"Location": response.headers["location"]})


def _settled_before_answer(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    return create_app(list(tokens), db_path, api_class=SettledBeforeAnswerApi)


# --- HTTP: an absolute Location --------------------------------------------------------------------
def _absolute_location(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    def absolute(scope: Scope, status: int, headers: Headers) -> tuple[int, Headers]:
        location = header(headers, b"location")
        if location is None:
            return status, headers
        host = header(list(scope["headers"]), b"host") or b"localhost"
        return status, [*without(headers, b"location"), (b"location", b"http://" + host + location)]

    return rewrite_headers(create_app(list(tokens), db_path), absolute)


# --- objects: volatile extra fields, Problems in other words -----------------------------------------
def _volatile_fields(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    """Every Run carries fields that change on every read (a poll time, a queue estimate); every
    Problem has its own title and detail text and an extension member."""

    def decorate(value: Any) -> Any:
        if isinstance(value, list):
            return [decorate(v) for v in value]
        if not isinstance(value, dict):
            return value
        value = {k: decorate(v) for k, v in value.items()}
        if "definitionHash" in value:  # a Run
            value["observedAt"] = utc_now().isoformat()
            value["queuePosition"] = secrets.randbelow(1000)
        return value

    def transform(scope: Scope, status: int, data: Any) -> Any:
        if operation(scope) == "getRunDefinition" and status == 200:
            return data  # the snapshot stays JSON-equal to what was submitted
        if status >= 400 and isinstance(data, dict):
            return {
                **data,
                "title": f"Fehler {status}",
                "detail": "Die Anfrage wurde abgelehnt.",
                "traceId": secrets.token_hex(8),
            }
        return decorate(data)

    return rewrite_json(create_app(list(tokens), db_path), transform)


def _reused(module: Any, name: str) -> AppFactory:
    factory = module.CORRECT_VARIANTS[name]

    def build(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
        if list(tokens) != list(module.TOKENS):
            raise ValueError(f"{module.__name__}.{name} serves the tokens {module.TOKENS}, not these")
        app: ASGIApp = factory(db_path)
        return app

    return build


SINGLE_CLIENT_VARIANTS: list[Variant] = [
    Variant(
        "latency-jitter",
        "every request delayed 0–30 ms (seeded)",
        lambda t, db=None: JitterLatency(create_app(list(t), db)),
    ),
    Variant(
        "reordered-keys-whitespace",
        "JSON re-serialised: keys reversed, indented, ASCII escapes; extra members; ETag header in upper case",
        _reused(faults_idem_etag, "rewritten_responses"),
        "tests/support/faults_idem_etag.py: rewritten_responses",
    ),
    Variant(
        "other-encodings",
        "runIds are UUIDs; cursors are hex with a full HMAC (faults_cancel_page.HexCursorCodec)",
        _other_encodings,
    ),
    Variant("extra-response-fields", "extra members on Runs, RunRefs, RunLists and Problems", _problem_extensions),
    Variant("connection-close", "Connection: close on every response (no keep-alive)", _connection_close),
    Variant(
        "lowercase-bearer-challenge",
        "401s challenge with the scheme spelled bearer (case-insensitive, RFC 9110 §11.1)",
        _lowercase_challenge,
    ),
    Variant(
        "gzip",
        "gzip-compressed bodies when the client accepts gzip",
        lambda t, db=None: _gzip(create_app(list(t), db)),
    ),
    Variant(
        "exact-decimal-numbers",
        "every JSON number rendered as an exact decimal in positional notation (1e308 as 309 digits)",
        _exact_decimals,
    ),
    Variant(
        "other-timestamp-forms",
        "millisecond timestamps, each response in another RFC 3339 form (+05:30, -08:00 with t, z, Z)",
        _other_timestamp_forms,
    ),
    Variant(
        "volatile-fields",
        "Runs carry fields that change on every read; Problems have their own title, detail and members",
        _volatile_fields,
    ),
    Variant(
        "settled-before-answer",
        "startRun answers once the run left queued: quick runs are succeeded in the 202",
        _settled_before_answer,
    ),
    Variant("absolute-location", "startRun's Location is an absolute URI", _absolute_location),
    Variant(
        "in-flight-conflicts",
        "a same-key request answers 409 idempotency-key-in-flight while the first is processed",
        _reused(faults_idem_etag, "in_flight_conflicts"),
        "tests/support/faults_idem_etag.py: in_flight_conflicts",
    ),
    Variant(
        "lenient-cursors",
        "hex + padded base64 cursors, decoded case-insensitively and with or without padding",
        _lenient_cursors,
    ),
    Variant("sequential-run-ids", 'runIds are "1", "2", ... from one counter', _sequential_ids),
    Variant(
        "sequential-run-ids-busy",
        "sequential runIds, and another client takes the next one as soon as a lookup of it misses",
        _sequential_ids_busy,
    ),
    Variant(
        "params-per-action",
        "step params validated per action: unknown keys are 400, sleep needs seconds",
        _params_per_action,
    ),
    Variant("i-json-only", "startRun refuses strings with NUL, lone surrogates or noncharacters (400)", _ijson_only),
]
