"""A concurrent workload: N clients at once, each a random mix of every operation, recorded as a History.

Clients are threads of this process sharing the session's connections. Each draws its next
operation from its own seeded random generator (so a seed replays the same choices, though the
server's answers interleave as they will): starts of the fixture workflows with Idempotency-Keys
shared between clients on purpose (the same body and another body), replays, reads, definitions
with and without If-None-Match, cancels (also right after a quick run's start, racing its end,
and two a few milliseconds apart on a live long run), listRuns walks followed to their end with
and without a status filter, and single pages.

Runs are the session's own (its derived clientIds), and each credential works only on the runs
and clientIds it created: the contract scopes keys to the credential and is silent on whether
runs are, so the workload never needs either answer. The checker (conformance.history_checker)
judges the history afterwards, with real-time order only.

With a disruption plan (--disrupt), the user's command runs part-way through
(conformance.history_disruption); the clients keep going, and go on for the rest of their time
once the server answers again. A request that failed inside the disruption's window is recorded
as indeterminate: no answer, and no transport error of the server's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import rfc8785

from conformance.client import ApiClient, ApiResponse, ResponseTooLarge
from conformance.context import RUNS, CheckContext
from conformance.history import Disruption, History, Kind, Operation
from conformance.history_disruption import DisruptionPlan, Disruptor, judged
from conformance.spec import run_statuses, terminal_statuses

__all__ = ["Budget", "Workload"]

KEYS_PER_CREDENTIAL = 6  # shared between the clients of a credential: races happen on purpose
CLIENT_IDS_PER_CREDENTIAL = 3
MAX_WALK_PAGES = 60
# A walk filters by a terminal status (a run keeps it, so the checker can demand the run: CONC-011)
# or by one runs leave while it goes on; in the spec's order, so a seed draws the same filters.
WALK_STATUSES = [*(status for status in run_statuses() if status in terminal_statuses()), "running"]
MAX_POLLS_DURING_CANCEL = 50  # reads of a run by each poller while two cancels of it are in flight
POLLERS_DURING_CANCEL = 2  # a loaded server answers a read in tens of ms: two see more of the gap
LONG_PREMISES = 6  # clients whose premise run is a long one: each is one chance to double-cancel a live run
MAX_LONG_RUNS = 8  # long runs hold a server's workers until cancelled; a few show every cancel race
BACKOFF_WHILE_DISRUPTED = 0.05  # a refused connection fails in microseconds: without a pause, a flood of them
MIN_AFTER_DISRUPTION = 1.0  # seconds the clients go on once the server answers again, at the least


@dataclass(frozen=True)
class Budget:
    clients: int
    seconds: float


@dataclass
class _Credential:
    label: str
    api: ApiClient
    client_ids: list[str]
    keys: list[str]
    runs: list[str] = field(default_factory=list)  # runIds this credential started
    long_runs: list[str] = field(default_factory=list)  # the long fixture's runs: cancelled at the end
    etags: dict[str, str] = field(default_factory=dict)  # runId -> an ETag seen
    lock: threading.Lock = field(default_factory=threading.Lock)


class Workload:
    def __init__(self, ctx: CheckContext, budget: Budget, seed: int, disruption: DisruptionPlan | None = None) -> None:
        self.ctx = ctx
        self.budget = budget
        self.seed = seed
        self.plan = disruption
        self._disruptor: Disruptor | None = None
        self._deadline = 0.0
        self._failed_at: dict[int, float] = {}  # op index -> when its request failed (no answer)
        self._ops: list[Operation] = []
        self._lock = threading.Lock()
        self._walks = 0
        self._bodies: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (fixture, body): same-body replays
        self._long = 0
        self.credentials = [self._credential("primary", ctx.client)]
        if ctx.session.other_client is not None:
            self.credentials.append(self._credential("other", ctx.other_client))

    def _credential(self, label: str, api: ApiClient) -> _Credential:
        client_ids = [self.ctx.fresh_client_id(f"w{label[0]}") for _ in range(CLIENT_IDS_PER_CREDENTIAL)]
        keys = [f"rc-w-{uuid.uuid4()}" for _ in range(KEYS_PER_CREDENTIAL)]  # never seed-derived: servers keep keys
        return _Credential(label, api, client_ids, keys)

    # --- running ------------------------------------------------------------------------------------------
    def run(self) -> History:
        start = time.monotonic()
        self._deadline = start + self.budget.seconds
        barrier = threading.Barrier(self.budget.clients)
        threads = [
            threading.Thread(target=self._client, args=(number, barrier), name=f"rc-workload-{number}")
            for number in range(self.budget.clients)
        ]
        if self.plan is not None:
            self._disruptor = Disruptor(
                self.plan,
                at=self.plan.at_for(self.budget.seconds),
                grace=self.plan.grace_for(self.ctx.session.request_timeout),
                answers=self._answers,
                start=start,
            )
            self._disruptor.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        disruption = self._disruptor.join() if self._disruptor is not None else None
        self._settle()
        ops = sorted((self._judged(op, disruption) for op in self._ops), key=lambda op: (op.invoked, op.index))
        return History([_reindexed(op, position) for position, op in enumerate(ops)], disruption=disruption)

    def _going(self) -> bool:
        """Until the deadline; with a disruption, until it is over and the clients have had the rest of
        their time after it (the point is what the server does once it is back)."""
        disruptor = self._disruptor
        if disruptor is None:
            return time.monotonic() < self._deadline
        done = disruptor.result
        if done is None:
            return True
        if done.answering is not None:
            at = disruptor.plan.at_for(self.budget.seconds)
            after = max(self.budget.seconds - at, MIN_AFTER_DISRUPTION)
            return time.monotonic() < max(self._deadline, done.answering + after)
        return time.monotonic() < self._deadline

    def _answers(self) -> bool:
        """The server answers: any status below 500 to a listRuns (a proxy's 502 is not the server)."""
        credential = self.credentials[0]
        try:
            response = credential.api.get(RUNS, params={"clientId": credential.client_ids[0], "limit": "1"})
        except (httpx.TransportError, ResponseTooLarge):
            return False
        return response.status_code < 500

    def _judged(self, op: Operation, disruption: Disruption | None) -> Operation:
        if disruption is None:
            return op
        return judged(op, disruption, self._failed_at.get(op.index, op.invoked))

    def _pause_if_disrupted(self) -> None:
        if self._disruptor is not None and self._disruptor.active.is_set():
            time.sleep(BACKOFF_WHILE_DISRUPTED)

    def _client(self, number: int, barrier: threading.Barrier) -> None:
        rng = random.Random(f"{self.seed}:{number}")
        credential = self.credentials[number % len(self.credentials)]
        actions: list[tuple[float, Callable[[int, random.Random, _Credential], None]]] = [
            (30, self._start),
            (8, self._replay),
            (20, self._get),
            (10, self._definition),
            (10, self._cancel),
            (12, self._walk),
            (5, self._page),
        ]
        weights = [w for w, _ in actions]
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=30)  # all clients start together: the point is overlap
        self._premises(number, rng, credential)
        while self._going():
            action = rng.choices(actions, weights)[0][1]
            action(number, rng, credential)

    def _premises(self, number: int, rng: random.Random, credential: _Credential) -> None:
        """Every rule's premise once per client, whatever the budget: far from a server a few seconds hold
        few requests, and a rule with no instance is not evaluated (the run would be incomplete). A key
        sent with two bodies at once (CONC-002: a single-flight by key answers both); a key
        sent twice with one body, one answer awaited before the next is sent (CONC-004: no overlap, no
        in-flight 409); a walk of its clientId begun right after (CONC-011: an index that lags the
        202 misses the run); the run cancelled (a long run twice, a few milliseconds apart, read all
        the while: cancelRequestedAt must not change), then read twice (two terminal reads); its
        definition read twice; its clientId walked again in pages of 2, while other clients insert
        (CONC-010: an offset cursor repeats runs)."""
        self._duel(number, rng, credential)
        key = rng.choice(credential.keys)
        with self._lock:
            long = number < LONG_PREMISES and self._long < MAX_LONG_RUNS and self.ctx.fixtures.has("long")
            self._long += long
        fixture = "long" if long else "quick"
        client_id = rng.choice(credential.client_ids)
        body: dict[str, Any] = {
            "clientId": client_id,
            "workflow": self.ctx.fixtures.workflow(fixture),
            "inputs": {"n": rng.randrange(1_000_000)},
        }
        fixture, body = self._bodies.setdefault(key, (fixture, body))
        run_id = _run_id(self._post_start(number, credential, fixture, body, key))
        self._post_start(number, credential, fixture, body, key)
        if run_id is None:
            return
        self._walk_of(number, credential, {"clientId": str(body["clientId"]), "limit": "5"})
        if fixture == "long":
            self._double_cancel(number, rng, credential, run_id)
        else:
            self._send_cancel(number, credential, run_id)
        for _ in range(2):
            self._send_get(number, credential, run_id)
        for _ in range(2):
            read = functools.partial(credential.api.get, f"{RUNS}/{run_id}/definition")
            self._send(number, credential, "getRunDefinition", read, run_id=run_id)
        self._walk_of(number, credential, {"clientId": str(body["clientId"]), "limit": "2"})

    def _duel(self, number: int, rng: random.Random, credential: _Credential) -> None:
        """One fresh key sent with two bodies at once, from two threads (two clients that derive keys
        badly, a retry that changed its body): at most one may get 202. Left to chance, two bodies of a
        key rarely overlap in a short workload, and a server that coalesces concurrent requests by the
        key alone (a single-flight) answers both with the first one's run (CONC-002)."""
        key = f"rc-w-{uuid.uuid4()}"
        bodies = [
            {
                "clientId": rng.choice(credential.client_ids),
                "workflow": self.ctx.fixtures.workflow("quick"),
                "inputs": {"n": n},
            }
            for n in rng.sample(range(1_000_000), 2)
        ]
        together = threading.Barrier(2)

        def send(body: dict[str, Any]) -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                together.wait(timeout=self.ctx.session.request_timeout)
            self._post_start(number, credential, "quick", body, key)

        helper = threading.Thread(target=send, args=(bodies[1],), name=f"rc-workload-{number}-duel")
        helper.start()
        send(bodies[0])
        helper.join()

    def _send_get(self, number: int, credential: _Credential, run_id: str) -> None:
        self._send(number, credential, "getRun", lambda: credential.api.get(f"{RUNS}/{run_id}"), run_id=run_id)

    def _send_cancel(self, number: int, credential: _Credential, run_id: str) -> None:
        self._send(
            number, credential, "cancelRun", lambda: credential.api.post(f"{RUNS}/{run_id}/cancel"), run_id=run_id
        )

    def _double_cancel(self, number: int, rng: random.Random, credential: _Credential, run_id: str) -> None:
        """Two cancels of a live run a few milliseconds apart (a double click, a retry after a client
        timeout), its status read again and again until both are answered: a server that stamps
        cancelRequestedAt twice shows the first stamp between the two writes (CONC-007)."""
        stagger = rng.uniform(0.005, 0.025)
        answered = threading.Event()

        def second() -> None:
            time.sleep(stagger)  # a stagger, not a wait for anything: the second click comes later
            self._send_cancel(number, credential, run_id)

        def poll() -> None:
            for _ in range(MAX_POLLS_DURING_CANCEL):
                self._send_get(number, credential, run_id)
                if answered.is_set():
                    return

        works = [second, *[poll] * POLLERS_DURING_CANCEL]
        helpers = [threading.Thread(target=work, name=f"rc-workload-{number}-cancel") for work in works]
        for thread in helpers:
            thread.start()
        self._send_cancel(number, credential, run_id)
        helpers[0].join()
        answered.set()
        for thread in helpers[1:]:
            thread.join()

    def _settle(self) -> None:
        """Leave no long run busy: cancel them (not recorded: the history is over)."""
        for credential in self.credentials:
            for run_id in credential.long_runs:
                try:
                    credential.api.post(f"{RUNS}/{run_id}/cancel")
                except (httpx.TransportError, ResponseTooLarge):
                    continue

    # --- recording ---------------------------------------------------------------------------------------
    def _send(
        self,
        number: int,
        credential: _Credential,
        kind: Kind,
        call: Callable[[], ApiResponse],
        **facts: Any,
    ) -> ApiResponse | None:
        invoked = time.monotonic()
        try:
            response = call()
        except (httpx.TransportError, ResponseTooLarge) as exc:
            # No answer: the request may or may not have taken effect. The check reports it (ERR-001);
            # the history checker allows both.
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            failed_at = time.monotonic()
            with self._lock:
                self._failed_at[len(self._ops)] = failed_at
                self._ops.append(
                    Operation(len(self._ops), number, credential.label, kind, invoked, None, error=error, **facts)
                )
            self._pause_if_disrupted()
            return None
        completed = time.monotonic()
        if response.status_code >= 500:
            self._pause_if_disrupted()
        body = _parse(response)
        with self._lock:
            self._ops.append(
                Operation(
                    len(self._ops),
                    number,
                    credential.label,
                    kind,
                    invoked,
                    completed,
                    status=response.status_code,
                    body=body,
                    etag=response.headers.get("etag"),
                    exchange=response.exchange,
                    **facts,
                )
            )
        return response

    # --- the operations ---------------------------------------------------------------------------------
    def _body(self, rng: random.Random, credential: _Credential, key: str | None) -> tuple[str, dict[str, Any]]:
        """The key's canonical body (same-body requests), or another: other inputs, maybe another fixture."""
        if key is not None and key in self._bodies and rng.random() < 0.8:
            return self._bodies[key]
        fixture = rng.choices(["quick", "long", "failing"], [80, 8, 12])[0]
        with self._lock:
            if fixture == "long" and self._long >= MAX_LONG_RUNS:
                fixture = "quick"
            if fixture == "long":
                self._long += 1
        if not self.ctx.fixtures.has(fixture):
            fixture = "quick"
        body = {
            "clientId": rng.choice(credential.client_ids),
            "workflow": self.ctx.fixtures.workflow(fixture),
            "inputs": {"n": rng.randrange(1_000_000)},
        }
        if key is not None:
            self._bodies.setdefault(key, (fixture, body))  # the key's first body is its canonical one
        return fixture, body

    def _start(self, number: int, rng: random.Random, credential: _Credential) -> None:
        key = rng.choice(credential.keys) if rng.random() < 0.7 else None
        fixture, body = self._body(rng, credential, key)
        run_id = _run_id(self._post_start(number, credential, fixture, body, key))
        if run_id is not None and fixture == "long" and rng.random() < 0.5:
            self._double_cancel(number, rng, credential, run_id)
        elif run_id is not None and fixture == "quick" and rng.random() < 0.3:
            # A cancel sent at once, to land near the quick run's completion.
            self._send_cancel(number, credential, run_id)

    def _post_start(
        self, number: int, credential: _Credential, fixture: str, body: dict[str, Any], key: str | None
    ) -> ApiResponse | None:
        headers = {"Idempotency-Key": key} if key is not None else None
        response = self._send(
            number,
            credential,
            "startRun",
            lambda: credential.api.post(RUNS, json_body=body, headers=headers),
            key=key,
            body_fingerprint=_fingerprint(body),
            client_id=body["clientId"],
        )
        run_id = _run_id(response)
        if run_id is not None:
            self.ctx.session.started_runs.setdefault(run_id, credential.api)
            with credential.lock:
                if run_id not in credential.runs:
                    credential.runs.append(run_id)
                if fixture == "long" and run_id not in credential.long_runs:
                    credential.long_runs.append(run_id)
        return response

    def _replay(self, number: int, rng: random.Random, credential: _Credential) -> None:
        used = [key for key in credential.keys if key in self._bodies]
        if not used:
            return self._start(number, rng, credential)
        key = rng.choice(used)
        fixture, body = self._bodies[key]
        self._post_start(number, credential, fixture, body, key)
        return None

    def _known(self, rng: random.Random, credential: _Credential) -> str | None:
        with credential.lock:
            return rng.choice(credential.runs) if credential.runs else None

    def _get(self, number: int, rng: random.Random, credential: _Credential) -> None:
        run_id = self._known(rng, credential)
        if run_id is not None:
            self._send_get(number, credential, run_id)

    def _definition(self, number: int, rng: random.Random, credential: _Credential) -> None:
        run_id = self._known(rng, credential)
        if run_id is None:
            return
        tag = credential.etags.get(run_id) if rng.random() < 0.5 else None
        headers = {"If-None-Match": tag} if tag else None
        response = self._send(
            number,
            credential,
            "getRunDefinition",
            lambda: credential.api.get(f"{RUNS}/{run_id}/definition", headers=headers),
            run_id=run_id,
            if_none_match=tag,
        )
        if response is not None and response.status_code == 200 and response.headers.get("etag"):
            credential.etags[run_id] = response.headers["etag"]

    def _cancel(self, number: int, rng: random.Random, credential: _Credential) -> None:
        run_id = self._known(rng, credential)
        if run_id is not None:
            self._send_cancel(number, credential, run_id)

    def _walk(self, number: int, rng: random.Random, credential: _Credential) -> None:
        query: dict[str, str] = {"clientId": rng.choice(credential.client_ids), "limit": str(rng.randint(2, 5))}
        if rng.random() < 0.3:
            query["status"] = rng.choice(WALK_STATUSES)
        self._walk_of(number, credential, query)

    def _walk_of(self, number: int, credential: _Credential, query: dict[str, str]) -> None:
        """listRuns pages following nextCursor to the end (or the first answer that is not a page)."""
        with self._lock:
            self._walks += 1
            walk = self._walks
        cursor: str | None = None
        for page in range(MAX_WALK_PAGES):
            sent = {**query, **({"cursor": cursor} if cursor is not None else {})}
            response = self._send(
                number, credential, "listRuns", functools.partial(credential.api.get, RUNS, params=sent),
                query=sent, walk=walk, page=page,
            )  # fmt: skip
            data = _parse(response) if response is not None and response.status_code == 200 else None
            cursor = data.get("nextCursor") if isinstance(data, dict) else None
            if not isinstance(cursor, str):
                return

    def _page(self, number: int, rng: random.Random, credential: _Credential) -> None:
        query = {"limit": str(rng.randint(1, 10))}
        self._send(
            number, credential, "listRuns", functools.partial(credential.api.get, RUNS, params=query), query=query
        )


def _parse(response: ApiResponse | None) -> Any:
    if response is None or not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def _run_id(response: ApiResponse | None) -> str | None:
    if response is None or response.status_code != 202:
        return None
    data = _parse(response)
    run_id = data.get("runId") if isinstance(data, dict) else None
    return run_id if isinstance(run_id, str) else None


def _fingerprint(body: dict[str, Any]) -> str:
    """Equal exactly for JSON-equal bodies: the hash of the RFC 8785 form."""
    return hashlib.sha256(bytes(rfc8785.dumps(body))).hexdigest()


def _reindexed(op: Operation, index: int) -> Operation:
    return dataclasses.replace(op, index=index)
