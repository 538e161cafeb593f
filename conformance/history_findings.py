"""What the history checker's parts share: the rules, a finding, the lifecycle graph, and the wording of operations."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from conformance.history import History, Observation
from conformance.spec import lifecycle

__all__ = ["RULES", "Finding", "Say", "finding", "lifecycle_graph"]

# What each requirement ID checks, in short: for messages and for the tests that must see each fail.
RULES: dict[str, str] = {
    "CONC-001": "one Idempotency-Key, one runId",
    "CONC-002": "one Idempotency-Key, one body",
    "CONC-003": "a key-reused 409 needs another body with that key",
    "CONC-004": "a key-in-flight 409 needs an overlapping request with that key",
    "CONC-005": "statuses follow the lifecycle in real time",
    "CONC-006": "a terminal status never changes",
    "CONC-007": "cancelRequestedAt never changes once set",
    "CONC-008": "finishedAt of a terminal run never changes",
    "CONC-009": "a run that was shown is never 404",
    "CONC-010": "a walk returns no run twice",
    "CONC-011": "a walk returns every run that matched it throughout",
    "CONC-012": "a definition's ETag and body never change",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A violated requirement, what happened, and the operations (indices) that prove it.

    `run_id` is the run the finding is about, when it is about one: evidence drawn around the proof
    shows that run's other operations too (a listRuns page names no run of its own).
    """

    requirement_id: str
    message: str
    operations: tuple[int, ...]
    run_id: str | None = None


@functools.cache
def lifecycle_graph() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """(status → every status reachable from it, itself included; the terminal statuses), from the spec."""
    moves, terminal = lifecycle()
    reach: dict[str, frozenset[str]] = {}
    for start in moves:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in moves.get(frontier.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        reach[start] = frozenset(seen)
    return reach, terminal


class Say:
    """Operations as a reader of a finding needs them: index, client, what was sent and got, when."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.start = history.start

    def ms(self, t: float) -> str:
        return f"{(t - self.start) * 1000:.3f} ms"

    def op(self, index: int) -> str:
        op = self.history[index]
        what: str = op.kind
        if op.run_id is not None:
            what += f" {op.run_id}"
        if op.kind == "startRun" and op.key is not None:
            what += f" (Idempotency-Key {op.key!r})"
        if op.kind == "listRuns" and op.walk is not None:
            what += f" (walk {op.walk}, page {op.page})"
        if op.completed is None:
            return f"op #{op.index} (client {op.client}, {what} → no answer, sent at {self.ms(op.invoked)})"
        during = f"{(op.invoked - self.start) * 1000:.3f}–{self.ms(op.completed)}"
        return f"op #{op.index} (client {op.client}, {what} → {op.status}, {during})"

    def before(self, a: Observation, b: Observation) -> str:
        """A read that precedes another, and what each showed."""
        return (
            f"{self.op(a.op)} showed it {a.status} and was answered before {self.op(b.op)} was sent, "
            f"which showed it {b.status}"
        )


def finding(rule: str, message: str, operations: Iterable[int], run_id: str | None = None) -> Finding:
    ops = tuple(dict.fromkeys(operations))  # in the order given, each once
    return Finding(rule, f"{message} ({rule}: {RULES[rule]})", ops, run_id)
