"""Faults that hide behind other evidence: what a suite that keeps only its first finding, or ignores the
requests that got no answer, lets pass.

- `replays_broken_by_turns` (for tests/test_properties.py): replays of a key break IDEM-001 or IDEM-002
  by turns, one defect per key, so a property that records only its first failing example reports one.
- `stalls-every-third-get`: under load, every third getRun of a run sleeps past the suite's request
  timeout (a read stuck behind a lock that writers hold while busy): the client gives up, and the
  request has no answer. Busy as in replicas.py: 3 or more client connections sent a request in the
  last 20 ms, so a single client, waiting for each answer, is never stalled.
- `no-key-starts-coalesced`: a keyless startRun waits on a validation call (an await), and one with the
  very same body that arrives meanwhile is handed the first one's answer (request coalescing, meant for
  reads, applied to a write): keyless starts sent one after another each make a run, side by side not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.app import create_app
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.store import new_run_id

from .asgi import operation
from .faults import Fault
from .faults_idem_etag import key_slot
from .tokens import TOKENS

__all__ = ["STALL_FAULTS", "STALL_REQUEST_TIMEOUT_S", "STALL_S", "replays_broken_by_turns"]

SOURCE = "tests/support/faults_stall.py"
STALL_REQUEST_TIMEOUT_S = 1.0  # the fault's --request-timeout: a stalled read is given up on quickly
STALL_S = 3 * STALL_REQUEST_TIMEOUT_S  # well past it, however loaded the machine
COALESCE_WINDOW_S = 0.1  # how long a keyless start is in flight: time for a request sent beside it to join
BUSY_AT = 3  # client connections active at once from which reads stall
ACTIVE_WINDOW_NS = 20_000_000  # a connection that sent a request in the last 20 ms is active


class ReplaysBrokenByTurns(RunsApi):
    """Keys numbered by first use: a replay of an odd one answers a runId no run has (IDEM-001); a replay
    of an even one answers the right runId but starts a second run behind it (IDEM-002)."""

    async def start_run(self, request: Request) -> Response:
        numbers: dict[tuple[str, str], int] = self.__dict__.setdefault("numbers", {})
        await request.body()  # read once: Starlette keeps it for the reparsed copy
        slot = key_slot(request)
        if slot is None:
            return await super().start_run(request)
        if slot not in numbers:
            numbers[slot] = len(numbers) + 1
            return await super().start_run(request)
        if numbers[slot] % 2 == 0:
            await super().start_run(_without_key(request))  # the second run nobody asked for
            return await super().start_run(request)
        response = await super().start_run(request)
        ref = json.loads(bytes(response.body))
        ref["runId"] = new_run_id()
        return json_response(ref, status=response.status_code, headers={"Location": f"/api/v1/runs/{ref['runId']}"})


class CoalescesKeylessStarts(RunsApi):
    """Identical keyless startRun bodies in flight at once share the first one's answer: one run for all."""

    async def start_run(self, request: Request) -> Response:
        in_flight: dict[bytes, asyncio.Future[Response]] = self.__dict__.setdefault("in_flight", {})
        raw = await request.body()
        if request.headers.get("idempotency-key") is not None:
            return await super().start_run(request)
        first = in_flight.get(raw)
        if first is not None:
            return await asyncio.shield(first)  # the bug: another request's run, for a request of its own
        mine: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        in_flight[raw] = mine
        try:
            await asyncio.sleep(COALESCE_WINDOW_S)  # the validation call every start waits on
            response = await super().start_run(request)
            mine.set_result(response)
            return response
        finally:
            del in_flight[raw]
            if not mine.done():
                mine.cancel()


def _without_key(request: Request) -> Request:
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"idempotency-key"]
    copy = Request(scope, request.receive)
    copy._body = request._body
    return copy


class StallsEveryThirdGet:
    """While busy, every third getRun of a run sleeps STALL_S before the reference server answers it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.reads: Counter[str] = Counter()
        self.active: dict[Any, int] = {}  # client connection -> when it last sent a request (ns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            busy = self._busy(scope.get("client"))
            if busy and operation(scope) == "getRun":
                path = str(scope.get("path", ""))
                self.reads[path] += 1
                if self.reads[path] % 3 == 0:
                    await asyncio.sleep(STALL_S)
        await self.app(scope, receive, send)

    def _busy(self, client: Any) -> bool:
        now = time.monotonic_ns()
        self.active[client] = now
        for address in [a for a, seen in self.active.items() if seen < now - ACTIVE_WINDOW_NS]:
            del self.active[address]
        return len(self.active) >= BUSY_AT


def _stalls(tokens: Sequence[str]) -> ASGIApp:
    return StallsEveryThirdGet(create_app(list(tokens)))


def replays_broken_by_turns() -> ASGIApp:
    """The server for the properties' unit tests (tests/test_properties.py), for the tests' tokens."""
    return create_app(list(TOKENS), api_class=ReplaysBrokenByTurns)


def _coalesced(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), api_class=CoalescesKeylessStarts)


# fmt: off
# One check sees it (IDEM-010 sends its keyless starts side by side): a single-client fault (faults.py).
KEYLESS_FAULTS: list[Fault] = [
    Fault("no-key-starts-coalesced", "idempotency",
          "identical keyless startRuns in flight at once share the first one's 202: one run for all of them",
          ("IDEM-010",), _coalesced, SOURCE),
]
# Only the concurrent workload sees it (faults_concurrency.py).
STALL_FAULTS: list[Fault] = [
    Fault("stalls-every-third-get", "concurrency",
          "under load every third getRun of a run sleeps past the request timeout: the client gets no answer",
          ("ERR-001",), _stalls, SOURCE,
          cli_args=("--select", "concurrency", "--request-timeout", str(STALL_REQUEST_TIMEOUT_S),
                    "--workload-clients", "8", "--workload-seconds", "3")),
]
# fmt: on
