"""Checks a concurrent history against the contract, with no false alarm (CONC-001..012).

Every rule uses one order only: real-time precedence (`conformance.history.precedes`). What
overlapping operations did is never ordered, an operation with no answer may or may not have
taken effect, and a response that may show an older state (an idempotent replay, a page of a
walk) is given the window a correct server could have taken it from (see `Observation`). So
latency, retries and scheduling cannot make a finding; only a contradiction can.

The history is split into independent parts, each checked alone (as Porcupine does): per
(credential, Idempotency-Key), per run, per walk, per definition (history_keys.py, history_runs.py,
history_walks.py, history_definitions.py; what they share is history_findings.py). Each part is
sorted and swept once, so the whole check costs O(n log n) in the operations and the items they
returned.

A finding names the two or three operations that prove it, never the whole history, and at most
one finding is made per rule and part (key, run or walk): the first contradiction is the evidence,
and a broken server would otherwise bury it under thousands of copies.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterator

from conformance.history import PATH_KINDS, History, Operation
from conformance.history_definitions import definition_findings
from conformance.history_findings import RULES, Finding, Say, lifecycle_graph
from conformance.history_keys import key_findings
from conformance.history_runs import lifecycle_findings, shown_at, timestamp_findings, visibility_findings
from conformance.history_walks import Demands, complete, walk_findings
from conformance.spec import KEY_IN_FLIGHT, KEY_REUSED

__all__ = ["KEY_IN_FLIGHT", "KEY_REUSED", "RULES", "Finding", "check_history", "evaluations", "lifecycle_graph"]


def check_history(history: History) -> list[Finding]:
    """Every contradiction of the contract the history proves, sorted by requirement and operations."""
    with _cyclic_gc_paused():
        return _check(history)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The checker builds only acyclic data, which reference counting frees; the cyclic collector would
    walk the whole history (hundreds of thousands of objects) again and again: half the time at 100k."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check(history: History) -> list[Finding]:
    say = Say(history)
    findings: list[Finding] = []
    findings += key_findings(history, say)
    by_run = history.runs()
    reach, terminal = lifecycle_graph()
    for run_id, observations in by_run.items():
        findings += lifecycle_findings(run_id, observations, reach, terminal, say)
        findings += timestamp_findings(run_id, observations, terminal, say)
    shown = shown_at(history, by_run)
    findings += visibility_findings(history, shown, say)
    findings += walk_findings(history, Demands(history, by_run, shown, terminal), say)
    findings += definition_findings(history, say)
    return sorted(findings, key=lambda f: (f.requirement_id, f.operations))


def evaluations(history: History) -> Counter[str]:
    """How many instances of each rule the history holds: what the rule was judged on.

    A rule with none was not evaluated (its premise never happened: no key used twice, no run read
    twice, no walk ended), which the check reports as such, never as a pass.
    """
    counts: Counter[str] = Counter()
    keyed: dict[tuple[str, str], list[Operation]] = {}
    for op in history.operations:
        if op.kind == "startRun" and op.key is not None and op.completed is not None:
            keyed.setdefault((op.credential, op.key), []).append(op)
    for ops in keyed.values():
        if len(ops) > 1:
            accepted = sum(1 for op in ops if op.status == 202)
            counts.update({"CONC-001": accepted, "CONC-002": accepted, "CONC-003": len(ops), "CONC-004": len(ops)})
    _, terminal = lifecycle_graph()
    for observations in history.runs().values():
        if len(observations) > 1:
            counts["CONC-005"] += len(observations)
            if any(obs.status in terminal for obs in observations):
                counts["CONC-006"] += len(observations)
        if any(obs.cancel_requested_at is not None for obs in observations):
            counts["CONC-007"] += sum(1 for obs in observations if obs.cancel_shown)
        ended = sum(1 for obs in observations if obs.status in terminal and obs.finished_at is not None)
        if ended > 1:
            counts["CONC-008"] += ended
    shown = shown_at(history, history.runs())
    counts["CONC-009"] = sum(
        1
        for op in history.operations
        if op.kind in PATH_KINDS and op.run_id in shown and shown[op.run_id][0] < op.invoked
    )
    for pages in history.walks.values():
        counts["CONC-010"] += 1
        ordered = sorted((op for op in pages if op.page is not None), key=lambda op: op.page or 0)
        if ordered and len(ordered) == len(pages) and complete(pages, ordered):
            counts["CONC-011"] += 1
    definitions = Counter(op.run_id for op in history.operations if op.kind == "getRunDefinition" and op.completed)
    counts["CONC-012"] = sum(n for n in definitions.values() if n > 1)
    return +counts  # only what was evaluated at least once
