"""Correct variants: servers that differ from the reference but keep the contract.

The suite must pass each with no failure and no warning (--strict): a check that fails one of
these is too strict, i.e. it tests the reference server rather than the contract.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faults_cancel_page
import faults_idem_etag
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.app import create_app
from reference_impl.endpoints import RunsApi
from reference_impl.problems import ProblemError
from reference_impl.store import RunRecord, RunStore

from .asgi import Headers, ResponseRewrite, header, rewrite_headers, rewrite_json

__all__ = ["VARIANTS", "JitterLatency", "Variant", "variant"]

AppFactory = Callable[[Sequence[str]], ASGIApp]
JITTER_SEED = 20260214


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    build: AppFactory
    source: str = "tests/selfcheck/variants.py"


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


def _other_encodings(tokens: Sequence[str]) -> ASGIApp:
    store = RunStore(id_factory=lambda: str(uuid.uuid4()))
    codec = faults_cancel_page.HexCursorCodec(secrets.token_bytes(32))
    return create_app(list(tokens), store=store, api_class=UuidRunsApi, cursor_codec=codec)


def _problem_extensions(tokens: Sequence[str]) -> ASGIApp:
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

    return rewrite_json(create_app(list(tokens)), extend)


def _connection_close(tokens: Sequence[str]) -> ASGIApp:
    def close(scope: Scope, status: int, headers: Headers) -> tuple[int, Headers]:
        return status, [*headers, (b"connection", b"close")]

    return rewrite_headers(create_app(list(tokens)), close)


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


def _reused(module: Any, name: str) -> AppFactory:
    factory = module.CORRECT_VARIANTS[name]

    def build(tokens: Sequence[str]) -> ASGIApp:
        if list(tokens) != list(module.TOKENS):
            raise ValueError(f"{module.__name__}.{name} serves the tokens {module.TOKENS}, not these")
        app: ASGIApp = factory()
        return app

    return build


VARIANTS: list[Variant] = [
    Variant("latency-jitter", "every request delayed 0–30 ms (seeded)", lambda t: JitterLatency(create_app(list(t)))),
    Variant(
        "reordered-keys-whitespace",
        "JSON re-serialised: keys reversed, indented, ASCII escapes; extra members; ETag header in upper case",
        _reused(faults_idem_etag, "rewritten_responses"),
        "tests/faults_idem_etag.py: rewritten_responses",
    ),
    Variant(
        "other-encodings",
        "runIds are UUIDs; cursors are hex with a full HMAC (faults_cancel_page.HexCursorCodec)",
        _other_encodings,
    ),
    Variant("extra-response-fields", "extra members on Runs, RunRefs, RunLists and Problems", _problem_extensions),
    Variant("connection-close", "Connection: close on every response (no keep-alive)", _connection_close),
    Variant(
        "gzip",
        "gzip-compressed bodies when the client accepts gzip",
        lambda t: _gzip(create_app(list(t))),
    ),
]


def variant(name: str) -> Variant:
    for item in VARIANTS:
        if item.name == name:
            return item
    raise KeyError(name)
