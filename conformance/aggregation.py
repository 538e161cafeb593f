"""From what each check found to one row per requirement: the worst outcome any check had for it.

A requirement a check evaluated and passed is passed only if no other check that spoke for it was
stopped, skipped or broken first: a requirement verified in part is not reported verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from conformance.catalog import Level, Requirement, catalog
from conformance.execution import CheckRun
from conformance.fingerprints import fingerprint, message_kind, operation_of
from conformance.monitor import LifecycleMonitor
from conformance.outcomes import Outcome, RequirementOutcome
from conformance.results import Evidence, RequirementResult, Status

__all__ = ["MONITOR", "requirement_rows"]

MONITOR = "lifecycle monitor"

_Row = tuple[str, RequirementOutcome, float]  # (check, what it found, its duration)


def status_of(req: Requirement, outcome: Outcome, strict: bool) -> Status:
    """A check outcome as a requirement status: the level decides what a failure is."""
    if outcome is Outcome.FAILED:
        if req.level is Level.MUST or (req.level is Level.SHOULD and strict):
            return Status.FAILED
        return Status.WARNING
    return {
        Outcome.PASSED: Status.PASSED,
        Outcome.NOT_RUN: Status.NOT_RUN,
        Outcome.SKIPPED: Status.SKIPPED,
        Outcome.ERROR: Status.ERROR,
    }[outcome]


def requirement_rows(
    selected: set[str],
    check_runs: Iterable[CheckRun],
    monitor: LifecycleMonitor,
    *,
    strict: bool,
    rerun: Callable[[str], str],
) -> list[RequirementResult]:
    """One row per catalog requirement, in catalog order; `rerun(id)` is the command that reruns it."""
    seen: dict[str, list[_Row]] = {}
    evidence: dict[str, list[Evidence]] = {}
    named: dict[str, list[str]] = {}
    for cr in check_runs:
        for rid in cr.check.requirements:
            named.setdefault(rid, []).append(cr.check.name)
        for rid, outcome in cr.outcomes.items():
            if rid in selected:
                seen.setdefault(rid, []).append((cr.check.name, outcome, cr.duration_s))
                evidence.setdefault(rid, []).extend(cr.evidence.get(rid, []))
    _monitor_rows(selected, monitor, seen, evidence)
    results: list[RequirementResult] = []
    for req in catalog().values():
        result = RequirementResult.of(req, Status.NOT_SELECTED, "not selected")
        if req.id in selected:
            result.rerun = rerun(req.id)
            rows = seen.get(req.id)
            if not rows:
                result.status = Status.NOT_RUN
                result.checks = sorted(set(named.get(req.id, [])))
                result.message = (
                    f"not evaluated: {', '.join(result.checks)} ran without an assertion about it"
                    if result.checks
                    else "not evaluated: no selected check verifies this requirement"
                )
            else:
                worst = max((o.outcome for _, o, _ in rows), key=lambda o: o.rank)
                result.status = status_of(req, worst, strict)
                result.evaluations = sum(o.evaluations for _, o, _ in rows)
                result.checks = sorted({name for name, _, _ in rows})
                result.duration_s = round(sum(d for _, _, d in rows), 3)
                result.evidence = grouped(evidence.get(req.id, []))
                result.message = _message(worst, rows, result.evidence, result.evaluations)
        results.append(result)
    return results


def _monitor_rows(
    selected: set[str], monitor: LifecycleMonitor, seen: dict[str, list[_Row]], evidence: dict[str, list[Evidence]]
) -> None:
    """The lifecycle monitor judged every Run the checks saw: it counts as a check of its rules."""
    found: set[str] = set()
    for finding in monitor.findings:
        found.add(finding.requirement_id)
        if finding.requirement_id in selected:
            item = Evidence(MONITOR, finding.message, list(finding.exchanges))
            # The monitor's rule, worded without the run and its values: "moved from running to queued".
            kind = message_kind(finding.message.split(": ", 1)[-1])
            last = finding.exchanges[-1] if finding.exchanges else None
            item.fingerprint = fingerprint(finding.requirement_id, f"monitor:{kind}", operation_of(last))
            evidence.setdefault(finding.requirement_id, []).append(item)
    for rid, count in monitor.evaluations.items():
        if rid in selected and (count or rid in found):
            judged = Outcome.FAILED if rid in found else Outcome.PASSED
            seen.setdefault(rid, []).append((MONITOR, RequirementOutcome(judged, count), 0.0))


def grouped(evidence: list[Evidence]) -> list[Evidence]:
    """One item per fingerprint, the first found, counting the others: one defect is one finding."""
    first: dict[str, Evidence] = {}
    kept: list[Evidence] = []
    for item in evidence:
        key = item.fingerprint or f"#{len(kept)}"  # without one (a suite error), each stands alone
        if key in first:
            kept_one = first[key]
            kept_one.count += item.count  # an item may stand for several examples already
            if item.check != kept_one.check and item.check not in kept_one.also_in:
                kept_one.also_in.append(item.check)
            continue
        first[key] = item
        kept.append(item)
    return kept


def _message(worst: Outcome, rows: list[_Row], evidence: list[Evidence], evaluations: int) -> str:
    if worst is Outcome.PASSED:
        checks = len({name for name, _, _ in rows})
        return (
            f"verified by {checks} check{'s' if checks != 1 else ''}: "
            f"{evaluations} assertion{'s' if evaluations != 1 else ''} evaluated, none failed"
        )
    if worst is Outcome.FAILED:
        first = next((e for e in evidence if e.check), None)
        if first is not None:
            more = f" (and {len(evidence) - 1} more)" if len(evidence) > 1 else ""
            return f"{first.check}: {first.message.splitlines()[0] if first.message else 'failed'}{more}"
    for name, outcome, _ in rows:
        if outcome.outcome is worst:
            return f"{name}: {outcome.reason}" if outcome.reason else name
    return worst.value
