"""The lifecycle monitor: every Run the suite reads, judged against the lifecycle (LIFE-001..004).

Fed by every getRun and listRuns a check makes, so a backwards move is caught wherever it shows,
not only in the checks that look for it; moves are judged only between answers the clock orders.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from conformance.client import ApiResponse
from conformance.meaning import parse_instant, same_instant
from conformance.results import Exchange
from conformance.spec import lifecycle

__all__ = ["Finding", "LifecycleMonitor"]


@dataclass
class Finding:
    requirement_id: str
    message: str
    exchanges: list[Exchange]


class LifecycleMonitor:
    """Checks every observation of every run against the lifecycle rules (LIFE-001..004).

    Fed by every getRun and listRuns the suite makes, so a backwards move is caught wherever it
    shows, not only in the checks that look for it.
    """

    def __init__(self) -> None:
        self.moves, self.terminal = lifecycle()
        self._last: dict[str, dict[str, Any]] = {}
        self._answered: dict[str, float] = {}  # runId -> when the answer that showed _last arrived
        self._lock = threading.Lock()  # checks side by side feed one monitor
        self.findings: list[Finding] = []
        self.observations = 0
        self.evaluations: Counter[str] = Counter()  # rules judged per requirement, failed or not

    def observe(self, run: Any, exchange: Exchange | None, response: ApiResponse | None = None) -> None:
        """One Run as an answer showed it; `response` gives the real-time order of the answers.

        Moves are judged only between answers the clock orders (the earlier one arrived before the
        later one was sent): checks side by side read the same runs, and two overlapping reads may
        be applied by the server in either order, so comparing them would cry wolf.
        """
        with self._lock:
            self._observe(run, exchange, response)

    def _observe(self, run: Any, exchange: Exchange | None, response: ApiResponse | None) -> None:
        if not isinstance(run, dict) or not isinstance(run.get("runId"), str):
            return  # not a Run: the schema checks say so
        self.observations += 1
        evidence = [exchange] if exchange else []
        run_id, status = run["runId"], run.get("status")
        invoked, completed = (response.invoked, response.completed) if response is not None else (None, None)
        answered = self._answered.get(run_id)
        previous = self._last.get(run_id) if invoked is None or answered is None or answered < invoked else None

        def finding(req: str, message: str) -> None:
            self.findings.append(Finding(req, f"run {run_id}: {message}", evidence))

        finished = run.get("finishedAt")
        self.evaluations.update(("LIFE-003", "LIFE-004"))
        if status in self.terminal and finished is None:
            finding("LIFE-003", f"status {status} is terminal but finishedAt is null")
        if status not in self.terminal and status is not None and finished is not None:
            finding("LIFE-003", f"status {status} is not terminal but finishedAt is {finished!r}")
        if status == "running" and run.get("startedAt") is None:
            finding("LIFE-004", "status is running but startedAt is null")
        stamps = [(k, run.get(k)) for k in ("createdAt", "startedAt", "finishedAt")]
        parsed = [(k, parse_instant(v)) for k, v in stamps if v is not None]
        for (k1, t1), (k2, t2) in itertools.pairwise(parsed):
            if t1 is not None and t2 is not None and t1 > t2:
                finding("LIFE-004", f"{k1} {run.get(k1)} is after {k2} {run.get(k2)}")
        if previous is not None:
            self.evaluations.update(("LIFE-001", "LIFE-002"))
            before = previous.get("status")
            if before != status:
                if before in self.terminal:
                    finding("LIFE-002", f"terminal status {before} changed to {status}")
                elif status not in self.moves.get(str(before), set()) and not self.reachable(before, status):
                    finding("LIFE-001", f"moved from {before} to {status}, which the lifecycle does not allow")
            elif before in self.terminal:
                for key in ("finishedAt", "startedAt", "cancelRequestedAt"):
                    # The same instant may come back in another RFC 3339 form: compare instants.
                    if not same_instant(previous.get(key), run.get(key)):
                        finding(
                            "LIFE-002",
                            f"{key} of a {before} run changed from {previous.get(key)!r} to {run.get(key)!r}",
                        )
            started = previous.get("startedAt")
            if started is not None and not same_instant(run.get("startedAt"), started):
                finding("LIFE-004", f"startedAt changed from {previous.get('startedAt')!r} to {run.get('startedAt')!r}")
        if completed is None or answered is None or completed >= answered:
            self._last[run_id] = run
            if completed is not None:
                self._answered[run_id] = completed

    def seen_terminal(self, run_id: str) -> bool:
        """The last observation of `run_id` had a terminal status (which never changes: LIFE-002)."""
        last = self._last.get(run_id)
        return last is not None and last.get("status") in self.terminal

    def reachable(self, start: Any, goal: Any) -> bool:
        # A poller may miss states in between; a move counts if some path of allowed moves leads there.
        seen, frontier = set(), [start]
        while frontier:
            state = frontier.pop()
            for nxt in self.moves.get(str(state), set()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        return False
