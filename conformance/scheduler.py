"""The execute stage: the selected checks, side by side on `workers` threads.

Every check works on clientIds and keys of its own, so most run beside any other; one registered
`exclusive` runs alone. Results keep the checks' order whatever finished first, so the report, its
rows and the verdict do not depend on the number of workers; each check's Hypothesis examples are
seeded per check (CheckContext.seed), so a seed replays them whatever ran beside them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from conformance._compat.cpython import install_ast_guard
from conformance.events import Events
from conformance.execution import CheckRun, guarded, not_run, report_finished, unmet_need
from conformance.outcomes import Outcome
from conformance.registry import Check
from conformance.session import Session

__all__ = ["MAX_AUTO_WORKERS", "auto_workers", "run_checks"]

MAX_AUTO_WORKERS = 8  # enough to hide a remote server's latency; more only add threads fighting for the GIL
# The suite's own time per request (generating, validating, judging), measured at 3-6 ms on two cores:
# the work that one worker does while another waits for an answer.
SUITE_WORK_S = 0.005

DEADLINE_REASON = "cut by --deadline: the run's time was up before this check started"


def run_checks(
    checks: Sequence[Check], session: Session, events: Events, deadline: float, workers: int = 1
) -> tuple[list[CheckRun], bool]:
    """Run every check; (their runs in the checks' order, whether the run was interrupted).

    A check not started when `deadline` (time.monotonic()) passes is not run, with that reason; a
    KeyboardInterrupt stops the scheduling, and the checks not finished are not run either.
    """
    # At any worker count: checks run threads of their own (examples side by side, model groups,
    # the workload), and Hypothesis builds ASTs on whichever thread describes an example.
    install_ast_guard()
    return _schedule(checks, session, events, deadline, workers)


def _schedule(
    checks: Sequence[Check], session: Session, events: Events, deadline: float, workers: int
) -> tuple[list[CheckRun], bool]:
    results: list[CheckRun | None] = [None] * len(checks)
    interrupted = False
    # Exclusive checks first: one in the middle would make every worker wait for the slowest running
    # check to finish before it could start. With --disrupt they come last instead (the workload is
    # where the command runs): then everything the other checks established (keys, runs, cursors) was
    # established before the restart, and the final reads after it find out what the server lost.
    # The results keep the checks' order all the same.
    last = session.disruption is not None
    if workers > 1 or last:
        order = sorted(range(len(checks)), key=lambda i: checks[i].exclusive == last)
    else:
        order = list(range(len(checks)))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rc-check")
    running: dict[Future[CheckRun], int] = {}
    cut = False
    try:
        position = 0
        while position < len(order) or running:
            while position < len(order) and len(running) < workers and not _alone(checks, running):
                if time.monotonic() >= deadline:
                    cut = True
                    break
                check = checks[order[position]]
                if check.exclusive and running:
                    break  # it waits for the others to finish, then runs alone
                running[pool.submit(_one, check, session, events)] = order[position]
                position += 1
            if cut:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    except KeyboardInterrupt:
        interrupted = True
        events.info("interrupted: cleaning up and writing the report")
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    if cut:
        for future in list(running):  # those already running finish: they started in time
            results[running.pop(future)] = future.result()
        left = sum(1 for r in results if r is None)
        events.info(f"overall deadline reached: {left} checks not run")
    reason = "the run was interrupted" if interrupted else DEADLINE_REASON
    return [r if r is not None else not_run(checks[i], Outcome.NOT_RUN, reason) for i, r in enumerate(results)], (
        interrupted
    )


def auto_workers(round_trip_s: float) -> int:
    """Workers enough that while one waits a round trip, the others keep the suite busy; one on loopback,
    where every check is CPU work and more threads only take turns at the GIL (measured: no faster)."""
    return max(1, min(MAX_AUTO_WORKERS, round((round_trip_s + SUITE_WORK_S) / SUITE_WORK_S)))


def _alone(checks: Sequence[Check], running: dict[Future[CheckRun], int]) -> bool:
    """An exclusive check is running: nothing starts beside it."""
    return any(checks[i].exclusive for i in running.values())


def _one(check: Check, session: Session, events: Events) -> CheckRun:
    events.emit("check_started", check=check.name)
    need = unmet_need(check, session)
    result = not_run(check, Outcome.SKIPPED, need) if need is not None else guarded(check, session)
    report_finished(result, events)
    return result
