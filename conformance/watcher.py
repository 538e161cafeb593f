"""RunWatcher: one check's reads of its runs, each run's history judged against LIFE-001..004.

The session's LifecycleMonitor judges every Run the suite reads; a check that drives runs on
purpose (lifecycle, cancel, the model) also wants the findings about its own runs as its own,
with the exchanges that show them: a RunWatcher keeps a private monitor for that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from conformance.check_helpers import LIFE_IDS, TERMINAL, rule_of
from conformance.client import ApiResponse
from conformance.context import CheckContext
from conformance.monitor import LifecycleMonitor
from conformance.outcomes import Skipped

__all__ = ["RunWatcher"]


class RunWatcher:
    """Reads runs for one check and checks each run's history against LIFE-001..004.

    A private LifecycleMonitor sees only this check's observations, so its findings belong to
    this check; statuses from cancelRun's RunRef (no timestamps) are checked for their moves here.
    """

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.monitor = LifecycleMonitor()
        self.last_status: dict[str, str] = {}
        self.history: dict[str, list[str]] = {}
        self.ever_terminal: set[str] = set()  # runs some observation showed terminal
        self._extra: list[tuple[str, str, ApiResponse]] = []
        self._ref_evaluations: Counter[str] = Counter()

    # --- observing ------------------------------------------------------------------------------

    def note(self, run: Any, response: ApiResponse) -> None:
        """One Run as a response showed it (getRun's body or a listRuns item)."""
        self.monitor.observe(run, response.exchange, response)
        if isinstance(run, dict) and isinstance(run.get("runId"), str) and isinstance(run.get("status"), str):
            self.last_status[run["runId"]] = run["status"]
            self.history.setdefault(run["runId"], []).append(run["status"])
            if run["status"] in TERMINAL:
                self.ever_terminal.add(run["runId"])

    def get(self, run_id: str) -> dict[str, Any] | None:
        """getRun; the Run when the answer is a 200 with a JSON object, else None."""
        response = self.ctx.get_run(run_id)
        # Exact numbers: the checks compare these runs' inputs field by field (conformance.meaning).
        data = response.json_exact() if response.status_code == 200 else None
        if not isinstance(data, dict):
            return None
        self.note(data, response)
        return data

    def listed(self, client_id: str, limit: int = 200) -> dict[str, dict[str, Any]]:
        """The runs of one clientId as listRuns shows them (every page), by runId."""
        runs: dict[str, dict[str, Any]] = {}
        walk = self.ctx.walk(limit=limit, clientId=client_id, max_pages=50)
        for page in walk:
            data = page.json_exact() if page.status_code == 200 else None
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                break
            for item in data["items"]:
                if isinstance(item, dict) and isinstance(item.get("runId"), str):
                    self.note(item, page)
                    runs[item["runId"]] = item
        if walk.cut:
            # An endless walk is PAGE-004's finding, judged by the pagination checks; here it only
            # means the runs could not be read, so what depends on them is not judged.
            raise Skipped(
                f"listRuns?clientId={client_id} did not end after {walk.max_pages} pages, so the runs could not be "
                "read through the listing (the pagination checks judge the walk: PAGE-004)"
            )
        return runs

    def note_ref(self, run_id: str, status: Any, response: ApiResponse) -> None:
        """A status seen in a RunRef (cancelRun's answer): checked against the last one seen."""
        if not isinstance(status, str):
            return
        before = self.last_status.get(run_id)
        if before is not None:
            self._ref_evaluations.update(("LIFE-001", "LIFE-002"))
        if before is not None and before != status:
            if before in TERMINAL:
                self._extra.append(("LIFE-002", f"run {run_id}: terminal status {before} became {status}", response))
            elif not self.monitor.reachable(before, status):
                self._extra.append(
                    (
                        "LIFE-001",
                        f"run {run_id}: moved from {before} to {status}, which the lifecycle forbids",
                        response,
                    )
                )
        self.last_status[run_id] = status
        self.history.setdefault(run_id, []).append(status)

    def seen_going(self, run_id: str) -> bool:
        """Whether some answer showed the run non-terminal: the premise of a cancel of a live run."""
        return any(status not in TERMINAL for status in self.history.get(run_id, []))

    def wait_for(self, run_id: str, statuses: Iterable[str], timeout: float | None = None) -> dict[str, Any] | None:
        """Poll getRun (through this watcher) until the status is one of `statuses` or the deadline."""
        return self.ctx.wait_for_status(run_id, statuses, timeout, read=self.get)

    def wait_terminal(self, run_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        return self.wait_for(run_id, TERMINAL, timeout)

    # --- verdicts -------------------------------------------------------------------------------

    def problems(self) -> list[tuple[str, str]]:
        """Every lifecycle finding so far, (requirement ID, message), oldest first."""
        found = [(f.requirement_id, f.message) for f in self.monitor.findings]
        return found + [(rid, message) for rid, message, _response in self._extra]

    def count_evaluations(self, ids: Iterable[str]) -> None:
        """Every rule the watched observations were judged by, as evaluations of the check."""
        for rid in ids:
            count = self.monitor.evaluations.get(rid, 0) + self._ref_evaluations.get(rid, 0)
            if count:
                self.ctx.tally.evaluated(rid, count)

    def report(self, ids: Iterable[str] = LIFE_IDS) -> None:
        """Record what the watched histories showed of the named requirements: each rule judged counts
        as an evaluation, each distinct finding as a failure."""
        wanted = set(ids)
        self.count_evaluations(wanted)
        seen: set[tuple[str, str]] = set()
        for finding in self.monitor.findings:
            key = (finding.requirement_id, finding.message)
            if finding.requirement_id in wanted and key not in seen:
                seen.add(key)
                message = f"{finding.message}; {rule_of(finding.requirement_id)}"
                self.ctx.record_failure(finding.requirement_id, message, list(finding.exchanges))
        for rid, message, response in self._extra:
            if rid in wanted and (rid, message) not in seen:
                seen.add((rid, message))
                self.ctx.record_failure(rid, f"{message}; {rule_of(rid)}", [response.exchange])
