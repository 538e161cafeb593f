"""The run lifecycle (LIFE-001..005): runs driven through their states, every observation checked.

The session's LifecycleMonitor already watches every Run the suite sees. The checks here drive
runs on purpose (a quick run to `succeeded`, a failing one to `failed`, a long one through
`running` and a cancel to `cancelled`, then a no-op cancel of each finished run) and check the
histories they polled themselves, so a lifecycle bug fails a named check with the exchanges
that show it. `RunWatcher` is shared with the cancel and model checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from conformance.catalog import requirement
from conformance.client import ApiResponse
from conformance.context import CheckContext
from conformance.monitor import LifecycleMonitor
from conformance.registry import check

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
LIFE_IDS = ("LIFE-001", "LIFE-002", "LIFE-003", "LIFE-004")


def rule_of(requirement_id: str) -> str:
    """The catalog's statement of a requirement, for a failure message: what the contract says."""
    return f"the contract: {requirement(requirement_id).statement} ({requirement_id})"


def show(response: ApiResponse, limit: int = 300) -> str:
    """One line for a failure message: what was sent and what came back."""
    exchange = response.exchange
    path = exchange.url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else path
    body = (exchange.response_body or "").replace("\n", " ")
    if len(body) > limit:
        body = body[:limit] + "…"
    return f"{exchange.method} {path} → {response.status_code} {body}".rstrip()


def start_fixture(ctx: CheckContext, fixture: str, client_id: str, **kwargs: Any) -> str:
    """Start a run of a fixture workflow; when it is refused, the check cannot go on.

    A 4xx says the fixtures do not suit this server (skipped, with its answer); a 5xx is a failure
    of ERR-001, never a skip.
    """
    started = ctx.start_run(ctx.fixtures.workflow(fixture), client_id=client_id, **kwargs)
    if started.run_id is None:
        raise ctx.refused(
            f"startRun of the '{fixture}' fixture ({ctx.fixtures.source})",
            started.response,
            "give workflows this server accepts with --fixtures",
        )
    return started.run_id


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
        for page in self.ctx.walk(limit=limit, clientId=client_id, max_pages=50):
            data = page.json_exact() if page.status_code == 200 else None
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                break
            for item in data["items"]:
                if isinstance(item, dict) and isinstance(item.get("runId"), str):
                    self.note(item, page)
                    runs[item["runId"]] = item
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

    def wait_for(self, run_id: str, statuses: Iterable[str], timeout: float | None = None) -> dict[str, Any] | None:
        """Poll getRun until the status is one of `statuses` or the deadline; the last Run seen."""
        wanted = frozenset(statuses)
        return self.ctx.poll(
            lambda: self.get(run_id),
            lambda run: run is not None and run.get("status") in wanted,
            timeout=timeout,
            what=f"run {run_id} to reach {sorted(wanted)}",
        )

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


def _finish(ctx: CheckContext, fixture: str, expected: str) -> None:
    watcher = RunWatcher(ctx)
    client_id = ctx.fresh_client_id(f"life-{fixture}")
    run_id = start_fixture(ctx, fixture, client_id)
    run = watcher.wait_terminal(run_id)
    status = run.get("status") if run else None
    if status not in TERMINAL:
        raise ctx.fail(
            "LIFE-005",
            f"a run of the '{fixture}' fixture ({run_id}) was still {status!r} after {ctx.session.timeout:g} s "
            f"(--timeout); the contract requires it to reach {expected} within the suite's timeout (LIFE-005)",
        )
    ctx.expect(
        "LIFE-005",
        status == expected,
        f"a run of the '{fixture}' fixture ({run_id}) ended {status}, not {expected}: "
        f"{'a workflow whose steps all succeed' if expected == 'succeeded' else 'a workflow with a failing step'} "
        f"ends {expected} (LIFE-005)",
    )
    # A terminal run stays as it is: read it again through both getRun and listRuns.
    watcher.get(run_id)
    watcher.listed(client_id)
    watcher.report()


@check("LIFE-005", *LIFE_IDS, needs=["fixture:quick"])
def quick_run_succeeds(ctx: CheckContext) -> None:
    """A run of the quick fixture reaches succeeded within the timeout, along allowed moves."""
    _finish(ctx, "quick", "succeeded")


@check("LIFE-005", *LIFE_IDS, needs=["fixture:failing"])
def failing_run_fails(ctx: CheckContext) -> None:
    """A run of the failing fixture reaches failed within the timeout, along allowed moves."""
    _finish(ctx, "failing", "failed")


@check(*LIFE_IDS, needs=["fixture:quick"])
def lifecycle_histories(ctx: CheckContext) -> None:
    """Runs driven through every state the suite can reach, seen through getRun and listRuns.

    Quick, failing and long runs (those the fixtures have) under one fresh clientId; the long
    one is cancelled once it runs; each is polled through getRun and listRuns until terminal,
    then cancelled again (a no-op on a terminal run) and read twice more. Every history must
    follow the lifecycle graph, keep terminal statuses and their timestamps, set finishedAt
    exactly when terminal, and keep createdAt ≤ startedAt ≤ finishedAt with startedAt fixed.
    """
    watcher = RunWatcher(ctx)
    client_id = ctx.fresh_client_id("life")
    runs = [start_fixture(ctx, "quick", client_id)]
    if ctx.fixtures.has("failing"):
        runs.append(start_fixture(ctx, "failing", client_id))
    long_id = start_fixture(ctx, "long", client_id) if ctx.fixtures.has("long") else None
    try:
        if long_id is not None:
            runs.append(long_id)
            # Seen running (through both reads) before the cancel, so the monitor sees that move.
            watcher.wait_for(long_id, {"running"} | TERMINAL)
            watcher.listed(client_id)
            cancel = ctx.cancel_run(long_id)
            if cancel.status_code == 202:
                body = cancel.json_or_none()
                watcher.note_ref(long_id, body.get("status") if isinstance(body, dict) else None, cancel)

        def settled() -> bool:
            # Terminal once seen terminal: a server that shows it otherwise later fails LIFE-002, not this wait.
            listed = watcher.listed(client_id)
            for run_id in runs:
                if run_id not in watcher.ever_terminal:
                    watcher.get(run_id)
            return watcher.ever_terminal.issuperset(runs) and set(runs) <= set(listed)

        ctx.poll(settled, lambda done: done, what="the runs to finish")
        for run_id in runs:
            if run_id not in watcher.ever_terminal:
                continue  # the LIFE-005 and CANCEL-003 checks say which run did not finish
            cancel = ctx.cancel_run(run_id)
            if cancel.status_code == 202:
                body = cancel.json_or_none()
                watcher.note_ref(run_id, body.get("status") if isinstance(body, dict) else None, cancel)
            watcher.get(run_id)
        watcher.listed(client_id)
        for run_id in runs:
            watcher.get(run_id)
        watcher.report()
    finally:
        if long_id is not None and long_id not in watcher.ever_terminal:
            ctx.cancel_run(long_id)
