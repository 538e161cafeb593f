"""Runs read in every status the suite can reach still match the spec's schemas and media types.

Schemathesis validates what its own requests happen to return; a run status that fuzzing never
reaches (a terminal status spelled "canceled") would pass unseen. This check drives one run into
each reachable status and reads it; CheckContext.get_run and list_runs hold each body to the
Run and RunList schemas.
"""

from __future__ import annotations

import functools

from conformance.context import CheckContext
from conformance.registry import Skipped, check
from conformance.spec import run_statuses, terminal_statuses


@check("SCHEMA-002", "SCHEMA-003")
def runs_in_every_status_match_the_schema(ctx: CheckContext) -> None:
    """getRun, getRunDefinition and listRuns of runs that succeeded, failed, were cancelled, or are going."""
    client_id = ctx.fresh_client_id("shape")
    runs: list[str] = []
    for name in ("quick", "failing", "long"):
        if not ctx.fixtures.has(name):
            continue
        started = ctx.start_run(ctx.fixtures.workflow(name), client_id=client_id, inputs={"fixture": name})
        if started.run_id is None:
            raise ctx.refused(
                f"startRun of the '{name}' fixture",
                started.response,
                "give workflows this server accepts with --fixtures",
            )
        runs.append(started.run_id)
        if name == "long":
            ctx.get_run(started.run_id)  # while it is queued or running
            ctx.cancel_run(started.run_id)
            ctx.get_run(started.run_id)  # cancelling, or already cancelled
    if not runs:
        raise Skipped("no fixture workflow to start (give --fixtures with quick, failing or long)")
    going = set(run_statuses()) - terminal_statuses()
    for run_id in runs:
        # Not wait_terminal: a misspelled terminal status must end the wait too, not time it out.
        ctx.poll(functools.partial(_status, ctx, run_id), lambda status: status not in going)
    for run_id in runs:
        ctx.get_definition(run_id)
    ctx.list_runs(clientId=client_id)
    for status in ("succeeded", "failed", "cancelled"):
        ctx.list_runs(clientId=client_id, status=status)


def _status(ctx: CheckContext, run_id: str) -> object:
    response = ctx.get_run(run_id)
    data = response.json_or_none() if response.status_code == 200 else None
    return data.get("status") if isinstance(data, dict) else response.status_code
