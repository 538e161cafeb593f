"""Checks side by side: the same results in the same order whatever --workers says, exclusive checks alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from conformance.context import CheckContext
from conformance.events import Events
from conformance.monitor import LifecycleMonitor
from conformance.outcomes import Outcome
from conformance.registry import Check
from conformance.scheduler import MAX_AUTO_WORKERS, auto_workers, run_checks
from conformance.session import Session


class _Gauge:
    """How many checks run at once, and the most ever seen."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()
        self.alone: list[bool] = []

    def check(self, name: str, seconds: float, exclusive: bool = False) -> Check:
        def run(ctx: CheckContext) -> None:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                if exclusive:
                    self.alone.append(self.now == 1)
            time.sleep(seconds)  # stands in for waiting on a server
            with self.lock:
                self.now -= 1
            ctx.expect("ERR-003", True, "", on={"status": "a stand-in answer"})

        return Check(name=name, requirements=("ERR-003",), func=run, needs=frozenset(), exclusive=exclusive)


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_results_keep_the_checks_order(workers: int, reference_url: str, make_session: Callable[..., Session]) -> None:
    gauge = _Gauge()
    checks = [gauge.check(f"c{n}", 0.1 + 0.05 * ((n * 7) % 5)) for n in range(9)]
    checks.insert(4, gauge.check("alone", 0.05, exclusive=True))
    runs, interrupted = run_checks(checks, make_session(reference_url), Events(), time.monotonic() + 60, workers)
    assert not interrupted
    assert [r.check.name for r in runs] == [c.name for c in checks]
    assert all(r.outcome("ERR-003") is Outcome.PASSED for r in runs)
    assert gauge.most == min(workers, 9)
    assert gauge.alone == [True], "the exclusive check ran beside another"


def test_checks_not_started_by_the_deadline_are_not_run(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    gauge = _Gauge()
    checks = [gauge.check(f"c{n}", 0.3) for n in range(6)]
    runs, _ = run_checks(checks, make_session(reference_url), Events(), time.monotonic() + 0.1, 2)
    statuses = [r.outcome("ERR-003") for r in runs]
    assert statuses[:2] == [Outcome.PASSED, Outcome.PASSED]  # started in time: they finish
    assert statuses[2:] == [Outcome.NOT_RUN] * 4
    assert "--deadline" in runs[-1].outcomes["ERR-003"].reason


def test_auto_workers_follow_the_round_trip() -> None:
    assert auto_workers(0.0005) == 1  # loopback: every check is CPU work
    assert 3 <= auto_workers(0.020) <= 6
    assert auto_workers(0.050) == MAX_AUTO_WORKERS
    assert auto_workers(2.0) == MAX_AUTO_WORKERS


def _answer(invoked: float, completed: float) -> object:
    class Timed:
        pass

    timed = Timed()
    timed.invoked, timed.completed = invoked, completed  # type: ignore[attr-defined]
    return timed


def test_the_monitor_judges_moves_only_between_reads_the_clock_orders() -> None:
    run = {"runId": "r1", "createdAt": "2026-01-01T00:00:00Z", "startedAt": None, "finishedAt": None}
    queued, running = {**run, "status": "queued"}, {**run, "status": "running", "startedAt": "2026-01-01T00:00:01Z"}
    overlapping = LifecycleMonitor()
    # Two checks read the run at once; the later-recorded read was sent first: not evidence of a move back.
    overlapping.observe(running, None, _answer(1.0, 3.0))  # type: ignore[arg-type]
    overlapping.observe(queued, None, _answer(2.0, 4.0))  # type: ignore[arg-type]
    assert overlapping.findings == []
    ordered = LifecycleMonitor()
    ordered.observe(running, None, _answer(1.0, 2.0))  # type: ignore[arg-type]
    ordered.observe(queued, None, _answer(3.0, 4.0))  # type: ignore[arg-type]
    assert "LIFE-001" in {f.requirement_id for f in ordered.findings}
