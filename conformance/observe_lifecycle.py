"""LIFE-001 and LIFE-002 judged from traffic: what one client saw of a run, read after read.

A run's lifecycle monitor (conformance/monitor.py) judges each Run the suite reads against the
last one it read of that run; this is that rule on a recording, for each client (credential and
connection, as observe tells them apart). CONC-005/006/008 judge the same lifecycle across all
clients of a history and count other things (RunRefs of startRun and cancelRun, unordered pairs
of terminal answers, finishedAt only), so these IDs are counted here on their own instances, as
the catalog states them, and a server that breaks both shows on both:

- LIFE-001: one Run shown by a getRun or a listRuns page, sent after the same client had been
  answered a Run of that run in a status from which some status is not reachable (running,
  cancelling: anything may follow queued); its status must be reachable from every such one.
- LIFE-002: one Run shown by a getRun or a listRuns page, sent after the same client had been
  answered that run in a terminal status: the same status, and each timestamp (createdAt,
  startedAt, finishedAt, cancelRequestedAt) the same instant, or null where it was null. A
  timestamp missing from either Run is not compared (SCHEMA-002 says so).

Order is real-time precedence only, with a page's window opened at its walk's start, as the
history checker's Observations are (a correct server may serve a walk from a snapshot); reads
that may have overlapped are no instance, and an untimed exchange precedes nothing. At most one
finding per rule and run: the first contradiction is the evidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from conformance.history import History
from conformance.history_findings import Finding, Say, lifecycle_graph
from conformance.meaning import run_instant_fields, same_instant

__all__ = ["RULES", "lifecycle_findings"]

RULES = {
    "LIFE-001": "one client's successive reads of a run follow the lifecycle's moves",
    "LIFE-002": "once one client saw a run terminal, its status and timestamps never change",
}


class _Read(NamedTuple):
    """A Run one answer showed: the run was so at some instant of [earliest, latest]."""

    op: int
    status: str
    earliest: float
    latest: float
    run: Mapping[str, Any]


def lifecycle_findings(history: History) -> tuple[Counter[str], list[Finding]]:
    """(instances per requirement, findings)."""
    reach, terminal = lifecycle_graph()
    # A status from which every status is reachable (queued) constrains nothing: no instance follows it.
    binding = {status for status, onward in reach.items() if status not in terminal and onward != set(reach)}
    say = Say(history)
    counts: Counter[str] = Counter()
    findings: dict[tuple[str, str], Finding] = {}
    for (_, run_id), reads in _reads(history, frozenset(reach)).items():
        by_latest = sorted(reads, key=lambda read: read.latest)
        seen: dict[str, _Read] = {}  # status -> the first read of it answered before the current one was sent
        end: _Read | None = None  # the first terminal read so answered
        position = 0
        for b in sorted(reads, key=lambda read: read.earliest):
            while position < len(by_latest) and by_latest[position].latest < b.earliest:
                a = by_latest[position]
                seen.setdefault(a.status, a)
                if end is None and a.status in terminal:
                    end = a
                position += 1
            moved_from = [a for status, a in seen.items() if status in binding]
            if moved_from:
                counts["LIFE-001"] += 1
                wrong = next((a for a in moved_from if b.status not in reach[a.status]), None)
                if wrong is not None and ("LIFE-001", run_id) not in findings:
                    onward = ", ".join(sorted(reach[wrong.status] - {wrong.status}))
                    findings["LIFE-001", run_id] = _finding(
                        "LIFE-001",
                        run_id,
                        wrong,
                        b,
                        say,
                        f"showed it {b.status}; expected {wrong.status} or a status reachable from it ({onward})",
                    )
            if end is not None:
                counts["LIFE-002"] += 1
                changed = _changed(end, b)
                if changed and ("LIFE-002", run_id) not in findings:
                    findings["LIFE-002", run_id] = _finding(
                        "LIFE-002", run_id, end, b, say, f"showed {changed}; a terminal run never changes"
                    )
    return counts, sorted(findings.values(), key=lambda f: (f.requirement_id, f.operations))


def _reads(history: History, known: frozenset[str]) -> dict[tuple[int, str], list[_Read]]:
    """The Runs each client was shown, per (client, runId); an unknown status is the schema's finding."""
    found: dict[tuple[int, str], list[_Read]] = {}
    for op in history.operations:
        if op.completed is None or op.status != 200:
            continue
        if op.kind == "getRun":
            earliest, runs = op.invoked, [op.body]
        elif op.kind == "listRuns" and isinstance(op.body, dict) and isinstance(op.body.get("items"), list):
            earliest = history.walk_start[op.walk] if op.walk is not None else op.invoked
            runs = op.body["items"]
        else:
            continue
        for run in _runs(runs):
            if run["status"] in known:
                read = _Read(op.index, run["status"], earliest, op.completed, run)
                found.setdefault((op.client, run["runId"]), []).append(read)
    return found


def _runs(items: Sequence[Any]) -> Iterator[Mapping[str, Any]]:
    for run in items:
        if isinstance(run, dict) and isinstance(run.get("runId"), str) and isinstance(run.get("status"), str):
            yield run


def _changed(end: _Read, b: _Read) -> str:
    """What `b` shows differently from the terminal read `end`: "" when nothing the rule covers."""
    if b.status != end.status:
        return f"it {b.status}"
    for name in sorted(run_instant_fields()):
        if name in end.run and name in b.run and not same_instant(end.run[name], b.run[name]):
            return f"{name} {b.run[name]!r} where it had been {end.run[name]!r}"
    return ""


def _finding(rule: str, run_id: str, a: _Read, b: _Read, say: Say, what: str) -> Finding:
    message = (
        f"run {run_id}: {say.op(a.op)} showed it {a.status} and was answered before {say.op(b.op)} "
        f"was sent by the same client, which {what} ({rule}: {RULES[rule]})"
    )
    return Finding(rule, message, (a.op, b.op), run_id)
