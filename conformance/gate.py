"""The gate: the verdict, exit code and one-line reason a RunReport's statuses call for.

The one place the gate is decided; the runner and the baseline (which re-decides after accepting
entries) both ask here. It reads only the results model, as every report writer does.
"""

from __future__ import annotations

from conformance.results import UNVERIFIED, RequirementResult, RunReport, Status, Verdict

__all__ = ["gate_verdict", "unverified"]


def gate_verdict(
    report: RunReport, strict: bool | None = None, *, interrupted: bool = False
) -> tuple[Verdict, int, str]:
    """The verdict, exit code and one-line reason that the report's statuses call for.

    The one place the gate is decided. Unreachable stays unreachable (exit 3). A failed
    requirement makes the run not conformant (exit 1), as does a stale baseline entry under strict.
    Otherwise the run is incomplete (exit 1) when a selected MUST (any level under strict) was not
    verified: skipped, not run (not reached, cut by --deadline, interrupted) or a suite error,
    unless a baseline entry accepted it. Exit 0 needs every selected MUST evaluated and passed.
    """
    if report.verdict is Verdict.UNREACHABLE:
        return report.verdict, 3, report.reason
    strict = report.strict if strict is None else strict
    counts = report.counts()
    failures: list[str] = []
    if counts[Status.FAILED]:
        must = sum(1 for r in report.requirements if r.status is Status.FAILED and r.level == "MUST")
        detail = f" ({must} MUST)" if must else ""
        failures.append(f"{_plural(counts[Status.FAILED], 'requirement')} failed{detail}")
    stale = [n for n in report.baseline if n.stale]
    if strict and stale:
        failures.append(f"{_plural(len(stale), 'stale baseline entry', 'stale baseline entries')} (--strict)")
    gaps = unverified(report, strict)
    gap_text = _gaps(gaps)
    if interrupted:
        gap_text.insert(0, "the run was interrupted before every check ran")
    verified = sum(counts[s] for s in (Status.PASSED, Status.FAILED, Status.WARNING, Status.BASELINED))
    if not verified:
        gap_text.insert(0, "no requirement was checked")
    missing = report.coverage.missing() if report.require_coverage else []
    if missing:
        shown = ", ".join(f"{r.operation} {r.status}" for r in missing[:6]) + (" …" if len(missing) > 6 else "")
        gap_text.append(
            f"coverage (--require-coverage): {_plural(len(missing), 'documented response')} never observed: {shown}"
        )
    if failures:
        return Verdict.NOT_CONFORMANT, 1, "; ".join(failures + gap_text)
    if gap_text:
        return Verdict.INCOMPLETE, 1, "; ".join(gap_text)
    extras = []
    if counts[Status.WARNING]:
        extras.append(_plural(counts[Status.WARNING], "SHOULD warning"))
    if counts[Status.BASELINED]:
        extras.append(f"{counts[Status.BASELINED]} baselined")
    quiet_gaps = [r for r in report.requirements if r.status in UNVERIFIED]
    if quiet_gaps:
        extras.append(f"{len(quiet_gaps)} not verified ({', '.join(sorted({r.level for r in quiet_gaps}))} only)")
    if stale:
        extras.append(_plural(len(stale), "stale baseline entry", "stale baseline entries"))
    tail = f" ({', '.join(extras)})" if extras else ""
    head = "no failure outside the baseline" if counts[Status.BASELINED] else "every selected requirement passed"
    return Verdict.CONFORMANT, 0, head + tail


def unverified(report: RunReport, strict: bool) -> list[RequirementResult]:
    """The selected requirements whose gap keeps the run from being green: MUSTs (every level under
    strict, MAY excepted) that were skipped, not run or broken, and not accepted by the baseline."""
    levels = {"MUST", "SHOULD"} if strict else {"MUST"}
    return [r for r in report.requirements if r.status in UNVERIFIED and r.level in levels]


def _gaps(gaps: list[RequirementResult]) -> list[str]:
    """One clause per kind of gap, naming the first few IDs: `2 MUST not verified: IDEM-007 skipped (…)`."""
    if not gaps:
        return []
    broken = [r for r in gaps if r.status is Status.ERROR]
    other = [r for r in gaps if r.status is not Status.ERROR]
    clauses: list[str] = []
    if other:
        first = other[0]
        why = first.message.splitlines()[0][:140] if first.message else first.status.value
        more = f", and {_ids([r.id for r in other[1:]])}" if len(other) > 1 else ""
        clauses.append(
            f"{_plural(len(other), 'requirement')} not verified: {first.id} {first.status.value.replace('_', ' ')} "
            f"({why}){more}"
        )
    if broken:
        clauses.append(
            f"{_plural(len(broken), 'requirement')} could not be checked because the suite itself broke "
            f"({_ids([r.id for r in broken])}), which says nothing about the server"
        )
    return clauses


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"
