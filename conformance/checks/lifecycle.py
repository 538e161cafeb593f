"""The run lifecycle (LIFE-001..006): runs driven through their states, every observation checked.

The session's LifecycleMonitor already watches every Run the suite sees. The checks here drive
runs on purpose (a quick run to `succeeded`, a failing one to `failed`, a long one through
`running` and a cancel to `cancelled`, then a no-op cancel of each finished run) and check the
histories they polled themselves, so a lifecycle bug fails a named check with the exchanges
that show it (through a RunWatcher, conformance/watcher.py).
"""

from __future__ import annotations

from conformance.check_helpers import LIFE_IDS, TERMINAL, show, start_fixture
from conformance.context import CheckContext
from conformance.registry import check
from conformance.watcher import RunWatcher


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
        on=run,
    )
    # A terminal run stays, and stays as it is: read it again through both getRun and listRuns. The
    # final reads read it once more at the end of the run (conformance/final_reads.py).
    again = ctx.get_run(run_id)
    ctx.expect(
        "LIFE-006",
        again.status_code == 200,
        f"run {run_id}, just seen {status}, read again at once got {show(again)}; a run startRun accepted stays "
        "readable (LIFE-006)",
        on=again,
    )
    data = again.json_exact() if again.status_code == 200 else None
    if isinstance(data, dict):
        watcher.note(data, again)
    watcher.listed(client_id)
    watcher.report()


@check("LIFE-005", "LIFE-006", *LIFE_IDS, needs=["fixture:quick"])
def quick_run_succeeds(ctx: CheckContext) -> None:
    """A run of the quick fixture reaches succeeded within the timeout, along allowed moves."""
    _finish(ctx, "quick", "succeeded")


@check("LIFE-005", "LIFE-006", *LIFE_IDS, needs=["fixture:failing"])
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

        ctx.poll(settled, lambda done: done)
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
