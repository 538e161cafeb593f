"""Key replays and cancels judged from traffic: IDEM-001/002/003/006 and CANCEL-002 on a rebuilt history.

A run provokes these on purpose; traffic holds them whenever a client retries a startRun or cancels
a run. The key logic is the history checker's (per credential and Idempotency-Key, bodies compared
by their RFC 8785 fingerprint, so JSON-equal bodies are the same body); CONC-001..003 judge every
answer of a key together, while the IDEM IDs are the single-client rules the catalog states, so
each is counted here on the pairs that are its own instance, and a broken server shows on both.
What one instance is, here:

- IDEM-001: one 202 of a keyed startRun whose body is JSON-equal to that of a 202 of the same key
  and credential answered before it was sent (a replay): it must carry the first 202's runId.
- IDEM-006: the same, when the two requests overlapped in time (neither was answered before the
  other was sent): concurrent requests with one key and one body get one run.
- IDEM-002: each replay of IDEM-001 or IDEM-006 (another runId is a second run created by it), and
  each 409 other than in-flight to a body JSON-equal to that of a 202 of the key answered before it
  was sent (the same body, refused as another: byte-for-byte comparison).
- IDEM-003: one keyed startRun answered 202 or 409, sent after a 202 of the same key and credential
  for another body had been answered: it must be a 409 of type idempotency-key-reused. A 409
  in-flight is no instance (a request with the key may have been in flight then); another status
  (400, 401, 429, ...) is no instance: the contract does not order those before the key's rule.
- CANCEL-002: one cancelRun 202 (its RunRef shows no cancelRequestedAt): its status must be
  cancelling or cancelled unless the run was terminal, so a queued or running answer breaks it;
  and each Run shown by a response sent after a 202 `cancelling` was answered must have
  cancelRequestedAt set. A 202 `cancelled` may be a cancel of an already cancelled run (CANCEL-004's):
  it is not used to demand a cancelRequestedAt.

Order is real-time precedence only (`conformance.history.precedes`, a listRuns page's window from
its walk's start), so latency and clocks within the recording's precision make no finding.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from conformance.history import History, Operation, precedes
from conformance.history_findings import Finding, Say
from conformance.spec import KEY_IN_FLIGHT, KEY_REUSED, terminal_statuses

__all__ = ["RULES", "replay_findings"]

RULES = {
    "IDEM-001": "a keyed startRun replayed with the same body gets 202 with the first runId",
    "IDEM-002": "a replay with a JSON-equal body creates no second run",
    "IDEM-003": "another body under a used key gets 409 idempotency-key-reused",
    "IDEM-006": "concurrent startRuns with one key and one body get one run",
    "CANCEL-002": "cancelRun of a non-terminal run gets 202 cancelling or cancelled, and cancelRequestedAt is set",
}


class _Judged:
    """Instances and findings, at most one finding per rule and part (key or run): the first is the evidence."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.findings: list[Finding] = []
        self._done: set[tuple[str, object]] = set()

    def judge(self, rule: str, part: object, ops: tuple[int, ...], holds: bool, message: str, run: str | None) -> None:
        self.counts[rule] += 1
        if not holds and (rule, part) not in self._done:
            self._done.add((rule, part))
            self.findings.append(Finding(rule, f"{message} ({rule}: {RULES[rule]})", ops, run))


def replay_findings(history: History) -> tuple[Counter[str], list[Finding]]:
    """(instances per requirement, findings)."""
    say = Say(history)
    judged = _Judged()
    keyed: dict[tuple[str, str], list[Operation]] = {}
    for op in history.operations:
        if op.kind == "startRun" and op.key is not None and op.answered:
            keyed.setdefault((op.credential, op.key), []).append(op)
    for part, ops in keyed.items():
        _replays(part, ops, judged, say)
        _reuses(part, ops, judged, say)
    _cancels(history, judged, say)
    return judged.counts, sorted(judged.findings, key=lambda f: (f.requirement_id, f.operations))


def _run_id(op: Operation) -> str | None:
    run_id = op.body.get("runId") if isinstance(op.body, dict) else None
    return run_id if isinstance(run_id, str) else None


def _accepted(ops: Sequence[Operation]) -> list[Operation]:
    return [op for op in ops if op.status == 202 and _run_id(op) is not None and op.body_fingerprint is not None]


def _answered_by(op: Operation) -> float:
    return op.completed if op.completed is not None else math.inf


def _replays(part: tuple[str, str], ops: Sequence[Operation], judged: _Judged, say: Say) -> None:
    by_body: dict[str, list[Operation]] = {}
    for op in sorted(_accepted(ops), key=lambda op: op.invoked):
        by_body.setdefault(op.body_fingerprint or "", []).append(op)
    where = f"Idempotency-Key {part[1]!r} of the {part[0]!r} credential"
    first_answer: dict[str, Operation] = {}  # per body, the 202 answered first: the one a replay may follow
    for body, same in by_body.items():
        first = same[0]
        answered = _answered_by(first)
        first_answer[body] = first
        for op in same[1:]:
            # Sorted by invoked, an earlier one only can have been answered before this one was sent.
            rule = "IDEM-001" if answered < op.invoked else "IDEM-006"
            holds = _run_id(op) == _run_id(first)
            message = (
                f"{where}: {say.op(first.index)} got run {_run_id(first)} and {say.op(op.index)}, with a JSON-equal "
                f"body, got run {_run_id(op)}"
            )
            judged.judge(rule, part, (first.index, op.index), holds, message, _run_id(op))
            judged.judge("IDEM-002", part, (first.index, op.index), holds, message, _run_id(op))
            if _answered_by(op) < answered:
                answered, first_answer[body] = _answered_by(op), op
    for op in ops:
        kind = op.body.get("type") if isinstance(op.body, dict) else None
        earlier = first_answer.get(op.body_fingerprint or "")
        if op.status != 409 or kind == KEY_IN_FLIGHT or earlier is None or not precedes(earlier, op):
            continue
        judged.judge(
            "IDEM-002",
            part,
            (earlier.index, op.index),
            False,
            f"{where}: {say.op(earlier.index)} got 202 (run {_run_id(earlier)}) and was answered before "
            f"{say.op(op.index)} sent a JSON-equal body, which got 409 with type {kind!r}; expected 202 with "
            "the same runId",
            _run_id(earlier),
        )


def _reuses(part: tuple[str, str], ops: Sequence[Operation], judged: _Judged, say: Say) -> None:
    # The 202 answered first, and the one answered first among those of another body: for any request,
    # one of the two is the earliest-answered 202 whose body differs from its own.
    by_answer = sorted(_accepted(ops), key=_answered_by)
    if not by_answer:
        return
    head = by_answer[0]
    other = next((a for a in by_answer if a.body_fingerprint != head.body_fingerprint), None)
    where = f"Idempotency-Key {part[1]!r} of the {part[0]!r} credential"
    for op in ops:
        if op.body_fingerprint is None or op.status not in (202, 409):
            continue
        earlier = head if head.body_fingerprint != op.body_fingerprint else other
        kind = op.body.get("type") if isinstance(op.body, dict) else None
        if earlier is None or not precedes(earlier, op) or (op.status == 409 and kind == KEY_IN_FLIGHT):
            continue
        judged.judge(
            "IDEM-003",
            part,
            (earlier.index, op.index),
            op.status == 409 and kind == KEY_REUSED,
            f"{where}: {say.op(earlier.index)} got 202 (run {_run_id(earlier)}) and was answered before "
            f"{say.op(op.index)} sent another body; expected 409 with type {KEY_REUSED}, got {op.status}"
            + (f" with type {kind!r}" if op.status == 409 else ""),
            _run_id(earlier),
        )


def _cancels(history: History, judged: _Judged, say: Say) -> None:
    terminal = terminal_statuses()
    requested: dict[str, Operation] = {}  # run → the first answered 202 `cancelling` of it
    for op in history.operations:
        if op.kind != "cancelRun" or op.status != 202 or op.run_id is None or not isinstance(op.body, dict):
            continue
        status = op.body.get("status")
        if not isinstance(status, str):
            continue
        if status not in terminal:
            judged.judge(
                "CANCEL-002",
                op.run_id,
                (op.index,),
                status == "cancelling",
                f"{say.op(op.index)} answered 202 with status {status!r}: the run was not terminal, so expected "
                "cancelling or cancelled",
                op.run_id,
            )
        if status == "cancelling":
            held = requested.get(op.run_id)
            if op.completed is not None and (held is None or held.completed is None or op.completed < held.completed):
                requested[op.run_id] = op
    if not requested:
        return
    for run_id, observations in history.runs().items():
        cancel = requested.get(run_id)
        if cancel is None or cancel.completed is None:
            continue
        for obs in observations:
            if obs.cancel_shown and cancel.completed < obs.earliest:
                judged.judge(
                    "CANCEL-002",
                    run_id,
                    (cancel.index, obs.op),
                    obs.cancel_requested_at is not None,
                    f"{say.op(cancel.index)} answered 202 cancelling, and {say.op(obs.op)}, sent after that answer, "
                    "showed the run with cancelRequestedAt null",
                    run_id,
                )
