"""Running one check: what it found for each requirement it names.

Kept apart from the runner so that tests can run a single check against any server.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import httpx

from conformance.client import ResponseTooLarge
from conformance.context import EVIDENCE_EXCHANGES, CheckContext, Session
from conformance.registry import Check, Failed, Skipped
from conformance.results import CheckOutcome, Evidence, Exchange

__all__ = ["CheckRun", "run_check"]


@dataclass
class CheckRun:
    check: Check
    outcomes: dict[str, CheckOutcome]
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    message: str = ""  # why it was skipped or errored, or the first failure
    duration_s: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)  # every exchange the check made, as recorded

    def failed(self, requirement_id: str) -> bool:
        return self.outcomes.get(requirement_id) is CheckOutcome.FAILED


def _falsifying_example(exc: BaseException) -> str | None:
    notes = [n for n in getattr(exc, "__notes__", []) if isinstance(n, str)]
    return "\n".join(notes) or None


def run_check(check: Check, session: Session) -> CheckRun:
    """Run `check` once; never raises for what the check or the server did."""
    ctx = CheckContext(session, check.name)
    started = time.perf_counter()
    outcomes = dict.fromkeys(check.requirements, CheckOutcome.PASSED)
    message = ""
    try:
        check(ctx)
    except Failed as exc:
        ctx.failures.append(
            (
                exc.requirement_id,
                Evidence(check.name, exc.message, ctx.recorder.last(EVIDENCE_EXCHANGES), _falsifying_example(exc)),
            )
        )
    except Skipped as exc:
        message = exc.reason
        outcomes = dict.fromkeys(check.requirements, CheckOutcome.SKIPPED)
    except (httpx.TransportError, ResponseTooLarge) as exc:
        # The server dropped, stalled or flooded the exchange: that is the server's failure.
        reason = f"the server did not answer properly: {type(exc).__name__}: {exc}"
        for rid in check.requirements:
            ctx.failures.append((rid, Evidence(check.name, reason, ctx.recorder.last(EVIDENCE_EXCHANGES))))
    except Exception as exc:
        message = f"the check itself broke: {type(exc).__name__}: {exc}"
        outcomes = dict.fromkeys(check.requirements, CheckOutcome.ERROR)
        tb = "".join(traceback.format_exception(exc))
        return CheckRun(
            check,
            outcomes,
            {rid: [Evidence(check.name, message, ctx.recorder.last(EVIDENCE_EXCHANGES), tb)] for rid in outcomes},
            message,
            time.perf_counter() - started,
            ctx.recorder.exchanges,
        )
    evidence: dict[str, list[Evidence]] = {}
    for rid, item in ctx.failures:
        outcomes[rid] = CheckOutcome.FAILED
        evidence.setdefault(rid, []).append(item)
        message = message or f"{rid}: {item.message}"
    return CheckRun(check, outcomes, evidence, message, time.perf_counter() - started, ctx.recorder.exchanges)
