"""A recorded concurrent history of Runs API operations: the data a history checker reads.

A workload (N client threads issuing operations against a server) records one `Operation` per
request, with its invocation and completion times from one monotonic clock. This module holds
that record and what follows from it without judging it: which responses showed which run in
which status (`Observation`), and the operations of each listRuns walk. The rules live in
`conformance.history_checker`.

The only order between operations is real-time precedence (`precedes`): A precedes B when A's
answer arrived before B was sent. Overlapping operations are concurrent, and nothing here or in
the checker may assume the server applied them in either order.

This module imports nothing of the project (the standard library only), so a workload, a
checker and a report can all build on it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

__all__ = [
    "KINDS",
    "PATH_KINDS",
    "Disruption",
    "History",
    "Kind",
    "Observation",
    "Operation",
    "precedes",
]

Kind = Literal["startRun", "getRun", "getRunDefinition", "cancelRun", "listRuns"]
KINDS: tuple[Kind, ...] = get_args(Kind)
PATH_KINDS: frozenset[str] = frozenset({"getRun", "getRunDefinition", "cancelRun"})  # runId in the path


@dataclass(frozen=True, slots=True)
class Operation:
    """One request of the history and what came back.

    `completed is None` means no answer arrived (timeout, reset): the request may or may not
    have taken effect, so a checker must allow both. Such an operation has no response facts.

    Request facts: `run_id` (the path's runId for getRun, getRunDefinition and cancelRun);
    `key` (Idempotency-Key), `body_fingerprint` and `client_id` for startRun, where the
    fingerprint is equal exactly for bodies a correct server must treat as the same (the
    workload computes it, e.g. a hash of the RFC 8785 form; it should never send two bodies a
    correct server could reasonably treat either way, such as `inputs` omitted and `{}`);
    `query` (listRuns parameters as sent, the cursor included); `walk` and `page` for listRuns
    pages that follow one another's nextCursor (page 0 is the request without a cursor, and each
    next page is numbered one more; a retry of a page keeps its number, and a walk with a retry is
    not judged for completeness); `if_none_match` for getRunDefinition.

    Response facts: `status` (HTTP status), `body` (the parsed JSON, or None; parse numbers with
    `parse_float=decimal.Decimal` so that they compare exactly), `etag` (the ETag header).
    `exchange` is the recorded HTTP exchange, kept for evidence; `error` says why an operation got
    no answer (the transport error), for the evidence too. The checker reads neither.

    `indeterminate` marks a request that failed inside a declared disruption's window (see
    Disruption): it has no answer like any other unanswered operation, and it is not a transport
    error of the server's either, since the user said failures there are tolerable.
    """

    index: int
    client: int
    credential: str
    kind: Kind
    invoked: float
    completed: float | None
    status: int | None = None
    run_id: str | None = None
    key: str | None = None
    body_fingerprint: str | None = None
    client_id: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    walk: int | None = None
    page: int | None = None
    if_none_match: str | None = None
    body: Any = None
    etag: str | None = None
    exchange: object | None = field(default=None, compare=False, repr=False)
    error: str | None = field(default=None, compare=False)
    indeterminate: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"operation #{self.index}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not math.isfinite(self.invoked):
            raise ValueError(f"operation #{self.index}: invoked must be a finite time")
        if self.completed is None:
            if self.status is not None or self.body is not None or self.etag is not None:
                raise ValueError(f"operation #{self.index}: no answer (completed None) but response facts were given")
        elif self.error is not None:
            raise ValueError(f"operation #{self.index}: answered, but an error says it got no answer")
        elif not (math.isfinite(self.completed) and self.completed >= self.invoked):
            raise ValueError(f"operation #{self.index}: completed {self.completed} is before invoked {self.invoked}")

    def __hash__(self) -> int:
        # The generated hash would fail on the dict fields (query, body); equal operations share these.
        return hash((self.index, self.client, self.kind, self.invoked))

    @property
    def answered(self) -> bool:
        return self.completed is not None


def precedes(a: Operation, b: Operation) -> bool:
    """A's answer arrived before B was sent: the only order between operations a rule may use."""
    return a.completed is not None and a.completed < b.invoked


class Observation(NamedTuple):
    """A response that showed a run's status: the run was in `status` at some instant of [earliest, latest].

    A NamedTuple rather than a frozen dataclass: a history derives hundreds of thousands of these,
    and a frozen dataclass takes nine times as long to build one.

    The window is the operation's [invoked, completed], widened where a correct server may show an
    older state: a startRun 202 with an Idempotency-Key may be a replay of the first answer (so its
    window opens at -inf), and a listRuns page may come from a snapshot taken when its walk began
    (so its window opens at the walk's first invocation). Observation A precedes B when
    `A.latest < B.earliest`.

    `cancel_shown` is True when the response is a Run (getRun, a listRuns item), whose
    cancelRequestedAt is then `cancel_requested_at` (None meaning null). A RunRef shows neither
    timestamp: extra fields in it carry no contract and are ignored.
    """

    run_id: str
    status: str
    op: int
    earliest: float
    latest: float
    cancel_shown: bool = False
    cancel_requested_at: str | None = None
    finished_at: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class Disruption:
    """The user's disruption command (--disrupt) as it happened during the workload; monotonic times.

    The window in which a failed request is indeterminate rather than a failure runs from the
    command's start to `answering + grace`; if the server never answered again, to the end.
    """

    command: str
    started: float
    ended: float
    exit_code: int | None  # None: the command did not end within its time and was killed
    output: str  # stdout and stderr together, cut to a few kilobytes
    answering: float | None  # the first answer after the command ended; None: none within `wait`
    grace: float
    wait: float

    @property
    def window_end(self) -> float:
        return math.inf if self.answering is None else self.answering + self.grace

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def covers(self, moment: float) -> bool:
        return self.started <= moment <= self.window_end

    def as_record(self, start: float) -> dict[str, Any]:
        """What conformance.json shows of it: seconds from `start` (the history's), or durations."""
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "started_s": round(self.started - start, 3),
            "command_s": round(self.ended - self.started, 3),
            "answering_after_s": None if self.answering is None else round(self.answering - self.ended, 3),
            "window_end_s": None if self.answering is None else round(self.window_end - start, 3),
            "grace_s": self.grace,
            "wait_s": self.wait,
            "output": self.output,
        }


@dataclass(frozen=True)
class History:
    """The operations in history order: `operations[i].index == i`."""

    operations: Sequence[Operation]
    disruption: Disruption | None = None  # the --disrupt command run during the workload, if any

    def __post_init__(self) -> None:
        for position, op in enumerate(self.operations):
            if op.index != position:
                raise ValueError(f"operation at position {position} has index {op.index}; indices must be 0..n-1")

    def __len__(self) -> int:
        return len(self.operations)

    def __getitem__(self, index: int) -> Operation:
        return self.operations[index]

    @functools.cached_property
    def start(self) -> float:
        """The first invocation: times in messages and timelines count from here."""
        return min((op.invoked for op in self.operations), default=0.0)

    @functools.cached_property
    def walks(self) -> dict[int, tuple[Operation, ...]]:
        """The listRuns operations of each walk, in history order."""
        found: dict[int, list[Operation]] = {}
        for op in self.operations:
            if op.kind == "listRuns" and op.walk is not None:
                found.setdefault(op.walk, []).append(op)
        return {walk: tuple(ops) for walk, ops in found.items()}

    @functools.cached_property
    def walk_start(self) -> dict[int, float]:
        """When each walk began: the first invocation of any of its pages."""
        return {walk: min(op.invoked for op in ops) for walk, ops in self.walks.items()}

    @functools.cached_property
    def observations(self) -> tuple[Observation, ...]:
        """Every status a response showed, in history order (see Observation for each window)."""
        found: list[Observation] = []
        walk_start = self.walk_start
        for op in self.operations:
            if op.completed is None or not isinstance(op.body, dict):
                continue
            body = op.body
            if op.kind == "startRun" and op.status == 202:
                earliest = -math.inf if op.key is not None else op.invoked
                _ref(found, body, op, earliest, op.client_id)
            elif op.kind == "cancelRun" and op.status == 202:
                _ref(found, body, op, op.invoked, None)
            elif op.kind == "getRun" and op.status == 200:
                _run(found, body, op, op.invoked)
            elif op.kind == "listRuns" and op.status == 200 and isinstance(body.get("items"), list):
                earliest = walk_start[op.walk] if op.walk is not None else op.invoked
                for item in body["items"]:
                    if isinstance(item, dict):
                        _run(found, item, op, earliest)
        return tuple(found)

    def runs(self) -> dict[str, tuple[Observation, ...]]:
        """The observations of each run, in history order."""
        found: dict[str, list[Observation]] = {}
        for obs in self.observations:
            found.setdefault(obs.run_id, []).append(obs)
        return {run_id: tuple(items) for run_id, items in found.items()}


def _ref(found: list[Observation], body: dict[str, Any], op: Operation, earliest: float, client_id: str | None) -> None:
    run_id, status = body.get("runId"), body.get("status")
    if isinstance(run_id, str) and isinstance(status, str) and op.completed is not None:
        found.append(Observation(run_id, status, op.index, earliest, op.completed, client_id=client_id))


def _run(found: list[Observation], body: dict[str, Any], op: Operation, earliest: float) -> None:
    run_id, status = body.get("runId"), body.get("status")
    if not (isinstance(run_id, str) and isinstance(status, str) and op.completed is not None):
        return  # not a Run: the schema checks say so
    cancel, finished, client_id = body.get("cancelRequestedAt"), body.get("finishedAt"), body.get("clientId")
    found.append(
        Observation(
            run_id,
            status,
            op.index,
            earliest,
            op.completed,
            cancel_shown="cancelRequestedAt" in body and (cancel is None or isinstance(cancel, str)),
            cancel_requested_at=cancel if isinstance(cancel, str) else None,
            finished_at=finished if isinstance(finished, str) else None,
            client_id=client_id if isinstance(client_id, str) else None,
        )
    )
