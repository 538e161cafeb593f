"""The reference server with one planted bug each, as ASGI middleware: the suite must fail the right IDs.

    with planted_server("no_challenge", tokens) as url: ...

Each bug names the requirement IDs it must fail (EXPECTED) and a --select that reaches them fast.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .asgi import ResponseRewrite


def _drop_challenge(scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    if status == 401:
        headers = [(k, v) for k, v in headers if k.lower() != b"www-authenticate"]
    return status, headers, body


def _plain_404(scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    if status == 404:
        return 404, [(b"content-type", b"text/plain; charset=utf-8")], b"Not Found"
    return status, headers, body


class MalformedJson500:
    """startRun with a body that is not JSON: 500 instead of 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/api/v1/runs":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        has_token = any(k == b"authorization" for k, _ in scope["headers"])
        if has_token and content_type.startswith(b"application/json") and len(body) < 1024 * 1024:
            try:
                json.loads(body)
            except ValueError:
                payload = b'{"error": "internal"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class TokenOptional:
    """A request without Authorization is served as if it carried the first token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(k == b"authorization" for k, _ in scope["headers"]):
            scope = dict(scope)
            scope["headers"] = [*scope["headers"], (b"authorization", f"Bearer {self.token}".encode())]
        await self.app(scope, receive, send)


class NotFoundForUndeclaredMethods:
    """405 answers become 404s without Allow (a SHOULD: a warning, a failure under --strict)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = ResponseRewrite(app, self._rewrite)

    @staticmethod
    def _rewrite(scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
        if status == 405:
            data = json.loads(body)
            data["status"] = 404
            headers = [(k, v) for k, v in headers if k.lower() != b"allow"]
            return 404, headers, json.dumps(data).encode()
        return status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class PlantedBug:
    name: str
    description: str
    expected: tuple[str, ...]  # requirement IDs that must fail (or warn, for a SHOULD)
    select: tuple[str, ...]  # a --select that reaches them quickly
    wrap: Callable[[ASGIApp, Sequence[str]], ASGIApp]


BUGS: dict[str, PlantedBug] = {
    bug.name: bug
    for bug in (
        PlantedBug(
            "no_challenge",
            "401 without WWW-Authenticate",
            ("AUTH-003",),
            ("auth",),
            lambda app, tokens: ResponseRewrite(app, _drop_challenge),
        ),
        PlantedBug(
            "malformed_json_500",
            "500 for a startRun body that is not JSON",
            ("ERR-003", "ERR-001"),
            ("malformed_json_gets_400",),
            lambda app, tokens: MalformedJson500(app),
        ),
        PlantedBug(
            "plain_404",
            "404 answered as text/plain",
            ("ERR-002", "SCHEMA-003"),
            ("unknown_or_malformed_run_ids_get_404", "schemathesis_get_run"),
            lambda app, tokens: ResponseRewrite(app, _plain_404),
        ),
        PlantedBug(
            "token_optional",
            "200 for a request without a token",
            ("AUTH-001",),
            ("requests_without_token_get_401",),
            lambda app, tokens: TokenOptional(app, tokens[0]),
        ),
        PlantedBug(
            "no_405",
            "404 without Allow for undeclared methods",
            ("ERR-011",),
            ("undeclared_methods_get_405",),
            lambda app, tokens: NotFoundForUndeclaredMethods(app),
        ),
    )
}


@contextlib.contextmanager
def planted_server(name: str, tokens: Sequence[str]) -> Iterator[str]:
    from reference_impl.app import create_app
    from reference_impl.serve import serve_in_thread

    app = BUGS[name].wrap(create_app(list(tokens)), tokens)
    with serve_in_thread(app) as url:
        yield url
