"""RFC 9457 problem details: the one shape of every 4xx (and the unexpected 5xx) this server sends."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from conformance.spec import PROBLEM_BASE

PROBLEM_MEDIA_TYPE = "application/problem+json"

# slug -> (HTTP status, title). The slugs are the ones the spec and CONTRACT.md declare; a new
# kind of error gets a slug here rather than an ad-hoc type at the raise site.
PROBLEM_KINDS: dict[str, tuple[int, str]] = {
    "invalid-request": (400, "The request is invalid"),
    "invalid-cursor": (400, "The cursor is invalid"),
    "unauthorized": (401, "Authentication required"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "idempotency-key-reused": (409, "Idempotency-Key reused with a different request body"),
    "idempotency-key-in-flight": (409, "A request with this Idempotency-Key is still in flight"),
    "payload-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "internal-error": (500, "Internal server error"),
}

# What Starlette's own HTTPExceptions (unknown path, undeclared method) map to.
_SLUG_FOR_STATUS = {status: slug for slug, (status, _title) in reversed(PROBLEM_KINDS.items())}


class ProblemError(Exception):
    """Raised anywhere under a request to answer with a Problem; the app's handler renders it."""

    def __init__(self, slug: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        if slug not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem slug {slug!r}")
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return PROBLEM_KINDS[self.slug][0]


def problem_response(slug: str, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    status, title = PROBLEM_KINDS[slug]
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    return Response(
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


async def handle_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.slug, exc.detail, exc.headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 as Problems, so no text/plain error page ever leaves the server."""
    assert isinstance(exc, HTTPException)
    slug = _SLUG_FOR_STATUS.get(exc.status_code)
    if slug is None:
        # Not a status this server raises itself; keep Starlette's status and say what it said.
        body = {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code}
        return Response(
            json.dumps(body).encode("utf-8"),
            status_code=exc.status_code,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=dict(exc.headers or {}),
        )
    if exc.status_code == 404:
        detail = f"There is nothing at {request.url.path!r}."
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path!r}."
    else:
        detail = str(exc.detail)
    return problem_response(slug, detail, exc.headers)


async def handle_unexpected(_request: Request, _exc: Exception) -> Response:
    # A bug, never the client's fault; no details leak.
    return problem_response("internal-error", "The server failed to handle this request.")
