"""Cleanup: cancel every run the suite started that is still going. Reported apart; never the verdict."""

from __future__ import annotations

import copy
import time

from conformance.client import Recorder
from conformance.context import Session
from conformance.results import Cleanup

__all__ = ["CLEANUP_BUDGET_S", "cancel_leftovers"]

CLEANUP_BUDGET_S = 60.0


def cancel_leftovers(session: Session) -> Cleanup:
    """Cancel every run the suite started that is still going. Never part of the verdict.

    Runs the lifecycle monitor last saw in a terminal status are not asked about again: a
    terminal status never changes (LIFE-002), so they cannot be going (and most of the suite's
    runs are such: a quick run's 150 getRuns took ~0.4 s).
    """
    result = Cleanup(runs_started=len(session.started_runs))
    deadline = time.monotonic() + max(CLEANUP_BUDGET_S, session.request_timeout * 3)
    recorder = Recorder(secrets=session.secrets)
    pending = [(rid, client) for rid, client in session.started_runs.items() if not session.monitor.seen_terminal(rid)]
    for index, (run_id, client) in enumerate(pending):
        if time.monotonic() >= deadline:
            result.errors.append(f"cleanup stopped at its deadline; {len(pending) - index} runs not checked")
            break
        api = copy.copy(client)
        api.recorder = recorder  # the same connections, recorded apart from every check
        try:
            response = api.get(f"/api/v1/runs/{run_id}")
            data = response.json_or_none() if response.status_code == 200 else None
            status = data.get("status") if isinstance(data, dict) else None
            if response.status_code != 200:
                result.errors.append(f"run {run_id}: getRun answered {response.status_code}")
                continue
            if status in session.monitor.terminal:
                continue
            cancel = api.post(f"/api/v1/runs/{run_id}/cancel")
            if cancel.status_code == 202:
                result.runs_cancelled += 1
            else:
                result.errors.append(f"run {run_id}: cancelRun answered {cancel.status_code}")
        except Exception as exc:  # a broken server must not break the report
            result.errors.append(f"run {run_id}: {type(exc).__name__}: {exc}".splitlines()[0])
        if len(result.errors) >= 20:
            result.errors.append("cleanup gave up after 20 errors")
            break
    return result
