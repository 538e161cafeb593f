"""The history checker per (credential, Idempotency-Key): one run and one body per key, 409s with
a cause (CONC-001..004)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from conformance.history import History, Operation, precedes
from conformance.history_findings import Finding, Say, finding
from conformance.spec import KEY_IN_FLIGHT, KEY_REUSED

__all__ = ["key_findings"]


def _problem_type(op: Operation) -> Any:
    return op.body.get("type") if isinstance(op.body, dict) else None


def key_findings(history: History, say: Say) -> list[Finding]:
    groups: dict[tuple[str, str], list[Operation]] = {}
    for op in history.operations:
        if op.kind == "startRun" and op.key is not None:
            groups.setdefault((op.credential, op.key), []).append(op)
    findings: list[Finding] = []
    for (credential, key), ops in groups.items():
        where = f"Idempotency-Key {key!r} of the {credential!r} credential"
        findings += _one_run_per_key(ops, where, say)
        findings += _conflicts(ops, where, say)
    return findings


def _one_run_per_key(ops: Sequence[Operation], where: str, say: Say) -> list[Finding]:
    findings: list[Finding] = []
    first_by_run: dict[str, Operation] = {}
    first_by_body: dict[str, Operation] = {}
    for op in ops:
        if op.status != 202 or not isinstance(op.body, dict):
            continue
        run_id = op.body.get("runId")
        if isinstance(run_id, str):
            first_by_run.setdefault(run_id, op)
        if op.body_fingerprint is not None:
            first_by_body.setdefault(op.body_fingerprint, op)
    if len(first_by_run) > 1:
        (run_a, a), (run_b, b) = list(first_by_run.items())[:2]
        findings.append(
            finding(
                "CONC-001",
                f"{where}: {say.op(a.index)} got run {run_a} and {say.op(b.index)} got run {run_b}; expected every 202 "
                "for one key to carry the runId of the one run the key created",
                (a.index, b.index),
            )
        )
    if len(first_by_body) > 1:
        a, b = list(first_by_body.values())[:2]
        findings.append(
            finding(
                "CONC-002",
                f"{where}: {say.op(a.index)} and {say.op(b.index)} sent different bodies and both got 202; expected "
                f"409 with type {KEY_REUSED} for whichever came second",
                (a.index, b.index),
            )
        )
    return findings


def _conflicts(ops: Sequence[Operation], where: str, say: Say) -> list[Finding]:
    """409s must have a cause: another body with the key (reused), or an overlapping request (in flight)."""
    reused = [op for op in ops if op.status == 409 and _problem_type(op) == KEY_REUSED and op.body_fingerprint]
    in_flight = [op for op in ops if op.status == 409 and _problem_type(op) == KEY_IN_FLIGHT]
    if not (reused or in_flight):
        return []
    by_invoked = sorted(ops, key=lambda op: op.invoked)
    findings: list[Finding] = []
    if reused:
        # The two earliest requests with distinct bodies; an unknown fingerprint may be any body.
        first = by_invoked[0]
        other = next((op for op in by_invoked if not _same_body(op, first)), None)
        for op in reused:
            assert op.completed is not None  # it has a status
            cause = other if _same_body(first, op) else first
            if cause is not None and cause.invoked <= op.completed:
                continue
            earlier = next((x for x in by_invoked if x is not op and x.invoked <= op.completed), None)
            shown, expected = "", "202 with the key's run"
            if earlier is not None:
                # "First used by" only when it was: a request sent after the 409'd one is merely another user.
                shown = (
                    f"; the key was first used by {say.op(earlier.index)}, with the same body"
                    if earlier.invoked < op.invoked
                    else f"; it was the first request with that key, and the next, {say.op(earlier.index)}, had the "
                    "same body"
                )
                if not precedes(earlier, op):
                    expected += f", or 409 with type {KEY_IN_FLIGHT} while op #{earlier.index} was in flight"
            findings.append(
                finding(
                    "CONC-003",
                    f"{where}: {say.op(op.index)} got 409 with type {KEY_REUSED}, but no request with that key and "
                    f"another body had been sent before it was answered{shown}; expected {expected}",
                    (op.index, *((earlier.index,) if earlier else ())),
                )
            )
            break
    if in_flight:
        invoked = [op.invoked for op in by_invoked]
        # Per prefix (by invocation), the two latest-ending requests: the best overlap candidates.
        top: list[tuple[tuple[float, int], tuple[float, int]]] = []
        best, second = (-math.inf, -1), (-math.inf, -1)
        for op in by_invoked:
            end = (math.inf if op.completed is None else op.completed, op.index)
            if end > best:
                best, second = end, best
            elif end > second:
                second = end
            top.append((best, second))
        for op in in_flight:
            assert op.completed is not None
            count = bisect.bisect_right(invoked, op.completed)  # requests sent no later than its answer
            if count:
                best, second = top[count - 1]
                candidate = second if best[1] == op.index else best
                if candidate[1] >= 0 and candidate[0] >= op.invoked:
                    continue
            before = [x for x in by_invoked if x is not op and x.completed is not None and x.completed < op.invoked]
            last = max(before, key=lambda x: x.completed or 0.0, default=None)
            shown = f"; the last one before it, {say.op(last.index)}, was answered before it was sent" if last else ""
            findings.append(
                finding(
                    "CONC-004",
                    f"{where}: {say.op(op.index)} got 409 with type {KEY_IN_FLIGHT}, but no other request with that "
                    f"key was in flight while it was{shown}; expected 202 with the key's run (or a new run)",
                    (op.index, *((last.index,) if last else ())),
                )
            )
            break
    return findings


def _same_body(a: Operation, b: Operation) -> bool:
    return a.index == b.index or (a.body_fingerprint is not None and a.body_fingerprint == b.body_fingerprint)
