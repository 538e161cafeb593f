"""Running one check: what it found for each requirement, on the evidence it evaluated.

Kept apart from the runner so that tests can run a single check against any server.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import httpx

from conformance._compat.cpython import install_ast_guard
from conformance.client import ResponseTooLarge
from conformance.context import CheckContext
from conformance.events import Events
from conformance.fingerprints import raise_site
from conformance.outcomes import Cut, Failed, Outcome, RequirementOutcome, Skipped
from conformance.registry import Check
from conformance.results import Evidence, Exchange
from conformance.session import Session

__all__ = ["CheckRun", "guarded", "not_run", "report_finished", "run_check", "unmet_need"]


@dataclass
class CheckRun:
    check: Check
    outcomes: dict[str, RequirementOutcome]
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    message: str = ""  # why it was skipped or errored, or the first failure
    duration_s: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)  # every exchange the check made, as recorded

    def statuses(self) -> dict[str, Outcome]:
        """Each requirement the check spoke for, and what it found."""
        return {rid: found.outcome for rid, found in self.outcomes.items()}

    def named_statuses(self) -> dict[str, Outcome]:
        """What it found for the requirements it names (not those it judged in passing, like ERR-001)."""
        return {rid: found.outcome for rid, found in self.outcomes.items() if rid in self.check.requirements}

    def outcome(self, requirement_id: str) -> Outcome | None:
        found = self.outcomes.get(requirement_id)
        return found.outcome if found is not None else None

    def failed(self, requirement_id: str) -> bool:
        return self.outcome(requirement_id) is Outcome.FAILED

    def worst(self) -> Outcome:
        """The check's own headline outcome, for the progress line."""
        return max((o.outcome for o in self.outcomes.values()), key=lambda o: o.rank, default=Outcome.PASSED)


def not_run(check: Check, outcome: Outcome, reason: str) -> CheckRun:
    """A check that never started: each of its IDs `outcome` (skipped or not run) with the reason."""
    return CheckRun(check, {rid: RequirementOutcome(outcome, 0, reason) for rid in check.requirements}, {}, reason)


def _falsifying_example(exc: BaseException) -> str | None:
    notes = [n for n in getattr(exc, "__notes__", []) if isinstance(n, str)]
    return "\n".join(notes) or None


def run_check(check: Check, session: Session) -> CheckRun:
    """Run `check` once; never raises for what the check or the server did."""
    install_ast_guard()  # a check alone (as the tests run one) has threads of its own too: see _compat/cpython.py
    ctx = CheckContext(session, check.name, check.requirements)
    started = time.perf_counter()
    stopped_at: str | None = None
    skipped: str | None = None
    broken: str | None = None
    trace: str | None = None
    try:
        check(ctx)
    except Failed as exc:
        site = raise_site(exc.__traceback__)
        ctx.record_failure(exc.requirement_id, exc.message, example=_falsifying_example(exc), site=site)
        stopped_at = exc.requirement_id
    except Skipped as exc:
        skipped = exc.reason
    except Cut as exc:
        stopped_at = exc.reason
    except (httpx.TransportError, ResponseTooLarge) as exc:
        # The server dropped, stalled or flooded the exchange: a failure of the server (ERR-001),
        # and whatever the check had not judged yet was not reached.
        reason = f"the server did not answer properly: {type(exc).__name__}: {exc}".splitlines()[0]
        ctx.record_failure("ERR-001", reason, site="transport")
        stopped_at = f"ERR-001 ({reason})"
    except Exception as exc:
        broken = f"the check itself broke: {type(exc).__name__}: {exc}".splitlines()[0]
        trace = "".join(traceback.format_exception(exc))
    outcomes = ctx.tally.outcomes(check.requirements, stopped_at=stopped_at, skipped=skipped, broken=broken)
    evidence: dict[str, list[Evidence]] = {}
    for rid, item in ctx.tally.failures:
        evidence.setdefault(rid, []).append(item)
    if broken is not None:
        for rid, found in outcomes.items():
            if found.outcome is Outcome.ERROR:
                evidence[rid] = [Evidence(check.name, broken, ctx.recorder.last(6), trace)]
    first_failure = next((f"{rid}: {item.message}" for rid, item in ctx.tally.failures), "")
    message = broken or first_failure or skipped or ""
    return CheckRun(check, outcomes, evidence, message, time.perf_counter() - started, ctx.recorder.exchanges)


def unmet_need(check: Check, session: Session) -> str | None:
    """Why the check cannot run with this session (no second token, a fixture missing), or None."""
    for need in sorted(check.needs):
        if need == "other_token" and session.other_client is None:
            return "needs a second credential: give --other-token or RUNS_OTHER_TOKEN"
        if need.startswith("fixture:"):
            name = need.split(":", 1)[1]
            if not session.fixtures.has(name):
                return f"no '{name}' workflow in {session.fixtures.source} (give one with --fixtures)"
    return None


def guarded(check: Check, session: Session) -> CheckRun:
    """run_check, and whatever escapes it (an exception group, say) as a suite error of the check."""
    started = time.perf_counter()
    try:
        return run_check(check, session)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # e.g. an exception group a check let escape: the suite's error
        message = f"the check itself broke: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        run = not_run(check, Outcome.ERROR, message)
        run.evidence = {rid: [Evidence(check.name, message, [], "".join(traceback.format_exception(exc)))]
                        for rid in check.requirements}  # fmt: skip
        run.duration_s = time.perf_counter() - started
        return run


def report_finished(result: CheckRun, events: Events) -> None:
    """The check's findings and its end, as events."""
    for rid, items in result.evidence.items():
        if result.outcome(rid) is not Outcome.FAILED:
            continue  # a suite error's traceback is not a finding about the server
        for item in items:
            events.emit("finding", requirement=rid, check=result.check.name, message=item.message)
    worst = result.worst()
    events.emit(
        "check_finished",
        check=result.check.name,
        outcome=worst.value,
        duration_s=round(result.duration_s, 3),
        message=result.message if worst is not Outcome.PASSED else "",
    )
