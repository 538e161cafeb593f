"""ASGI middleware that rewrites the reference server's responses, for HTTP-level faults and variants.

Non-HTTP scopes (the lifespan) pass straight through, so the wrapped app still starts its executor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]
Rewrite = Callable[[Scope, int, Headers, bytes], tuple[int, Headers, bytes]]


def header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def without(headers: Headers, *names: bytes) -> Headers:
    return [(k, v) for k, v in headers if k.lower() not in names]


def is_json(headers: Headers) -> bool:
    media = (header(headers, b"content-type") or b"").split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class ResponseRewrite:
    """Buffers each HTTP response and hands it to `rewrite(scope, status, headers, body)`.

    Content-Length is recomputed when the body changes; everything else is what `rewrite` returns.
    """

    def __init__(self, app: ASGIApp, rewrite: Rewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            original = b"".join(chunks)
            status, headers, body = self.rewrite(scope, start["status"], list(start.get("headers", [])), original)
            if body != original:
                headers = [*without(headers, b"content-length"), (b"content-length", str(len(body)).encode())]
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, capture)


def rewrite_json(app: ASGIApp, transform: Callable[[Scope, int, Any], Any]) -> ResponseRewrite:
    """Middleware that passes every JSON response body through `transform(scope, status, data)`."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not body or not is_json(headers):
            return status, headers, body
        data = json.loads(body)
        return status, headers, json.dumps(transform(scope, status, data), ensure_ascii=False).encode("utf-8")

    return ResponseRewrite(app, rewrite)


def rewrite_headers(app: ASGIApp, transform: Callable[[Scope, int, Headers], tuple[int, Headers]]) -> ResponseRewrite:
    """Middleware that changes status and headers only."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        new_status, new_headers = transform(scope, status, headers)
        return new_status, new_headers, body

    return ResponseRewrite(app, rewrite)


def operation(scope: Scope) -> str:
    """The operationId a request is for (best effort, by method and path shape)."""
    method = scope.get("method", "")
    parts = [p for p in str(scope.get("path", "")).split("/") if p]
    # ["api", "v1", "runs", ...]
    rest = parts[3:] if parts[:3] == ["api", "v1", "runs"] else None
    if rest is None:
        return "other"
    if not rest:
        return {"GET": "listRuns", "POST": "startRun"}.get(method, "other")
    if len(rest) == 1:
        return "getRun" if method == "GET" else "other"
    if rest[1:] == ["definition"] and method == "GET":
        return "getRunDefinition"
    if rest[1:] == ["cancel"] and method == "POST":
        return "cancelRun"
    return "other"


class RequestRewrite:
    """Hands each HTTP request's scope to `rewrite(scope)` before the app sees it (headers, query string).

    For request-side faults: what a proxy or a lenient framework does to a request on its way in.
    """

    def __init__(self, app: ASGIApp, rewrite: Callable[[Scope], Scope]) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = self.rewrite(dict(scope))
        await self.app(scope, receive, send)
