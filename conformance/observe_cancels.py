"""Cancels of finished runs judged from traffic: CANCEL-004 (a terminal run's cancel gets 202 and changes nothing).

A run cancels a run it saw finish on purpose; traffic holds such a cancel whenever a client cancels a
run that had already ended (a user's second click, a cleanup job). What one instance is, here:

- One answered cancelRun of a run that an answer to the same credential had shown terminal (a Run
  of getRun or listRuns, or the RunRef of a startRun or cancelRun 202) and that was answered before
  the cancel was sent. It must be 202 with a RunRef whose status is that terminal status; and no Run
  shown to that credential by a request sent after the cancel was answered may show what a cancel
  changes: the status cancelling or cancelled where it was another, or a cancelRequestedAt (as an
  instant) other than the terminal Run showed, null included (a cancel that stamps a finished run).
  Other changes of a finished run (a status going back, finishedAt rewritten, cancelRequestedAt
  gone) cannot be told from a change some other job made: CONC-005..008 judge those.

Why no correct server is flagged: a terminal status never changes, nor its finishedAt or
cancelRequestedAt (LIFE-006, CONC-006..008), so what the earlier answer showed is the run's state
when the cancel came, and the contract fixes the answer to that state. A cancel that overlapped the
terminal read proves nothing (the run may have finished while the cancel was handled, which is
CANCEL-002's case), and neither does a read that overlapped the cancel. Statuses that are other
requirements' business are no instance: 401 and 403 (auth), 404 (CONC-009's, a shown run never
404), 429 and 5xx (ERR-001), and 400, 413 and 415, which the contract gives any request whose body
is malformed, too large or not JSON: the history does not hold what a cancel's request carried. Run
timestamps compare as instants; the extra fields a server may add to a RunRef carry no contract and
are not read. Same credential only: a server may show each credential its own runs (and its own run
IDs). A run whose terminal answers before the cancel disagree (two statuses, two finishedAt) is
CONC-006's or CONC-008's finding, and its cancels are no instance.

At most one finding per run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from conformance.history import History, Observation, Operation
from conformance.history_findings import Finding, Say
from conformance.meaning import same_instant
from conformance.spec import terminal_statuses

__all__ = ["RULES", "terminal_cancel_findings"]

RULES = {
    "CANCEL-004": "cancelRun of a terminal run gets 202 with its unchanged status, and changes nothing",
}
_NOT_JUDGED = frozenset({400, 401, 403, 404, 413, 415, 429})  # other requirements' business (see above)
_RUN_KINDS = frozenset({"getRun", "listRuns"})  # answers that show a Run, with its timestamps
_CANCEL_STATUSES = frozenset({"cancelling", "cancelled"})  # where a cancel moves a run


def terminal_cancel_findings(history: History) -> tuple[Counter[str], list[Finding]]:
    """(instances per requirement, findings)."""
    say = Say(history)
    terminal = terminal_statuses()
    counts: Counter[str] = Counter()
    findings: list[Finding] = []
    cancels: dict[tuple[str, str], list[Operation]] = {}
    for op in history.operations:
        judged = op.status is not None and op.status not in _NOT_JUDGED and op.status < 500
        if op.kind == "cancelRun" and op.run_id is not None and judged:
            cancels.setdefault((op.credential, op.run_id), []).append(op)
    if not cancels:
        return counts, findings
    for run_id, observations in history.runs().items():
        by_credential: dict[str, list[Observation]] = {}
        for obs in observations:
            by_credential.setdefault(history[obs.op].credential, []).append(obs)
        for credential, shown in by_credential.items():
            mine = cancels.get((credential, run_id), [])
            ended = [obs for obs in shown if obs.status in terminal]
            if not mine or not ended:
                continue
            found = _judge(run_id, mine, shown, ended, history, counts, say)
            if found is not None:
                findings.append(found)
    return counts, sorted(findings, key=lambda f: f.operations)


def _judge(
    run_id: str,
    cancels: Sequence[Operation],
    shown: Sequence[Observation],
    ended: Sequence[Observation],
    history: History,
    counts: Counter[str],
    say: Say,
) -> Finding | None:
    """Each cancel of the run sent after a terminal answer arrived, judged; the first contradiction found."""
    found: Finding | None = None
    for cancel in cancels:
        before = [obs for obs in ended if obs.latest < cancel.invoked]
        if not before or len({obs.status for obs in before}) > 1:
            continue
        runs = [obs for obs in before if history[obs.op].kind in _RUN_KINDS]
        if not _agree(runs):
            continue
        counts["CANCEL-004"] += 1
        if found is not None:
            continue
        shown_as = before[0]
        wrong = _answer_wrong(cancel, shown_as.status)
        if wrong is not None:
            found = _finding(
                f"{say.op(shown_as.op)} showed run {run_id} {shown_as.status}, and {say.op(cancel.index)}, "
                f"sent after that answer, {wrong}",
                (shown_as.op, cancel.index),
                run_id,
            )
            continue
        assert cancel.completed is not None
        for later in shown:
            if later.earliest <= cancel.completed:
                continue
            changed = _changed(shown_as, runs[0] if runs else None, later, history)
            if changed is not None:
                found = _finding(
                    f"{say.op(shown_as.op)} showed run {run_id} {shown_as.status}, {say.op(cancel.index)} cancelled "
                    f"it after that, and {say.op(later.op)}, sent after the cancel was answered, showed {changed}",
                    (shown_as.op, cancel.index, later.op),
                    run_id,
                )
                break
    return found


def _agree(runs: Sequence[Observation]) -> bool:
    """The terminal Runs shown before a cancel agree on finishedAt and cancelRequestedAt, as instants."""
    first = runs[0] if runs else None
    return first is None or all(
        same_instant(first.finished_at, obs.finished_at)
        and same_instant(first.cancel_requested_at, obs.cancel_requested_at)
        for obs in runs
    )


def _answer_wrong(cancel: Operation, status: str) -> str | None:
    """What is wrong with the cancel's answer to a run known `status` (terminal), or None."""
    if cancel.status != 202:
        return f"got {cancel.status}; expected 202 with status {status}"
    answered = cancel.body.get("status") if isinstance(cancel.body, dict) else None
    if isinstance(answered, str) and answered != status:
        return f"got 202 with status {answered!r}; expected its unchanged status {status}"
    return None  # a RunRef without a status is SCHEMA-002's


def _changed(status: Observation, run: Observation | None, later: Observation, history: History) -> str | None:
    """What a later answer shows a cancel changed since the terminal answers before it, or None.

    Only what a cancel does: the status moved to cancelling or cancelled, cancelRequestedAt set where it
    was null or moved. Any other change of a finished run (a status going back, a finishedAt rewritten, a
    cancelRequestedAt gone) is no cancel's doing as far as a recording can tell: CONC-005..008 judge it."""
    if later.status != status.status:
        return f"it {later.status}" if later.status in _CANCEL_STATUSES else None
    if run is None or not run.cancel_shown or not later.cancel_shown or later.cancel_requested_at is None:
        return None
    if not same_instant(run.cancel_requested_at, later.cancel_requested_at):
        return f"cancelRequestedAt {later.cancel_requested_at!r} where it had been {run.cancel_requested_at!r}"
    return None


def _finding(message: str, operations: tuple[int, ...], run_id: str) -> Finding:
    return Finding("CANCEL-004", f"{message} (CANCEL-004: {RULES['CANCEL-004']})", operations, run_id)
