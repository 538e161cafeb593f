"""Checks a concurrent history against the contract, with no false alarm (CONC-001..012).

Every rule uses one order only: real-time precedence (`conformance.history.precedes`). What
overlapping operations did is never ordered, an operation with no answer may or may not have
taken effect, and a response that may show an older state (an idempotent replay, a page of a
walk) is given the window a correct server could have taken it from (see `Observation`). So
latency, retries and scheduling cannot make a finding; only a contradiction can.

The history is split into independent parts, each checked alone (as Porcupine does): per
(credential, Idempotency-Key), per run, per walk. Each part is sorted and swept once, so the
whole check costs O(n log n) in the operations and the items they returned.

A finding names the two or three operations that prove it, never the whole history, and at most
one finding is made per rule and part (key, run or walk): the first contradiction is the evidence,
and a broken server would otherwise bury it under thousands of copies.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from conformance.history import PATH_KINDS, History, Instant, Observation, Operation, instant, precedes
from conformance.spec import PROBLEM_BASE, load_spec

__all__ = ["RULES", "Finding", "check_history", "evaluations", "lifecycle_graph"]

KEY_REUSED = PROBLEM_BASE + "idempotency-key-reused"
KEY_IN_FLIGHT = PROBLEM_BASE + "idempotency-key-in-flight"

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
    schema = load_spec()["components"]["schemas"]["RunStatus"]
    moves: dict[str, list[str]] = schema["x-transitions"]
    reach: dict[str, frozenset[str]] = {}
    for start in moves:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in moves.get(frontier.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        reach[start] = frozenset(seen)
    return reach, frozenset(schema["x-terminal"])


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
    say = _Say(history)
    findings: list[Finding] = []
    findings += _idempotency(history, say)
    by_run = history.runs()
    reach, terminal = lifecycle_graph()
    for run_id, observations in by_run.items():
        findings += _lifecycle(run_id, observations, reach, terminal, say)
        findings += _timestamps(run_id, observations, terminal, say)
    shown = _shown_at(history, by_run)
    findings += _visibility(history, shown, say)
    findings += _walks(history, _Demands(history, by_run, shown, terminal), say)
    findings += _definitions(history, say)
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
    shown = _shown_at(history, history.runs())
    counts["CONC-009"] = sum(
        1
        for op in history.operations
        if op.kind in PATH_KINDS and op.run_id in shown and shown[op.run_id][0] < op.invoked
    )
    for pages in history.walks.values():
        counts["CONC-010"] += 1
        ordered = sorted((op for op in pages if op.page is not None), key=lambda op: op.page or 0)
        if ordered and len(ordered) == len(pages) and _complete(pages, ordered):
            counts["CONC-011"] += 1
    definitions = Counter(op.run_id for op in history.operations if op.kind == "getRunDefinition" and op.completed)
    counts["CONC-012"] = sum(n for n in definitions.values() if n > 1)
    return +counts  # only what was evaluated at least once


# --- wording ----------------------------------------------------------------------------------------


class _Say:
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


def _finding(rule: str, message: str, operations: Iterable[int], run_id: str | None = None) -> Finding:
    ops = tuple(dict.fromkeys(operations))  # in the order given, each once
    return Finding(rule, f"{message} ({rule}: {RULES[rule]})", ops, run_id)


# --- idempotency: per (credential, key) -------------------------------------------------------------


def _problem_type(op: Operation) -> Any:
    return op.body.get("type") if isinstance(op.body, dict) else None


def _idempotency(history: History, say: _Say) -> list[Finding]:
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


def _one_run_per_key(ops: Sequence[Operation], where: str, say: _Say) -> list[Finding]:
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
            _finding(
                "CONC-001",
                f"{where}: {say.op(a.index)} got run {run_a} and {say.op(b.index)} got run {run_b}; expected every 202 "
                "for one key to carry the runId of the one run the key created",
                (a.index, b.index),
            )
        )
    if len(first_by_body) > 1:
        a, b = list(first_by_body.values())[:2]
        findings.append(
            _finding(
                "CONC-002",
                f"{where}: {say.op(a.index)} and {say.op(b.index)} sent different bodies and both got 202; expected "
                f"409 with type {KEY_REUSED} for whichever came second",
                (a.index, b.index),
            )
        )
    return findings


def _conflicts(ops: Sequence[Operation], where: str, say: _Say) -> list[Finding]:
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
                _finding(
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
                _finding(
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


# --- per run: status, cancelRequestedAt, finishedAt -------------------------------------------------


def _lifecycle(
    run_id: str,
    observations: Sequence[Observation],
    reach: dict[str, frozenset[str]],
    terminal: frozenset[str],
    say: _Say,
) -> list[Finding]:
    known = [obs for obs in observations if obs.status in reach]  # an unknown status is the schema checks' finding
    findings: list[Finding] = []
    first_terminal: dict[str, Observation] = {}
    for obs in known:
        if obs.status in terminal:
            first_terminal.setdefault(obs.status, obs)
    if len(first_terminal) > 1:
        ordered = _ordered_terminal_pair(known, terminal)
        if ordered is not None:
            # Two reads in real-time order show the change itself, which a reader grasps at once.
            a, b = ordered
            said = f"{say.before(a, b)}; expected {a.status} for ever: a run ends once, in one terminal status"
        else:
            a, b = list(first_terminal.values())[:2]
            said = (
                f"{say.op(a.op)} showed it {a.status} and {say.op(b.op)} showed it {b.status}; "
                "expected one terminal status for ever, whatever the order of the reads"
            )
        findings.append(_finding("CONC-006", f"run {run_id}: {said}", (a.op, b.op), run_id))
    # Sweep: B against the latest read of each status that completed before B's window opened.
    by_latest = sorted(known, key=lambda obs: obs.latest)
    last: dict[str, Observation] = {}
    position = 0
    moved = terminal_changed = False
    for b in sorted(known, key=lambda obs: obs.earliest):
        while position < len(by_latest) and by_latest[position].latest < b.earliest:
            last[by_latest[position].status] = by_latest[position]
            position += 1
        for status, a in last.items():
            if b.status in reach[status]:
                continue
            if status in terminal and not terminal_changed and len(first_terminal) < 2:
                terminal_changed = True
                findings.append(
                    _finding(
                        "CONC-006",
                        f"run {run_id}: {say.before(a, b)}; expected {status} for ever, whatever else happens",
                        (a.op, b.op),
                        run_id,
                    )
                )
            elif status not in terminal and not moved:
                moved = True
                onward = ", ".join(sorted(reach[status] - {status}))
                findings.append(
                    _finding(
                        "CONC-005",
                        f"run {run_id}: {say.before(a, b)}; expected {status} or a status reachable from it "
                        f"({onward}): a status never moves backwards",
                        (a.op, b.op),
                        run_id,
                    )
                )
        if moved and (terminal_changed or len(first_terminal) > 1):
            break
    return findings


def _ordered_terminal_pair(
    observations: Sequence[Observation], terminal: frozenset[str]
) -> tuple[Observation, Observation] | None:
    """The first read (by when its window opened) of a terminal status that another terminal status preceded."""
    first_done: dict[str, Observation] = {}  # per terminal status, the read of it answered first
    for obs in observations:
        if obs.status in terminal and (obs.status not in first_done or obs.latest < first_done[obs.status].latest):
            first_done[obs.status] = obs
    for b in sorted((obs for obs in observations if obs.status in terminal), key=lambda obs: obs.earliest):
        for status, a in first_done.items():
            if status != b.status and a.latest < b.earliest:
                return a, b
    return None


def _timestamps(run_id: str, observations: Sequence[Observation], terminal: frozenset[str], say: _Say) -> list[Finding]:
    findings: list[Finding] = []
    shown = [obs for obs in observations if obs.cancel_shown]
    set_ = [(obs, instant(obs.cancel_requested_at)) for obs in shown if obs.cancel_requested_at is not None]
    pair = _two_values([(obs, value) for obs, value in set_ if value is not None])
    if pair:
        a, b = pair
        findings.append(
            _finding(
                "CONC-007",
                f"run {run_id}: {say.op(a.op)} showed cancelRequestedAt {a.cancel_requested_at} and {say.op(b.op)} "
                f"showed {b.cancel_requested_at}; expected the first value for ever: repeated cancels keep it",
                (a.op, b.op),
                run_id,
            )
        )
    first_set = min((obs for obs, _ in set_), key=lambda obs: obs.latest, default=None)
    if first_set is not None:
        cleared = [obs for obs in shown if obs.cancel_requested_at is None and first_set.latest < obs.earliest]
        if cleared:
            b = min(cleared, key=lambda obs: obs.earliest)
            findings.append(
                _finding(
                    "CONC-007",
                    f"run {run_id}: {say.op(first_set.op)} showed cancelRequestedAt {first_set.cancel_requested_at} "
                    f"and was answered before {say.op(b.op)} was sent, which showed it null; expected it to stay set",
                    (first_set.op, b.op),
                    run_id,
                )
            )
    ended = [obs for obs in observations if obs.status in terminal and obs.finished_at is not None]
    finished = [(obs, instant(obs.finished_at)) for obs in ended if obs.finished_at is not None]
    pair = _two_values([(obs, value) for obs, value in finished if value is not None])
    if pair:
        a, b = pair
        findings.append(
            _finding(
                "CONC-008",
                f"run {run_id}: {say.op(a.op)} showed it {a.status} with finishedAt {a.finished_at} and "
                f"{say.op(b.op)} showed it {b.status} with finishedAt {b.finished_at}; expected one finishedAt once "
                "the run is terminal",
                (a.op, b.op),
                run_id,
            )
        )
    return findings


def _two_values(valued: Iterable[tuple[Observation, Instant]]) -> tuple[Observation, Observation] | None:
    """The first observations of two different instants, or None when all show one."""
    first: Observation | None = None
    value: Instant | None = None
    for obs, at in valued:
        if first is None:
            first, value = obs, at
        elif at != value:
            return first, obs
    return None


# --- visibility ---------------------------------------------------------------------------------------


def _shown_at(history: History, by_run: dict[str, tuple[Observation, ...]]) -> dict[str, tuple[float, int]]:
    """For each run, when a response first proved it exists: (completion time, op index)."""
    shown: dict[str, tuple[float, int]] = {}

    def note(run_id: str, at: float, index: int) -> None:
        if run_id not in shown or at < shown[run_id][0]:
            shown[run_id] = (at, index)

    for run_id, observations in by_run.items():
        for obs in observations:
            note(run_id, obs.latest, obs.op)
    for op in history.operations:
        ok = (op.kind == "getRunDefinition" and op.status in (200, 304)) or (
            op.kind in ("getRun", "cancelRun") and op.status in (200, 202)
        )
        if ok and op.run_id is not None and op.completed is not None:
            note(op.run_id, op.completed, op.index)
    return shown


def _visibility(history: History, shown: dict[str, tuple[float, int]], say: _Say) -> list[Finding]:
    reported: set[str] = set()
    findings: list[Finding] = []
    for op in history.operations:
        if op.status != 404 or op.run_id is None or op.run_id in reported:
            continue
        if op.kind not in PATH_KINDS:
            continue
        at = shown.get(op.run_id)
        if at is None or not at[0] < op.invoked:
            continue
        reported.add(op.run_id)
        findings.append(
            _finding(
                "CONC-009",
                f"run {op.run_id}: {say.op(at[1])} showed the run and was answered before {say.op(op.index)} was sent, "
                "which got 404; expected the run, to any client: a run exists from its startRun's 202 on",
                (at[1], op.index),
                op.run_id,
            )
        )
    return findings


# --- walks ------------------------------------------------------------------------------------------------


def _walks(history: History, demands: _Demands, say: _Say) -> list[Finding]:
    findings: list[Finding] = []
    for walk, ops in history.walks.items():
        pages: dict[int, Operation] = {}
        ambiguous = False
        for op in ops:
            if op.status == 200 and isinstance(op.body, dict) and isinstance(op.body.get("items"), list):
                if op.page is None or op.page in pages:
                    ambiguous = True  # two answers for one page: which one the walk followed is unknown
                    break
                pages[op.page] = op
        if ambiguous or not pages:
            continue
        ordered = [pages[number] for number in sorted(pages)]
        returned: dict[str, int] = {}
        duplicate: tuple[int, int, str] | None = None
        for page in ordered:
            for item in page.body["items"]:
                run_id = item.get("runId") if isinstance(item, dict) else None
                if not isinstance(run_id, str):
                    continue
                if run_id in returned and duplicate is None:
                    duplicate = (returned[run_id], page.index, run_id)
                returned.setdefault(run_id, page.index)
        if duplicate is not None:
            first, again, run_id = duplicate
            what = (
                f"{say.op(again)} returned run {run_id} twice"
                if first == again
                else f"{say.op(first)} and then {say.op(again)} both returned run {run_id}"
            )
            findings.append(
                _finding(
                    "CONC-010",
                    f"walk {walk}: {what}; expected each run at most once in a walk, whatever is created or changed "
                    "during it",
                    (first, again),
                    run_id,
                )
            )
        if _complete(ops, ordered):
            missed = demands.missed(ordered, returned)
            if missed is not None:
                run_id, proof, why = missed
                first_page, last_page = ordered[0], ordered[-1]
                spanned = (
                    f"one page, {say.op(first_page.index)}"
                    if first_page is last_page
                    else f"{len(ordered)} pages, from {say.op(first_page.index)} to {say.op(last_page.index)}"
                )
                findings.append(
                    _finding(
                        "CONC-011",
                        f"walk {walk} ({_filters(first_page)}, {spanned}, which ended it with nextCursor null) never "
                        f"returned run {run_id}, though {say.op(proof)} {why} before the walk began; expected every "
                        "run that matched the walk's filters throughout it",
                        (proof, first_page.index, last_page.index),
                        run_id,
                    )
                )
    return findings


def _filters(op: Operation) -> str:
    shown = [f"{name}={op.query[name]}" for name in ("clientId", "status") if name in op.query]
    return "listRuns?" + "&".join(shown) if shown else "no filters"


def _complete(ops: Sequence[Operation], ordered: Sequence[Operation]) -> bool:
    """Every request of the walk got 200, pages run on from a first page without a cursor, and the last ended it."""
    if any(op.status != 200 for op in ops) or len(ops) != len(ordered):
        return False
    numbers = [op.page for op in ordered]
    first = numbers[0]
    if first is None or numbers != list(range(first, first + len(numbers))) or "cursor" in ordered[0].query:
        return False
    last = ordered[-1].body
    return "nextCursor" in last and last["nextCursor"] is None


# Runs that qualify under one filter: their times sorted, (runId, op) in that order, and each run's time.
_Qualified = tuple[list[float], list[tuple[str, int]], dict[str, float]]


class _Demands:
    """Which runs a walk must return: those that certainly matched its filters from its start to its end.

    A run qualifies when a response completed before the walk began showed it (so it existed), its
    clientId is the walk's clientId filter (if any), and, under a status filter, such a response
    showed it in that status and the status is terminal (so it cannot have left the filter).
    Nothing else is demanded. Per filter, the runs are kept sorted by the time that qualifies them,
    so a walk is judged by counting, in O(log n) plus the runs it returned.
    """

    def __init__(
        self,
        history: History,
        by_run: dict[str, tuple[Observation, ...]],
        shown: dict[str, tuple[float, int]],
        terminal: frozenset[str],
    ) -> None:
        self.history = history
        self.terminal = terminal
        self.shown = shown
        self.runs_of: dict[str | None, list[str]] = {None: list(by_run)}
        # When a response first showed each run in each terminal status: (completion time, op index).
        self.terminal_at: dict[str, dict[str, tuple[float, int]]] = {}
        for run_id, observations in by_run.items():
            # The clientId a startRun sent is the fact; a Run body's is the fallback.
            from_start = [o.client_id for o in observations if o.client_id and history[o.op].kind == "startRun"]
            from_bodies = [o.client_id for o in observations if o.client_id]
            known = from_start or from_bodies
            if known and known[0] is not None:
                self.runs_of.setdefault(known[0], []).append(run_id)
            seen: dict[str, tuple[float, int]] = {}
            for obs in observations:
                if obs.status in terminal and (obs.status not in seen or obs.latest < seen[obs.status][0]):
                    seen[obs.status] = (obs.latest, obs.op)
            if seen:
                self.terminal_at[run_id] = seen
        self._cache: dict[tuple[str | None, str | None], _Qualified] = {}

    def _index(self, client_id: str | None, status: str | None) -> _Qualified:
        key = (client_id, status)
        if key not in self._cache:
            qualified: list[tuple[float, str, int]] = []
            for run_id in self.runs_of.get(client_id, []):
                at = self.shown.get(run_id) if status is None else self.terminal_at.get(run_id, {}).get(status)
                if at is not None:
                    qualified.append((at[0], run_id, at[1]))
            qualified.sort()
            self._cache[key] = (
                [at for at, _, _ in qualified],
                [(run_id, op) for _, run_id, op in qualified],
                {run_id: at for at, run_id, _ in qualified},
            )
        return self._cache[key]

    def missed(self, ordered: Sequence[Operation], returned: dict[str, int]) -> tuple[str, int, str] | None:
        """(a run the walk had to return and did not, the op that proves it had to, what that op showed), or None."""
        query = ordered[0].query
        status = query.get("status")
        if status is not None and status not in self.terminal:
            return None  # a run may leave a non-terminal status mid-walk: nothing is certain
        began = min(op.invoked for op in ordered)
        times, runs, qualified_at = self._index(query.get("clientId"), status)
        demanded = bisect.bisect_left(times, began)
        got = sum(1 for run_id in returned if qualified_at.get(run_id, math.inf) < began)
        if got == demanded:
            return None
        for run_id, op in runs[:demanded]:
            if run_id not in returned:
                if status is not None:
                    return run_id, op, f"had shown it {status}, a terminal status, which it keeps,"
                started = self.history[op].kind == "startRun"
                return run_id, op, "had answered 202 for it" if started else "had shown it"
        return None


# --- definitions ----------------------------------------------------------------------------------------


def _definitions(history: History, say: _Say) -> list[Finding]:
    etags: dict[str, Operation] = {}
    bodies: dict[str, tuple[Operation, Any]] = {}
    done: set[str] = set()
    findings: list[Finding] = []
    owners = _EtagOwners(history, say)
    for op in history.operations:
        if op.kind != "getRunDefinition" or op.run_id is None or op.status not in (200, 304) or op.run_id in done:
            continue
        run_id = op.run_id
        if op.etag is not None:
            first = etags.setdefault(run_id, op)
            if first.etag is not None and first.etag.strip() != op.etag.strip():
                done.add(run_id)
                findings.append(
                    _finding(
                        "CONC-012",
                        f"run {run_id}: {say.op(first.index)} carried ETag {first.etag} and {say.op(op.index)} "
                        f"carried {op.etag}{owners.explain(run_id, (first, op))}; expected one ETag on every answer "
                        "for a run's definition",
                        (first.index, op.index),
                        run_id,
                    )
                )
                continue
        if op.status == 200 and op.body is not None:
            form = _json_form(op.body)
            if run_id not in bodies:
                bodies[run_id] = (op, form)
            elif bodies[run_id][1] != form:
                done.add(run_id)
                findings.append(
                    _finding(
                        "CONC-012",
                        f"run {run_id}: {say.op(bodies[run_id][0].index)} and {say.op(op.index)} returned workflows "
                        "that are not equal as JSON; expected the workflow as submitted, on every request",
                        (bodies[run_id][0].index, op.index),
                        run_id,
                    )
                )
    return findings


class _EtagOwners:
    """Whose W/"<definitionHash>" an ETag is, from the Runs the history showed: a wrong ETag that is another
    run's, fetched at the same time, tells a reader the answers were mixed up between requests."""

    def __init__(self, history: History, say: _Say) -> None:
        self.history = history
        self.say = say
        self._hashes: dict[str, tuple[str, int]] | None = None  # runId -> (definitionHash, op that showed it)
        self._fetches: list[Operation] = []  # answered getRunDefinition, by invocation
        self._longest = 0.0

    def _load(self) -> dict[str, tuple[str, int]]:
        if self._hashes is None:  # built on the first finding only: a correct server never pays for it
            self._hashes = {}
            for op in self.history.operations:
                if op.status != 200 or not isinstance(op.body, dict):
                    continue
                if op.kind == "getRun":
                    items: list[Any] = [op.body]
                elif op.kind == "listRuns" and isinstance(op.body.get("items"), list):
                    items = op.body["items"]
                else:
                    continue
                for item in items:
                    run_id = item.get("runId") if isinstance(item, dict) else None
                    digest = item.get("definitionHash") if isinstance(item, dict) else None
                    if isinstance(run_id, str) and isinstance(digest, str):
                        self._hashes.setdefault(run_id, (digest, op.index))
            self._fetches = sorted(
                (op for op in self.history.operations if op.kind == "getRunDefinition" and op.completed is not None),
                key=lambda op: op.invoked,
            )
            self._longest = max(((op.completed or op.invoked) - op.invoked for op in self._fetches), default=0.0)
        return self._hashes

    def explain(self, run_id: str, ops: Sequence[Operation]) -> str:
        hashes = self._load()
        own = hashes.get(run_id)
        if own is None:
            return ""
        said: list[str] = []
        for op in ops:
            tag = _opaque_tag(op.etag or "")
            if tag == own[0]:
                said.append(f"op #{op.index}'s is the run's own definitionHash, as op #{own[1]} showed")
                continue
            others = {rid for rid, (digest, _) in hashes.items() if digest == tag and rid != run_id}
            if not others:
                continue
            during = self._fetching(others, op)
            whose = (
                f"run {during.run_id}'s, whose definition {self.say.op(during.index)} was fetching at the same time"
                if during is not None
                else f"run {min(others)}'s"
            )
            said.append(f"op #{op.index}'s is not this run's definitionHash but {whose}")
        return f" ({'; '.join(said)})" if said else ""

    def _fetching(self, runs: set[str], op: Operation) -> Operation | None:
        """A getRunDefinition of one of `runs` that overlapped `op`."""
        assert op.completed is not None
        start = bisect.bisect_left(self._fetches, op.invoked - self._longest, key=lambda x: x.invoked)
        stop = bisect.bisect_right(self._fetches, op.completed, key=lambda x: x.invoked)
        for other in self._fetches[start:stop]:
            if other.run_id in runs and other.completed is not None and other.completed >= op.invoked:
                return other
        return None


def _opaque_tag(etag: str) -> str:
    """The entity tag without W/ and quotes: what W/"<definitionHash>" puts inside."""
    tag = etag.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    return tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag


def _json_form(value: Any) -> Any:
    """A hashable form equal exactly for equal JSON: numbers as exact decimals, true never equal to 1."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | Decimal):
        return ("number", Decimal(value))
    if isinstance(value, float):
        return ("number", Decimal(repr(value)))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_json_form(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _json_form(item)) for key, item in value.items()))
    return ("other", repr(value))
