"""cancelRun at every state the suite can reach (CANCEL-001..005).

- an unknown run (well-formed and malformed ids): 404, and nothing created;
- a run cancelled at once after its start (queued, if the server is slow enough to show it),
  and a long run cancelled once it runs: 202 with `cancelling` or `cancelled`,
  `cancelRequestedAt` set, then `cancelled` within the session timeout;
- a quick run cancelled while it may be finishing: whatever the race, an answer the contract allows;
- finished runs (succeeded, failed, already cancelled): 202 with the unchanged status, nothing changed;
- repeated cancels: `cancelRequestedAt` keeps its first value.

Every status seen while polling goes through a RunWatcher, so a move the lifecycle forbids fails
LIFE-001/LIFE-002 here too. Long runs this module starts are cancelled before a check returns.
"""

from __future__ import annotations

from typing import Any

from conformance.check_helpers import CANCEL_ANSWERS, TERMINAL, show, start_fixture
from conformance.client import ApiResponse
from conformance.context import CheckContext
from conformance.meaning import changed_run_fields, same_instant
from conformance.registry import Skipped, check
from conformance.spec import run_fields
from conformance.watcher import RunWatcher

# The fields of a Run the contract defines: a cancel of a terminal run changes none of them.
RUN_FIELDS = run_fields()


def _ref(response: ApiResponse) -> dict[str, Any]:
    body = response.json_or_none()
    return body if isinstance(body, dict) else {}


def _cancel(ctx: CheckContext, watcher: RunWatcher, run_id: str, rid: str, what: str) -> ApiResponse:
    """cancelRun, expecting 202 with a RunRef of this run, under `rid`: the requirement that demands
    this 202 (CANCEL-002 of a non-terminal run, CANCEL-004 of a terminal one, CANCEL-005 of a repeat)."""
    response = ctx.cancel_run(run_id)
    ref = _ref(response)
    if response.status_code == 202:
        watcher.note_ref(run_id, ref.get("status"), response)
    ctx.expect(
        rid,
        response.status_code == 202 and ref.get("runId") == run_id,
        f"cancelRun of {what} {run_id} answered {show(response)}; the contract answers every cancel of an "
        f"existing run with 202 and a RunRef of that run ({rid})",
        on=response,
    )
    return response


def _start_seen(ctx: CheckContext, watcher: RunWatcher, fixture: str, label: str) -> str:
    """Start a run of a fixture; its RunRef's status is the first the suite sees of it (the watcher keeps it)."""
    started = ctx.start_run(ctx.fixtures.workflow(fixture), client_id=ctx.fresh_client_id(label))
    if started.run_id is None:
        raise ctx.refused(
            f"startRun of the '{fixture}' fixture ({ctx.fixtures.source})",
            started.response,
            "give workflows this server accepts with --fixtures",
        )
    watcher.note_ref(started.run_id, _ref(started.response).get("status"), started.response)
    return started.run_id


def _unknown_ids(ctx: CheckContext) -> list[str]:
    """Well-formed and malformed runIds, each confirmed to name no run here (a server may issue "x")."""
    return [*ctx.unknown_run_ids(), *ctx.absent_run_ids(["not-a-run-id", "run_" + "0" * 40, "x"])]


@check("CANCEL-001")
def cancel_unknown_run(ctx: CheckContext) -> None:
    """cancelRun of a run that does not exist (well-formed and malformed ids) is 404 and creates nothing."""
    unknown = _unknown_ids(ctx)
    if not unknown:
        ctx.skip("CANCEL-001", "every candidate unknown runId named a run that exists on this server")
    for run_id in unknown:
        response = ctx.cancel_run(run_id)
        after = ctx.get_run(run_id)
        if ctx.taken_meanwhile(run_id, after):
            # Someone created it since it was confirmed unknown (sequential IDs, a check beside this
            # one): a run that exists now says nothing about a cancel of an unknown one.
            continue
        ctx.expect(
            "CANCEL-001",
            response.status_code == 404,
            f"cancelRun of the unknown run {run_id!r} answered {show(response)}; an unknown or malformed "
            "runId must get 404 (CANCEL-001)",
            on=response,
        )
        ctx.expect(
            "CANCEL-001",
            after.status_code == 404,
            f"after cancelRun of the unknown run {run_id!r}, getRun answered {show(after)}: the cancel created "
            "a run; a cancel of an unknown run must change nothing (CANCEL-001)",
            on=after,
        )


def _seen_going(ctx: CheckContext, watcher: RunWatcher, run_id: str, fixture: str) -> None:
    """The premise of CANCEL-002: the suite saw the run non-terminal before it cancelled it."""
    if not watcher.seen_going(run_id):
        seen = watcher.history.get(run_id) or ["nothing"]
        raise Skipped(
            f"the '{fixture}' fixture's run {run_id} was never seen non-terminal before the cancel (seen: "
            f"{', '.join(seen)}), so a cancel of a non-terminal run was not tried; the long fixture must stay "
            f"busy for minutes ({ctx.fixtures.source})"
        )


def _expect_cancel_takes(ctx: CheckContext, watcher: RunWatcher, run_id: str, state: str) -> None:
    """Cancel a run seen non-terminal whose work cannot have finished; it must answer, record and end as cancelled."""
    _seen_going(ctx, watcher, run_id, "long")
    response = _cancel(ctx, watcher, run_id, "CANCEL-002", f"a {state} run")
    if response.status_code != 202:
        return
    answered = _ref(response).get("status")
    ctx.expect(
        "CANCEL-002",
        answered in CANCEL_ANSWERS,
        f"cancelRun of a {state} run ({run_id}) answered status {answered!r}: {show(response)}; a cancel of a "
        "non-terminal run must answer cancelling or cancelled (CANCEL-002)",
        on=response,
    )
    run = watcher.get(run_id)
    ctx.expect(
        "CANCEL-002",
        run is not None and run.get("cancelRequestedAt") is not None,
        f"after a 202 to cancelRun of a {state} run ({run_id}), getRun shows cancelRequestedAt null: "
        f"{run}; the cancel must set it (CANCEL-002)",
        on=run,
    )
    ctx.expect(
        "CANCEL-002",
        run is not None and run.get("status") in CANCEL_ANSWERS | TERMINAL,
        f"after a 202 to cancelRun of a {state} run ({run_id}), getRun shows status {(run or {}).get('status')!r}: "
        "the cancel did not take; the run must be cancelling or cancelled (CANCEL-002)",
        on=run,
    )
    final = watcher.wait_terminal(run_id)
    status = final.get("status") if final else None
    ctx.expect(
        "CANCEL-003",
        status == "cancelled",
        f"a {state} run of the long fixture ({run_id}), cancelled with 202, was {status!r} "
        f"{ctx.session.timeout:g} s (--timeout) later; a run cancelled before its work finished must reach "
        "cancelled within the timeout (CANCEL-003)",
        on=final,
    )


@check("CANCEL-002", "CANCEL-003", "LIFE-001", "LIFE-002", needs=["fixture:long"])
def cancel_new_run(ctx: CheckContext) -> None:
    """A long run cancelled right after its start (queued, if the server shows that state) ends cancelled.

    A server may start runs faster than the cancel arrives, so the run may already be running:
    either way the cancel answers 202 with cancelling or cancelled, sets cancelRequestedAt,
    and the run ends cancelled. Never seeing `queued` is not a failure.
    """
    watcher = RunWatcher(ctx)
    run_id = _start_seen(ctx, watcher, "long", "cancel-new")
    try:
        _expect_cancel_takes(ctx, watcher, run_id, "new (queued or just started)")
        watcher.report(["LIFE-001", "LIFE-002"])
    finally:
        _cleanup(ctx, watcher, run_id)


@check("CANCEL-002", "CANCEL-003", "LIFE-001", "LIFE-002", needs=["fixture:long"])
def cancel_running_run(ctx: CheckContext) -> None:
    """A long run cancelled once getRun shows it running answers 202, records the cancel and ends cancelled."""
    watcher = RunWatcher(ctx)
    run_id = start_fixture(ctx, "long", ctx.fresh_client_id("cancel-running"))
    try:
        run = watcher.wait_for(run_id, {"running"} | TERMINAL | CANCEL_ANSWERS)
        status = run.get("status") if run else None
        if status in TERMINAL | CANCEL_ANSWERS:
            raise Skipped(
                f"the long fixture's run {run_id} was {status} before it was cancelled; the long fixture must "
                f"stay busy for minutes ({ctx.fixtures.source})"
            )
        state = "running" if status == "running" else f"{status} (never seen running within the timeout)"
        _expect_cancel_takes(ctx, watcher, run_id, state)
        watcher.report(["LIFE-001", "LIFE-002"])
    finally:
        _cleanup(ctx, watcher, run_id)


@check("CANCEL-002", "CANCEL-003", "CANCEL-004", "LIFE-001", "LIFE-002", needs=["fixture:quick"])
def cancel_racing_finish(ctx: CheckContext) -> None:
    """A quick run cancelled at once, racing its own end: every outcome must be one the contract allows.

    If the answer is cancelling or cancelled, the run was not terminal: cancelRequestedAt is set and
    the run ends cancelled or (its work having finished first) succeeded. If the answer is
    succeeded, the run had finished: nothing changes, cancelRequestedAt stays null.
    """
    watcher = RunWatcher(ctx)
    run_id = _start_seen(ctx, watcher, "quick", "cancel-race")
    # CANCEL-002 speaks of non-terminal runs: only a run the suite saw non-terminal is one of its
    # instances. A run whose 202 already said succeeded is a terminal run's cancel (CANCEL-004).
    rid = "CANCEL-002" if watcher.seen_going(run_id) else "CANCEL-004"
    response = _cancel(ctx, watcher, run_id, rid, "a just-started quick run")
    if response.status_code != 202:
        return
    answered = _ref(response).get("status")
    if answered in CANCEL_ANSWERS:
        run = watcher.get(run_id)
        ctx.expect(
            rid,
            run is not None and run.get("cancelRequestedAt") is not None,
            f"cancelRun answered {answered} for {run_id}, but getRun shows cancelRequestedAt null: {run}; "
            "a cancel answered cancelling or cancelled must set it (CANCEL-002)",
            on=run,
        )
        final = watcher.wait_terminal(run_id)
        status = final.get("status") if final else None
        ctx.expect(
            "CANCEL-003",
            status in {"cancelled", "succeeded"},
            f"a quick run cancelled while not terminal ({run_id}, cancel answered {answered}) was {status!r} "
            f"{ctx.session.timeout:g} s later; it must end cancelled, or succeeded if its work finished first "
            "(CANCEL-003)",
            on=final,
        )
    elif answered == "succeeded":
        run = watcher.get(run_id)
        ctx.expect(
            "CANCEL-004",
            run is not None and run.get("status") == "succeeded" and run.get("cancelRequestedAt") is None,
            f"cancelRun answered succeeded for {run_id} (it had finished), yet getRun shows {run}; a cancel "
            "of a terminal run changes nothing: status and cancelRequestedAt (null) stay (CANCEL-004)",
            on=run,
        )
    else:
        ctx.expect(
            rid,
            False,
            f"cancelRun of a just-started quick run {run_id} answered status {answered!r}: {show(response)}; a "
            "cancel answers cancelling or cancelled for a non-terminal run, or the unchanged terminal status "
            "(succeeded here) for a finished one (CANCEL-002, CANCEL-004)",
            on=response,
        )
    watcher.report(["LIFE-001", "LIFE-002"])


def _cancel_terminal(ctx: CheckContext, fixture: str, expected: str) -> None:
    watcher = RunWatcher(ctx)
    run_id = start_fixture(ctx, fixture, ctx.fresh_client_id(f"cancel-{expected}"))
    before = watcher.wait_terminal(run_id)
    if before is None or before.get("status") not in TERMINAL:
        status = before.get("status") if before else None
        raise Skipped(
            f"the '{fixture}' fixture's run {run_id} was still {status!r} after {ctx.session.timeout:g} s, so "
            "there was no finished run to cancel (LIFE-005 reports it)"
        )
    for attempt in ("a", "a second"):
        response = _cancel(ctx, watcher, run_id, "CANCEL-004", f"{attempt} cancel of a {before['status']}")
        if response.status_code == 202:
            answered = _ref(response).get("status")
            ctx.expect(
                "CANCEL-004",
                answered == before["status"],
                f"cancelRun of the {before['status']} run {run_id} answered status {answered!r}: {show(response)}; "
                f"a cancel of a terminal run answers 202 with its unchanged status {before['status']} (CANCEL-004)",
                on=response,
            )
        after = watcher.get(run_id)
        changed = changed_run_fields(before, after, RUN_FIELDS) if after is not None else {}
        ctx.expect(
            "CANCEL-004",
            not changed,
            f"{attempt} cancelRun of the {before['status']} run {run_id} changed it "
            f"(field: (before, after)) {changed}; a cancel of a terminal run changes nothing (CANCEL-004)",
            on=after,
        )
    watcher.report(["LIFE-002"])


@check("CANCEL-004", "LIFE-002", needs=["fixture:quick"])
def cancel_succeeded_run(ctx: CheckContext) -> None:
    """cancelRun of a succeeded run answers 202 succeeded, twice, and changes nothing."""
    _cancel_terminal(ctx, "quick", "succeeded")


@check("CANCEL-004", "LIFE-002", needs=["fixture:failing"])
def cancel_failed_run(ctx: CheckContext) -> None:
    """cancelRun of a failed run answers 202 failed, twice, and changes nothing."""
    _cancel_terminal(ctx, "failing", "failed")


@check("CANCEL-005", "CANCEL-004", needs=["fixture:long"])
def cancel_repeatedly(ctx: CheckContext) -> None:
    """Repeated cancels of a long run answer 202 and keep the first cancelRequestedAt, also once cancelled.

    Cancel, cancel again at once (the run is cancelling or cancelled), wait for cancelled, then
    cancel a third time: 202 with status cancelled, and nothing about the run changes.
    """
    watcher = RunWatcher(ctx)
    run_id = _start_seen(ctx, watcher, "long", "cancel-again")
    try:
        _seen_going(ctx, watcher, run_id, "long")
        seen = ", ".join(watcher.history[run_id])
        response = _cancel(ctx, watcher, run_id, "CANCEL-005", "a long run (first cancel)")
        first = watcher.get(run_id)
        stamp = first.get("cancelRequestedAt") if first else None
        # The first cancel of a run seen non-terminal must set cancelRequestedAt: a value repeated
        # cancels keep. Never setting it leaves nothing to keep, which breaks the rule, not its premise.
        ctx.require(
            "CANCEL-005",
            stamp is not None,
            f"after the first cancelRun of the long run {run_id} (seen {seen} before it; the cancel answered "
            f"{show(response)}), getRun shows cancelRequestedAt null: {first}; a "
            "cancel of a non-terminal run sets cancelRequestedAt, and repeated cancels keep that first value "
            "(CANCEL-005)",
            on=first,
        )
        response = _cancel(ctx, watcher, run_id, "CANCEL-005", "a run being cancelled (second cancel)")
        answered = _ref(response).get("status")
        if response.status_code == 202:
            ctx.expect(
                "CANCEL-005",
                answered in CANCEL_ANSWERS,
                f"a second cancelRun of {run_id} answered status {answered!r}: {show(response)}; a run whose "
                "cancel was accepted is cancelling or cancelled (CANCEL-005)",
                on=response,
            )
        second = watcher.get(run_id)
        ctx.expect(
            "CANCEL-005",
            second is not None and same_instant(second.get("cancelRequestedAt"), stamp),
            f"a second cancelRun of {run_id} moved cancelRequestedAt from {stamp!r} to "
            f"{(second or {}).get('cancelRequestedAt')!r}; repeated cancels keep the first value (CANCEL-005)",
            on=second,
        )
        final = watcher.wait_terminal(run_id)
        if final is None or final.get("status") != "cancelled":
            raise Skipped(
                f"run {run_id} did not reach cancelled within {ctx.session.timeout:g} s (CANCEL-003 reports it); "
                "the cancel of an already-cancelled run was not tried"
            )
        response = _cancel(ctx, watcher, run_id, "CANCEL-004", "an already cancelled run")
        if response.status_code == 202:
            ctx.expect(
                "CANCEL-004",
                _ref(response).get("status") == "cancelled",
                f"cancelRun of the cancelled run {run_id} answered {show(response)}; a cancel of a terminal run "
                "answers 202 with its unchanged status cancelled (CANCEL-004)",
                on=response,
            )
        last = watcher.get(run_id)
        changed = changed_run_fields(final, last, RUN_FIELDS) if last is not None else {}
        ctx.expect(
            "CANCEL-005" if "cancelRequestedAt" in changed else "CANCEL-004",
            not changed,
            f"cancelRun of the cancelled run {run_id} changed it (field: (before, after)) {changed}; a cancel of "
            "a terminal run changes nothing and cancelRequestedAt keeps its first value (CANCEL-004, CANCEL-005)",
            on=last,
        )
    finally:
        _cleanup(ctx, watcher, run_id)


def _cleanup(ctx: CheckContext, watcher: RunWatcher, run_id: str) -> None:
    """Leave no long run busy: cancel it unless it was last seen terminal."""
    if run_id not in watcher.ever_terminal:
        ctx.cancel_run(run_id)
