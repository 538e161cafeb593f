"""Bearer authentication (RFC 6750), checked before anything else on every path."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import problem_response

REALM = "runs"
TOKEN_STATE_KEY = "bearer_token"


class BearerAuth:
    """ASGI middleware: 401 Problems with a challenge, or the token in `request.state`.

    It wraps the whole app, so an unauthenticated client learns nothing, not even which paths
    exist (401 comes before 404, 405, 415, 413, 400 and 304).
    """

    def __init__(self, app: ASGIApp, tokens: Iterable[str]) -> None:
        self.app = app
        self.tokens = tuple(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        if not values:
            await self.reject(scope, receive, send, "A bearer token is required.", error=None)
            return
        if not self.is_bearer_attempt(values):
            # RFC 6750 §3.1: an unsupported scheme counts as no credentials, so no error code.
            await self.reject(scope, receive, send, "A bearer token is required.", error=None)
            return
        token = self.bearer_token(values)
        if token is None or not self.is_valid(token):
            await self.reject(scope, receive, send, "The bearer token is invalid.", error="invalid_token")
            return
        scope.setdefault("state", {})[TOKEN_STATE_KEY] = token
        await self.app(scope, receive, send)

    @staticmethod
    def is_bearer_attempt(values: list[bytes]) -> bool:
        return any(value.strip()[:7].lower() in (b"bearer", b"bearer ") for value in values)

    @staticmethod
    def bearer_token(values: list[bytes]) -> str | None:
        if len(values) != 1:
            return None
        try:
            text = values[0].decode("ascii")
        except UnicodeDecodeError:
            return None
        scheme, _, token = text.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return None
        return token

    def is_valid(self, token: str) -> bool:
        # Compare against every token without stopping early: timing says nothing about which.
        encoded = token.encode()
        matches = [hmac.compare_digest(encoded, known.encode()) for known in self.tokens]
        return any(matches)

    def challenge(self, error: str | None) -> str:
        """No error code when no credentials were sent, invalid_token otherwise (RFC 6750 §3.1)."""
        if error is None:
            return f'Bearer realm="{REALM}"'
        return f'Bearer realm="{REALM}", error="{error}"'

    async def reject(self, scope: Scope, receive: Receive, send: Send, detail: str, error: str | None) -> None:
        response = problem_response("unauthorized", detail, {"WWW-Authenticate": self.challenge(error)})
        await response(scope, receive, send)
