"""The suite's HTTP client: every exchange recorded, tokens redacted, bodies bounded.

A check talks to the server only through ApiClient, so each failure can carry its evidence and
a curl line that reproduces it. The token never enters a record: Authorization is replaced
before the exchange is stored, and curl lines read it from $RUNS_TOKEN.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.meaning import parse_json
from conformance.redaction import REDACTED, redact_headers, redact_text
from conformance.results import Exchange

__all__ = [
    "DEFAULT",
    "REDACTED",
    "ApiClient",
    "ApiResponse",
    "Recorder",
    "ResponseTooLarge",
    "answer_of_requests",
    "redact_headers",
    "redact_text",
    "unanswered_exchange",
]

# A sentinel for "use this client's own token"; None means "send no Authorization header".
DEFAULT: Any = object()

RECORDED_BODY_LIMIT = 4096  # characters kept of each body in a record
MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # a larger response is the server's fault, not a reason to hang


class ResponseTooLarge(Exception):
    pass


def _truncate(text: str) -> str:
    if len(text) <= RECORDED_BODY_LIMIT:
        return text
    return f"{text[:RECORDED_BODY_LIMIT]}… [{len(text) - RECORDED_BODY_LIMIT} more characters]"


def _body_text(content: bytes) -> str | None:
    if not content:
        return None
    return content.decode("utf-8", errors="replace")


def curl_line(method: str, url: str, headers: Mapping[str, str], body: bytes | None, token_var: str) -> str:
    parts = ["curl", "-i", "-X", method]
    for name, value in headers.items():
        if name.lower() in {"host", "content-length", "accept-encoding", "connection", "user-agent"}:
            continue
        if name.lower() == "authorization":
            # Double quotes so the shell expands the variable; the token itself is never written.
            parts += ["-H", f'"Authorization: Bearer ${token_var}"']
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if body:
        text = body.decode("utf-8", errors="replace")
        if len(text) > RECORDED_BODY_LIMIT:
            parts += ["--data-binary", f"@body.json  # {len(body)} bytes, not shown"]
        else:
            parts += ["--data-binary", shlex.quote(text)]
    parts.append(shlex.quote(url))
    return " ".join(parts)


@dataclass
class Recorder:
    """Collects exchanges; a check's context keeps one per check."""

    secrets: tuple[str, ...] = ()
    exchanges: list[Exchange] = field(default_factory=list)
    # Called with every response read through a client that records here: how a check's context
    # holds every answer it gets to the rules that apply to all of them (no 5xx, 4xx are Problems).
    on_response: Callable[[ApiResponse], None] | None = None

    _taps: dict[int, list[Exchange]] = field(default_factory=dict, repr=False)

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        tap = self._taps.get(threading.get_ident())
        if tap is not None:
            tap.append(exchange)

    def last(self, count: int) -> list[Exchange]:
        return self.exchanges[-count:]

    @contextlib.contextmanager
    def tap(self) -> Iterator[list[Exchange]]:
        """The exchanges this thread records inside the block, apart from the others' (examples side by side)."""
        mine: list[Exchange] = []
        self._taps[threading.get_ident()] = mine
        try:
            yield mine
        finally:
            del self._taps[threading.get_ident()]


@dataclass
class ApiResponse:
    """A response read in full (bounded): status, headers, body, and the exchange record."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    exchange: Exchange
    invoked: float | None = None  # time.monotonic() when sent: real-time order between answers
    completed: float | None = None  # ... and when the answer was read

    def json(self) -> Any:
        return json.loads(self.content)

    def json_or_none(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    def json_exact(self) -> Any:
        """The body with every number exact (conformance.meaning.parse_json), or None if not JSON.

        What a check compares: json_or_none() reads numbers as doubles, and a server that renders
        1e308 as its 309 digits would differ from one that writes 1e308 only through that rounding.
        """
        try:
            return parse_json(self.content)
        except ValueError:
            return None

    @property
    def media_type(self) -> str:
        content_type: str = self.headers.get("content-type", "")
        return content_type.split(";", 1)[0].strip().lower()


class ApiClient:
    """One credential's view of the server under test."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        request_timeout: float,
        recorder: Recorder,
        token_var: str = "RUNS_TOKEN",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.recorder = recorder
        self.token_var = token_var
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(request_timeout),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def recording_into(self, recorder: Recorder) -> ApiClient:
        """The same credential and connections, recording into another recorder (a check's, cleanup's)."""
        view = copy.copy(self)
        view.recorder = recorder
        return view

    def request(
        self,
        method: str,
        path: str,
        *,
        token: Any = DEFAULT,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Send one request. Transport errors propagate as httpx.TransportError after recording."""
        send_headers: dict[str, str] = {"Accept": "application/json, application/problem+json"}
        token_value = self.token if token is DEFAULT else token
        if token_value is not None:
            send_headers["Authorization"] = f"Bearer {token_value}"
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        send_headers.update(headers or {})
        request = self._http.build_request(method, path, headers=send_headers, content=content, params=params)
        started = time.perf_counter()
        invoked = time.monotonic()
        exchange = Exchange(
            method=method,
            url=redact_text(str(request.url), self._secrets()),
            request_headers=redact_headers(dict(request.headers), self._secrets()),
            request_body=_truncate(redact_text(_body_text(content or b"") or "", self._secrets())) or None,
            status=None,
            response_headers={},
            response_body=None,
            elapsed_ms=0.0,
            curl=redact_text(
                curl_line(method, str(request.url), request.headers, content, self.token_var), self._secrets()
            ),
            started=time.time(),
        )
        try:
            response = self._http.send(request, stream=True)
            try:
                body = self._read_bounded(response)
            finally:
                response.close()
        except (httpx.HTTPError, ResponseTooLarge) as exc:
            exchange.elapsed_ms = (time.perf_counter() - started) * 1000
            exchange.error = f"{type(exc).__name__}: {exc}"
            self.recorder.add(exchange)
            raise
        exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        exchange.status = response.status_code
        exchange.response_headers = redact_headers(dict(response.headers), self._secrets())
        exchange.response_body = _truncate(redact_text(_body_text(body) or "", self._secrets())) or None
        self.recorder.add(exchange)
        answer = ApiResponse(response.status_code, response.headers, body, exchange, invoked, time.monotonic())
        if self.recorder.on_response is not None:
            self.recorder.on_response(answer)
        return answer

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)

    def _secrets(self) -> tuple[str, ...]:
        return (*self.recorder.secrets, *((self.token,) if self.token else ()))

    @staticmethod
    def _read_bounded(response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge(f"response body exceeds {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def answer_of_requests(response: Any, secrets: tuple[str, ...]) -> ApiResponse:
    """A `requests` response (Schemathesis sends with requests) as the suite's answer, its exchange redacted."""
    request = response.request
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8", errors="replace")
    headers = {k: str(v) for k, v in request.headers.items()}
    response_headers = {k: ", ".join(v) for k, v in response.headers.items()}
    body_bytes = bytes(response.content or b"")
    text = body_bytes.decode("utf-8", errors="replace")
    exchange = Exchange(
        method=str(request.method),
        url=str(request.url),
        request_headers=redact_headers(headers, secrets),
        request_body=_truncate(redact_text(body.decode("utf-8", errors="replace"), secrets)) if body else None,
        status=response.status_code,
        response_headers=redact_headers(response_headers, secrets),
        response_body=_truncate(redact_text(text, secrets)) or None,
        elapsed_ms=round(float(response.elapsed) * 1000, 3),
        curl=redact_text(curl_line(str(request.method), str(request.url), headers, body, "RUNS_TOKEN"), secrets),
    )
    return ApiResponse(response.status_code, httpx.Headers(response_headers), body_bytes, exchange)


def unanswered_exchange(
    method: str, url: str, headers: Mapping[str, str], exc: BaseException, secrets: tuple[str, ...]
) -> Exchange:
    """The exchange of a request that got no answer, for evidence: what was sent and what went wrong."""
    return Exchange(
        method=method,
        url=url,
        request_headers=redact_headers(dict(headers), secrets),
        request_body=None,
        status=None,
        response_headers={},
        response_body=None,
        elapsed_ms=0.0,
        error=redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0], secrets),
        curl=redact_text(f'curl -i -X {method} -H "Authorization: Bearer $RUNS_TOKEN" {url}', secrets),
    )
