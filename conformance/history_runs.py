"""The history checker per run: statuses in real time, cancelRequestedAt and finishedAt, no 404
once shown (CONC-005..009)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from conformance.history import PATH_KINDS, History, Observation
from conformance.history_findings import Finding, Say, finding
from conformance.meaning import Instant, parse_instant

__all__ = ["lifecycle_findings", "shown_at", "timestamp_findings", "visibility_findings"]


def lifecycle_findings(
    run_id: str,
    observations: Sequence[Observation],
    reach: dict[str, frozenset[str]],
    terminal: frozenset[str],
    say: Say,
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
        findings.append(finding("CONC-006", f"run {run_id}: {said}", (a.op, b.op), run_id))
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
                    finding(
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
                    finding(
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


def timestamp_findings(
    run_id: str, observations: Sequence[Observation], terminal: frozenset[str], say: Say
) -> list[Finding]:
    findings: list[Finding] = []
    shown = [obs for obs in observations if obs.cancel_shown]
    set_ = [(obs, parse_instant(obs.cancel_requested_at)) for obs in shown if obs.cancel_requested_at is not None]
    pair = _two_values([(obs, value) for obs, value in set_ if value is not None])
    if pair:
        a, b = pair
        findings.append(
            finding(
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
                finding(
                    "CONC-007",
                    f"run {run_id}: {say.op(first_set.op)} showed cancelRequestedAt {first_set.cancel_requested_at} "
                    f"and was answered before {say.op(b.op)} was sent, which showed it null; expected it to stay set",
                    (first_set.op, b.op),
                    run_id,
                )
            )
    ended = [obs for obs in observations if obs.status in terminal and obs.finished_at is not None]
    finished = [(obs, parse_instant(obs.finished_at)) for obs in ended if obs.finished_at is not None]
    pair = _two_values([(obs, value) for obs, value in finished if value is not None])
    if pair:
        a, b = pair
        findings.append(
            finding(
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


def shown_at(history: History, by_run: dict[str, tuple[Observation, ...]]) -> dict[str, tuple[float, int]]:
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


def visibility_findings(history: History, shown: dict[str, tuple[float, int]], say: Say) -> list[Finding]:
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
            finding(
                "CONC-009",
                f"run {op.run_id}: {say.op(at[1])} showed the run and was answered before {say.op(op.index)} was sent, "
                "which got 404; expected the run, to any client: a run exists from its startRun's 202 on",
                (at[1], op.index),
                op.run_id,
            )
        )
    return findings
