"""The history checker per walk: no run twice, every run that matched throughout (CONC-010, CONC-011)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from conformance.history import History, Observation, Operation
from conformance.history_findings import Finding, Say, finding

__all__ = ["Demands", "complete", "judged_pages", "returned_runs", "walk_findings"]


def judged_pages(ops: Sequence[Operation]) -> list[Operation] | None:
    """The walk's answered pages in page order, or None where nothing can be judged: no page came back,
    or one page was answered twice (which of the two the walk followed is unknown)."""
    pages: dict[int, Operation] = {}
    for op in ops:
        if op.status == 200 and isinstance(op.body, dict) and isinstance(op.body.get("items"), list):
            if op.page is None or op.page in pages:
                return None
            pages[op.page] = op
    return [pages[number] for number in sorted(pages)] or None


def returned_runs(ordered: Sequence[Operation]) -> list[tuple[str, int]]:
    """(runId, the page's op index) of every run the pages returned, repeats included, in walk order."""
    found: list[tuple[str, int]] = []
    for page in ordered:
        for item in page.body["items"]:
            run_id = item.get("runId") if isinstance(item, dict) else None
            if isinstance(run_id, str):
                found.append((run_id, page.index))
    return found


def walk_findings(history: History, demands: Demands, say: Say) -> list[Finding]:
    findings: list[Finding] = []
    for walk, ops in history.walks.items():
        ordered = judged_pages(ops)
        if ordered is None:
            continue
        returned: dict[str, int] = {}
        duplicate: tuple[int, int, str] | None = None
        for run_id, index in returned_runs(ordered):
            if run_id in returned and duplicate is None:
                duplicate = (returned[run_id], index, run_id)
            returned.setdefault(run_id, index)
        if duplicate is not None:
            first, again, run_id = duplicate
            what = (
                f"{say.op(again)} returned run {run_id} twice"
                if first == again
                else f"{say.op(first)} and then {say.op(again)} both returned run {run_id}"
            )
            findings.append(
                finding(
                    "CONC-010",
                    f"walk {walk}: {what}; expected each run at most once in a walk, whatever is created or changed "
                    "during it",
                    (first, again),
                    run_id,
                )
            )
        if complete(ops, ordered):
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
                    finding(
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


def complete(ops: Sequence[Operation], ordered: Sequence[Operation]) -> bool:
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


class Demands:
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

    def demanded(self, ordered: Sequence[Operation]) -> int:
        """How many runs the walk had to return: the runs it could have missed (none: nothing to judge)."""
        query = ordered[0].query
        status = query.get("status")
        if status is not None and status not in self.terminal:
            return 0  # a run may leave a non-terminal status mid-walk: nothing is certain
        times, _, _ = self._index(query.get("clientId"), status)
        return bisect.bisect_left(times, min(op.invoked for op in ordered))

    def missed(self, ordered: Sequence[Operation], returned: dict[str, int]) -> tuple[str, int, str] | None:
        """(a run the walk had to return and did not, the op that proves it had to, what that op showed), or None."""
        query = ordered[0].query
        status = query.get("status")
        demanded = self.demanded(ordered)
        if not demanded:
            return None
        began = min(op.invoked for op in ordered)
        _, runs, qualified_at = self._index(query.get("clientId"), status)
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
