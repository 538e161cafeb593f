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
- LIFE-006: one getRun answered 200 or 404, sent after the same client had been answered that run
  terminal or with cancelRequestedAt set (a run a retention job would take first): it must be 200.
  The contract sets no retention, so the distance in time plays no part; CONC-009 says the same of
  any run shown to any client.
- LIFE-004's last clause, a set startedAt never changes: a Run so shown after the same client had
  been answered it with startedAt set shows that instant. The answer is already LIFE-004's
  instance (observe_judges.py judges its timestamps' order), so it is not counted again.

Order is real-time precedence only, with a page's window opened at its walk's start, as the
history checker's Observations are (a correct server may serve a walk from a snapshot); reads
that may have overlapped are no instance, and an untimed exchange precedes nothing. At most one
finding per rule and run: the first contradiction is the evidence.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from conformance.history import History
from conformance.history_findings import Finding, Say, lifecycle_graph
from conformance.meaning import run_instant_fields, same_instant

__all__ = ["RULES", "lifecycle_findings"]

RULES = {
    "LIFE-001": "one client's successive reads of a run follow the lifecycle's moves",
    "LIFE-002": "once one client saw a run terminal, its status and timestamps never change",
    "LIFE-004": "a set startedAt never changes",
    "LIFE-006": "a run startRun accepted stays readable",
}


_MISSING = object()


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
    counts: Counter[str] = Counter()
    found = _Found(Say(history))
    shown = _reads(history, frozenset(reach))
    _retained(history, shown, terminal, counts, found)
    for (_, run_id), reads in shown.items():
        for before, b in _successive(reads, terminal):
            moved_from = [a for status, a in before.first_of.items() if status in binding]
            if moved_from:
                counts["LIFE-001"] += 1
                wrong = next((a for a in moved_from if b.status not in reach[a.status]), None)
                if wrong is not None:
                    onward = ", ".join(sorted(reach[wrong.status] - {wrong.status}))
                    said = f"showed it {b.status}; expected {wrong.status} or a status reachable from it ({onward})"
                    found.add("LIFE-001", run_id, wrong, b, said)
            # The answer is LIFE-004's instance already (observe_judges.py judges its order): no count here.
            started = before.started
            if started is not None and not _kept("startedAt", started, b):
                said = f"showed startedAt {b.run['startedAt']!r} where it had been {started.run['startedAt']!r}"
                found.add("LIFE-004", run_id, started, b, said)
            if before.ended is not None:
                counts["LIFE-002"] += 1
                changed = _changed(before.ended, b)
                if changed:
                    found.add("LIFE-002", run_id, before.ended, b, f"showed {changed}; a terminal run never changes")
    return counts, sorted(found.findings.values(), key=lambda f: (f.requirement_id, f.operations))


def _retained(
    history: History,
    shown: Mapping[tuple[int, str], Sequence[_Read]],
    terminal: frozenset[str],
    counts: Counter[str],
    found: _Found,
) -> None:
    """LIFE-006: a getRun after the same client saw the run finished (or a cancel requested) finds it."""
    settled: dict[tuple[int, str], _Read] = {}
    for part, reads in shown.items():
        done = [read for read in reads if read.status in terminal or read.run.get("cancelRequestedAt")]
        if done:
            settled[part] = min(done, key=lambda read: read.latest)
    if not settled:
        return
    for op in history.operations:
        if op.kind != "getRun" or op.status not in (200, 404) or op.run_id is None:
            continue
        a = settled.get((op.client, op.run_id))
        if a is None or not a.latest < op.invoked:
            continue
        counts["LIFE-006"] += 1
        if op.status == 404 and ("LIFE-006", op.run_id) not in found.findings:
            message = (
                f"run {op.run_id}: {found.say.op(a.op)} showed it {a.status} and was answered before "
                f"{found.say.op(op.index)} was sent by the same client, which got 404 "
                f"(LIFE-006: {RULES['LIFE-006']})"
            )
            found.findings["LIFE-006", op.run_id] = Finding("LIFE-006", message, (a.op, op.index), op.run_id)


@dataclass
class _Before:
    """What the client had been answered of the run before it sent the read at hand."""

    first_of: dict[str, _Read] = field(default_factory=dict)  # status -> the first read of it so answered
    ended: _Read | None = None  # the first read so answered in a terminal status
    started: _Read | None = None  # the first read so answered with startedAt set


def _successive(reads: Sequence[_Read], terminal: frozenset[str]) -> Iterator[tuple[_Before, _Read]]:
    """Each read with what had been answered before it was sent: one sweep, the reads sorted twice."""
    before = _Before()
    by_latest = sorted(reads, key=lambda read: read.latest)
    position = 0
    for b in sorted(reads, key=lambda read: read.earliest):
        while position < len(by_latest) and by_latest[position].latest < b.earliest:
            a = by_latest[position]
            before.first_of.setdefault(a.status, a)
            if before.ended is None and a.status in terminal:
                before.ended = a
            if before.started is None and isinstance(a.run.get("startedAt"), str):
                before.started = a
            position += 1
        yield before, b


class _Found:
    """At most one finding per rule and run: the first contradiction is the evidence."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.findings: dict[tuple[str, str], Finding] = {}

    def add(self, rule: str, run_id: str, a: _Read, b: _Read, what: str) -> None:
        if (rule, run_id) in self.findings:
            return
        message = (
            f"run {run_id}: {self.say.op(a.op)} showed it {a.status} and was answered before {self.say.op(b.op)} "
            f"was sent by the same client, which {what} ({rule}: {RULES[rule]})"
        )
        self.findings[rule, run_id] = Finding(rule, message, (a.op, b.op), run_id)


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
    for name in _stamps():
        if not _kept(name, end, b):
            return f"{name} {b.run[name]!r} where it had been {end.run[name]!r}"
    return ""


@functools.cache
def _stamps() -> tuple[str, ...]:
    return tuple(sorted(run_instant_fields()))


def _kept(name: str, a: _Read, b: _Read) -> bool:
    """The timestamp `name` is the same instant in both reads, or missing from one (SCHEMA-002's finding)."""
    x, y = a.run.get(name, _MISSING), b.run.get(name, _MISSING)
    # Equal text is the same instant: most reads of a run repeat it, and parsing is what costs.
    return x is _MISSING or y is _MISSING or x == y or same_instant(x, y)
