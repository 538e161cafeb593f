"""Before any check: is the server reachable, is it a Runs API, and does it take our token?

One GET /api/v1/runs?limit=1 with the token must answer 200 with a RunList-shaped JSON body.
Anything else ends the run with exit 3 and a one-line reason, before a single check could pass:
in particular a token the server rejects (401) can never give a green run.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from conformance.client import ApiClient, ResponseTooLarge
from conformance.results import Exchange

__all__ = ["PreflightResult", "preflight"]

PATH = "/api/v1/runs"


@dataclass
class PreflightResult:
    ok: bool
    reason: str = ""
    exchange: Exchange | None = None


def preflight(client: ApiClient, *, token_source: str = "--token/RUNS_TOKEN") -> PreflightResult:
    url = f"{client.base_url}{PATH}"
    try:
        response = client.get(PATH, params={"limit": 1})
    except httpx.TimeoutException:
        return _fail(client, f"{url} did not answer within the request timeout")
    except httpx.TransportError as exc:
        return _fail(client, f"cannot reach {url}: {_one_line(exc)}")
    except ResponseTooLarge as exc:
        return _fail(client, f"{url} is not a Runs API: {exc}")
    exchange = response.exchange
    status = response.status_code
    if status == 401:
        return PreflightResult(False, f"the token was rejected (401) by {url}: check {token_source}", exchange)
    if status == 403:
        return PreflightResult(False, f"the token was refused (403) by {url}: check {token_source}", exchange)
    if status != 200:
        return PreflightResult(False, f"{url} is not a Runs API: GET answered {status}, expected 200", exchange)
    media = response.media_type
    if media != "application/json" and not media.endswith("+json"):
        shown = media or "no Content-Type"
        return PreflightResult(False, f"{url} is not a Runs API: GET answered {shown}, expected JSON", exchange)
    data = response.json_or_none()
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or "nextCursor" not in data:
        return PreflightResult(
            False, f"{url} is not a Runs API: the 200 body is not a RunList (items, nextCursor)", exchange
        )
    return PreflightResult(True, "", exchange)


def _fail(client: ApiClient, reason: str) -> PreflightResult:
    last = client.recorder.exchanges[-1] if client.recorder.exchanges else None
    return PreflightResult(False, reason, last)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = text[-1] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
