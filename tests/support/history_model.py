"""Histories from a simulated correct server, for the history checker's tests and benchmark.

A tiny in-memory Runs API applies each operation atomically at a random instant inside its
[invoked, completed] interval (an operation that gets no answer may take effect at any later
instant, or never), while an executor moves runs along the lifecycle on its own. It uses the
freedoms a correct server has (docs: shared/notes/correct-servers.md): sequential integer runIds,
timestamps in any RFC 3339 form, numbers in any JSON form, idempotent replays that repeat the first
answer, in-flight 409s, quick runs already finished in their first 202, and listing pages served
from a snapshot taken when their walk began. Whatever it records, the checker must accept.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from conformance.history import History, Kind, Operation
from conformance.history_checker import KEY_IN_FLIGHT, KEY_REUSED, lifecycle_graph
from conformance.spec import load_spec

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES: list[str] = list(load_spec()["components"]["schemas"]["RunStatus"]["x-transitions"])
# What the executor does on its own; a cancel does the rest (the graph itself comes from the spec).
EXECUTOR = {
    "queued": ["running", "running", "running", "failed"],
    "running": ["succeeded", "succeeded", "failed"],
    "cancelling": ["cancelled", "cancelled", "succeeded"],
}
CLIENT_IDS = ["etl", "ml"]


def rfc3339(micros: int, rng: random.Random) -> str:
    """One instant (µs after EPOCH) in one of the RFC 3339 forms a correct server may use."""
    moment = EPOCH + timedelta(microseconds=micros)
    form = rng.randrange(4)
    if form == 1:
        moment = moment.astimezone(timezone(timedelta(hours=1)))
    elif form == 2:
        moment = moment.astimezone(timezone(timedelta(hours=-5, minutes=-30)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}"
    if form == 3:
        text, fraction = text.replace("T", "t"), fraction + "000"
    elif form == 0:
        fraction = fraction.rstrip("0")
    text += f".{fraction}" if fraction else ""
    offset = moment.strftime("%z")
    return text + ("z" if form == 3 else "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}")


def workflow(fingerprint: str, rng: random.Random) -> dict[str, Any]:
    """The definition of a body, with its number in one of several JSON forms of the same value."""
    number: Any = rng.choice([2, Decimal("2.0"), Decimal("2E0"), 2.0])
    return {"name": f"wf-{fingerprint}", "steps": [{"id": "s", "action": "noop", "params": {"n": number}}]}


def _etag(fingerprint: str) -> str:
    return 'W/"sha256:' + hashlib.sha256(fingerprint.encode()).hexdigest() + '"'


@dataclass
class _Run:
    run_id: str
    seq: int
    client_id: str
    fingerprint: str
    status: str
    first_status: str = ""
    cancel_at: int | None = None
    finished_at: int | None = None


@dataclass
class _Pending:
    """An invoked operation: what was asked, when it takes effect, what it got."""

    index: int
    client: int
    credential: str
    kind: Kind
    invoked: float
    completed: float | None
    facts: dict[str, Any]
    applies_at: float | None
    response: tuple[int, Any, str | None] | None = None


@dataclass
class _Client:
    credential: str
    walk: int | None = None
    page: int = 0
    cursor: str | None = None
    query: dict[str, str] = field(default_factory=dict)


class Simulation:
    """A correct server and N clients, driven by one seeded random generator."""

    def __init__(self, rng: random.Random, clients: int = 4, snapshot_walks: bool = False) -> None:
        self.rng = rng
        self.snapshot_walks = snapshot_walks
        self.cached_replays = rng.random() < 0.5
        self.runs: dict[str, _Run] = {}
        self.order: list[_Run] = []  # by seq
        self.by_client: dict[str, list[_Run]] = {}
        self.keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.active: dict[tuple[str, str], set[int]] = {}
        self.snapshots: dict[int, dict[str, _Run]] = {}
        self.known: list[str] = []  # runIds some client has been shown, in the order they were
        self.learned: set[str] = set()
        self.live: list[_Run] = []  # non-terminal runs, and some that finished since (dropped when met)
        self.clients = [_Client("other" if c == clients - 1 and clients > 1 else "primary") for c in range(clients)]
        self.pending: dict[int, _Pending] = {}
        self.done: list[Operation] = []
        self.walks = 0
        self.reach, self.terminal = lifecycle_graph()

    # --- the server ---------------------------------------------------------------------------------

    def _show(self, run: _Run) -> dict[str, Any]:
        rng = self.rng
        return {
            "runId": run.run_id,
            "clientId": run.client_id,
            "status": run.status,
            "cancelRequestedAt": None if run.cancel_at is None else rfc3339(run.cancel_at, rng),
            "finishedAt": None if run.finished_at is None else rfc3339(run.finished_at, rng),
        }

    def _move(self, run: _Run, status: str, now: float) -> None:
        assert status in self.reach[run.status]
        run.status = status
        if status in self.terminal and run.finished_at is None:
            run.finished_at = int(now * 1e6)

    def _apply(self, p: _Pending, now: float) -> tuple[int, Any, str | None]:
        facts, rng = p.facts, self.rng
        if p.kind == "startRun":
            key = facts.get("key")
            scoped = (p.credential, key) if key is not None else None
            if scoped is not None:
                others = self.active.get(scoped, set()) - {p.index}
                if others and rng.random() < 0.3:
                    return 409, {"type": KEY_IN_FLIGHT, "status": 409}, None
                if scoped in self.keys:
                    fingerprint, run_id = self.keys[scoped]
                    if fingerprint != facts["body_fingerprint"]:
                        return 409, {"type": KEY_REUSED, "status": 409}, None
                    run = self.runs[run_id]
                    shown = run.first_status if self.cached_replays else run.status
                    return 202, {"runId": run_id, "status": shown}, None
            run_id = str(len(self.runs) + 57)
            run = _Run(run_id, len(self.runs), facts["client_id"], facts["body_fingerprint"], "queued")
            self.runs[run_id] = run
            self.order.append(run)
            self.by_client.setdefault(run.client_id, []).append(run)
            self.live.append(run)
            if rng.random() < 0.2:  # a quick run, finished before its 202 is sent
                self._move(run, "succeeded", now)
            run.first_status = run.status
            if scoped is not None:
                self.keys[scoped] = (facts["body_fingerprint"], run_id)
            return 202, {"runId": run_id, "status": run.status}, None
        if p.kind == "listRuns":
            return self._page(p, now)
        run = self.runs.get(facts["run_id"])
        if run is None:
            return 404, {"type": "about:blank", "status": 404}, None
        if p.kind == "getRun":
            return 200, self._show(run), None
        if p.kind == "getRunDefinition":
            etag = _etag(run.fingerprint)
            if facts.get("if_none_match") == etag:
                return 304, None, etag
            return 200, workflow(run.fingerprint, rng), etag
        if run.status not in self.terminal:  # cancelRun
            if run.cancel_at is None:
                run.cancel_at = int(now * 1e6)
            self._move(run, rng.choice(["cancelling", "cancelled"]) if run.status == "queued" else "cancelling", now)
        return 202, {"runId": run.run_id, "status": run.status}, None

    def _page(self, p: _Pending, now: float) -> tuple[int, Any, str | None]:
        query, walk = p.facts["query"], p.facts["walk"]
        if self.snapshot_walks:
            if walk not in self.snapshots:
                self.snapshots[walk] = {k: _Run(**vars(r)) for k, r in self.runs.items()}
            source = self.snapshots[walk]
        else:
            source = self.runs
        limit = int(query["limit"])
        page: list[_Run] = []
        # Newest first: a clientId's runs in creation (seq) order, read backwards from the cursor.
        ordered = self.by_client.get(query["clientId"], []) if "clientId" in query else self.order
        end = (
            bisect.bisect_left(ordered, int(query["cursor"]), key=lambda r: r.seq)
            if "cursor" in query
            else len(ordered)
        )
        for position in range(end - 1, -1, -1):
            run = source.get(ordered[position].run_id) if source is not self.runs else ordered[position]
            if run is not None and query.get("status", run.status) == run.status:
                if len(page) == limit:
                    return 200, {"items": [self._show(r) for r in page], "nextCursor": str(page[-1].seq)}, None
                page.append(run)
        cursor = None
        return 200, {"items": [self._show(run) for run in page], "nextCursor": cursor}, None

    def _progress(self, now: float) -> None:
        while self.live:
            position = self.rng.randrange(len(self.live))
            run = self.live[position]
            if run.status in EXECUTOR:
                self._move(run, self.rng.choice(EXECUTOR[run.status]), now)
                return
            self.live[position] = self.live[-1]
            self.live.pop()

    def _some_run(self) -> str:
        """A runId some client was shown: a recent one mostly, where statuses still move."""
        if self.rng.random() < 0.7:
            return self.rng.choice(self.known[-50:])
        return self.rng.choice(self.known)

    # --- the clients ----------------------------------------------------------------------------------

    def _request(self, client: int) -> tuple[Kind, dict[str, Any]]:
        rng, state = self.rng, self.clients[client]
        keys = max(8, len(self.runs) // 4)  # some keys repeat, most runs get a key of their own
        if state.walk is not None:
            query = dict(state.query, cursor=state.cursor) if state.cursor else dict(state.query)
            return "listRuns", {"query": query, "walk": state.walk, "page": state.page}
        choice = rng.random()
        if choice < 0.3 or not self.known:
            keyed = rng.random() < 0.6
            # A few dozen runs per clientId, so that walks filtered by one stay short in long histories.
            client_id = f"c{len(self.runs) // 40}" if rng.random() < 0.95 else rng.choice(CLIENT_IDS)
            # The body holds the clientId and a workflow: the fingerprint stands for both.
            return "startRun", {
                "key": f"k{rng.randrange(keys)}" if keyed else None,
                "body_fingerprint": f"{client_id}/{rng.choice('AAB')}",
                "client_id": client_id,
            }
        run_id = self._some_run() if rng.random() < 0.95 else "999999"
        if choice < 0.55:
            return "getRun", {"run_id": run_id}
        if choice < 0.65:
            guess = _etag(f"{self.runs[run_id].client_id}/A") if run_id in self.runs else "*"
            return "getRunDefinition", {"run_id": run_id, "if_none_match": guess if rng.random() < 0.3 else None}
        if choice < 0.75:
            return "cancelRun", {"run_id": run_id}
        if choice < 0.85:
            return "getRun", {"run_id": run_id}
        self.walks += 1
        state.walk, state.page, state.cursor = self.walks, 0, None
        state.query = {"limit": str(rng.choice([2, 5, 20, 50]))}
        if len(self.runs) <= 100:  # an unfiltered walk, or one of a clientId that never ends, lists a lot: early only
            choices = [None, *CLIENT_IDS, self.runs[self._some_run()].client_id]
            chosen = rng.choice(choices)
            if chosen is not None:
                state.query["clientId"] = chosen
        else:
            state.query["clientId"] = self.runs[self._some_run()].client_id
        if rng.random() < 0.4:
            state.query["status"] = rng.choice(STATUSES)
        return self._request(client)

    def run(self, operations: int) -> History:
        rng = self.rng
        events: list[tuple[float, int, str, int]] = []
        tie = 0

        def at(time: float, what: str, who: int) -> None:
            nonlocal tie
            tie += 1
            heapq.heappush(events, (time, tie, what, who))

        for client in range(len(self.clients)):
            at(rng.uniform(0, 0.002), "invoke", client)
        at(0.0, "progress", -1)
        invoked = 0
        while events:
            now, _, what, who = heapq.heappop(events)
            if what == "progress":
                self._progress(now)
                if invoked < operations:
                    at(now + rng.expovariate(150), "progress", -1)  # slower than requests: statuses are seen
            elif what == "invoke":
                if invoked >= operations:
                    continue
                kind, facts = self._request(who)
                duration = rng.expovariate(1 / 0.003)
                lost = rng.random() < 0.05
                completed = None if lost else now + duration
                applies = now + rng.uniform(0, 3 * duration) if lost else now + rng.uniform(0, duration)
                if lost and rng.random() < 0.5:
                    applies = None  # never took effect
                p = _Pending(invoked, who, self.clients[who].credential, kind, now, completed, facts, applies)
                invoked += 1
                self.pending[p.index] = p
                if kind == "startRun" and facts["key"] is not None:
                    self.active.setdefault((p.credential, facts["key"]), set()).add(p.index)
                if applies is not None:
                    at(applies, "apply", p.index)
                # The client waits for the answer, or gives up after its timeout and moves on.
                at(now + duration, "complete", p.index)
            elif what == "apply":
                p = self.pending[who]
                p.response = self._apply(p, now)
                if p.completed is None:
                    self._forget(p)
            elif what == "complete":
                p = self.pending[who]  # kept: an operation that got no answer may still take effect later
                self._finish(p)
                at(now + rng.expovariate(1 / 0.0005), "invoke", p.client)
        return History(sorted(self.done, key=lambda op: op.index))

    def _forget(self, p: _Pending) -> None:
        if p.kind == "startRun" and p.facts["key"] is not None:
            self.active[(p.credential, p.facts["key"])].discard(p.index)

    def _finish(self, p: _Pending) -> None:
        state = self.clients[p.client]
        facts = dict(p.facts)
        status = body = etag = None
        if p.completed is not None:
            assert p.response is not None
            status, body, etag = p.response
            self._forget(p)
            if isinstance(body, dict):
                for item in [body, *body.get("items", [])]:
                    run_id = item.get("runId")
                    if isinstance(run_id, str) and run_id in self.runs and run_id not in self.learned:
                        self.learned.add(run_id)
                        self.known.append(run_id)
        if p.kind == "listRuns":
            if status == 200 and body["nextCursor"] is not None:
                state.page, state.cursor = state.page + 1, body["nextCursor"]
            else:
                state.walk = None
        self.done.append(
            Operation(
                index=p.index,
                client=p.client,
                credential=p.credential,
                kind=p.kind,
                invoked=p.invoked,
                completed=p.completed,
                status=status,
                body=body,
                etag=etag,
                **facts,
            )
        )


def correct_history(seed: int, operations: int, clients: int = 4, snapshot_walks: bool = False) -> History:
    return Simulation(random.Random(seed), clients, snapshot_walks).run(operations)
