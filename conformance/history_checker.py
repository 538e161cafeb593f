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

What one instance of each rule is (`evaluations` counts them; an unanswered operation is never part
of one; the catalog's `instance:` lines say the same, for the report and docs/requirements.md):

- CONC-001: each 202 of a (credential, Idempotency-Key) that got two or more answered 202s.
- CONC-002: each answered startRun of a key whose body differs from the body of a 202 of that key.
- CONC-003: each answered startRun with an Idempotency-Key (any could get a causeless key-reused 409).
- CONC-004: each answered startRun with an Idempotency-Key (any could get a causeless in-flight 409).
- CONC-005: each response showing a run's status, sent after another showing that run was answered.
- CONC-006: each response showing a run sent after one showing it terminal; each terminal one, if two or more.
- CONC-007: each Run with cancelRequestedAt null sent after one showing it set; each set one, if two or more.
- CONC-008: each terminal response with finishedAt, of a run shown terminal with finishedAt twice or more.
- CONC-009: each answered getRun, getRunDefinition or cancelRun sent after a response had shown its run.
- CONC-010: each walk whose answered pages (one answer per page) returned two or more runs.
- CONC-011: each walk ended by a null nextCursor, every page 200, that had to return at least one run.
- CONC-012: each answered getRunDefinition of a run whose definition was answered twice or more.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from conformance.history import PATH_KINDS, History, Observation, Operation
from conformance.history_definitions import definition_findings
from conformance.history_findings import RULES, Finding, Say, lifecycle_graph
from conformance.history_keys import key_findings
from conformance.history_runs import lifecycle_findings, shown_at, timestamp_findings, visibility_findings
from conformance.history_walks import Demands, complete, judged_pages, returned_runs, walk_findings
from conformance.spec import KEY_IN_FLIGHT, KEY_REUSED

__all__ = [
    "KEY_IN_FLIGHT",
    "KEY_REUSED",
    "RULES",
    "Finding",
    "check_history",
    "evaluations",
    "lifecycle_graph",
]


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
    """How many instances of each rule the history holds (the module says what one is): what it was judged on.

    A rule with none was not evaluated (its premise never happened), which the check reports as
    such, never as a pass. An operation that got no answer is never part of an instance: it may or
    may not have taken effect, and it showed nothing.
    """
    counts: Counter[str] = Counter()
    keyed: dict[tuple[str, str], list[Operation]] = {}
    for op in history.operations:
        if op.kind == "startRun" and op.key is not None and op.answered:
            keyed.setdefault((op.credential, op.key), []).append(op)
    for answers in keyed.values():
        accepted = [op for op in answers if op.status == 202]
        if len(accepted) > 1:
            counts["CONC-001"] += len(accepted)
        bodies = {op.body_fingerprint for op in accepted}
        counts["CONC-002"] += sum(1 for op in answers if bodies - {op.body_fingerprint})
        counts["CONC-003"] += len(answers)
        counts["CONC-004"] += len(answers)
    _, terminal = lifecycle_graph()
    by_run = history.runs()
    for observations in by_run.values():
        counts["CONC-005"] += len(_preceded(observations, lambda _: True))
        ends = [obs for obs in observations if obs.status in terminal]
        after_end = _preceded(observations, lambda obs: obs.status in terminal)
        counts["CONC-006"] += len(after_end | (set(ends) if len(ends) > 1 else set()))
        shown = [obs for obs in observations if obs.cancel_shown]
        stamped = [obs for obs in shown if obs.cancel_requested_at is not None]
        after_stamp = _preceded(shown, lambda obs: obs.cancel_requested_at is not None)
        counts["CONC-007"] += len(after_stamp | (set(stamped) if len(stamped) > 1 else set()))
        ended = sum(1 for obs in ends if obs.finished_at is not None)
        if ended > 1:
            counts["CONC-008"] += ended
    shown_at_ = shown_at(history, by_run)
    counts["CONC-009"] = sum(
        1
        for op in history.operations
        if op.kind in PATH_KINDS and op.answered and op.run_id in shown_at_ and shown_at_[op.run_id][0] < op.invoked
    )
    demands = Demands(history, by_run, shown_at_, terminal)
    for ops in history.walks.values():
        ordered = judged_pages(ops)
        if ordered is None:
            continue
        if len(returned_runs(ordered)) > 1:
            counts["CONC-010"] += 1
        if complete(ops, ordered) and demands.demanded(ordered):
            counts["CONC-011"] += 1
    definitions = Counter(
        op.run_id for op in history.operations if op.kind == "getRunDefinition" and op.answered and op.status
    )
    counts["CONC-012"] = sum(n for n in definitions.values() if n > 1)
    return +counts  # only what was evaluated at least once


def _preceded(observations: Sequence[Observation], earlier: Callable[[Observation], bool]) -> set[Observation]:
    """The observations that come after an `earlier` one in real time (its answer arrived before they were
    sent). Observations are in history order, so one pass holds the first answer of that kind so far."""
    found: set[Observation] = set()
    first_answer = math.inf
    for obs in observations:
        if first_answer < obs.earliest:
            found.add(obs)
        if earlier(obs):
            first_answer = min(first_answer, obs.latest)
    return found
