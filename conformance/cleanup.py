"""Cleanup: cancel every run the suite started that is still going. Reported apart; never the verdict."""

from __future__ import annotations

import concurrent.futures
import copy
import threading
import time

from conformance.client import ApiClient, Recorder
from conformance.results import Cleanup
from conformance.session import Session

__all__ = ["CLEANUP_BUDGET_S", "cancel_leftovers"]

CLEANUP_BUDGET_S = 60.0
MAX_ERRORS = 20


def cancel_leftovers(session: Session) -> Cleanup:
    """Cancel every run the suite started that is still going. Never part of the verdict.

    Runs the lifecycle monitor last saw in a terminal status are not asked about again: a
    terminal status never changes (LIFE-002), so they cannot be going (and most of the suite's
    runs are such: a quick run's 150 getRuns took ~0.4 s). The others are asked about side by side
    (session.fan_out): far from the server, hundreds of them one by one took a quarter of a run.
    """
    result = Cleanup(runs_started=len(session.started_runs))
    deadline = time.monotonic() + max(CLEANUP_BUDGET_S, session.request_timeout * 3)
    recorder = Recorder(secrets=session.secrets)
    pending = [(rid, client) for rid, client in session.started_runs.items() if not session.monitor.seen_terminal(rid)]
    lock = threading.Lock()
    unchecked: list[str] = []

    def settle(item: tuple[str, ApiClient]) -> None:
        run_id, client = item
        with lock:
            if len(result.errors) >= MAX_ERRORS or time.monotonic() >= deadline:
                unchecked.append(run_id)
                return
        api = copy.copy(client)
        api.recorder = recorder  # the same connections, recorded apart from every check
        outcome = _settle(api, run_id, session.monitor.terminal)
        with lock:
            if outcome is True:
                result.runs_cancelled += 1
            elif isinstance(outcome, str):
                result.errors.append(outcome)

    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, session.fan_out), thread_name_prefix="rc-cleanup"
    ) as pool:
        list(pool.map(settle, pending))
    if unchecked:
        why = f"after {MAX_ERRORS} errors" if len(result.errors) >= MAX_ERRORS else "at its deadline"
        result.errors.append(f"cleanup stopped {why}; {len(unchecked)} runs not checked")
    return result


def _settle(api: ApiClient, run_id: str, terminal: frozenset[str] | set[str]) -> bool | str | None:
    """Cancel one run if it is still going: True when cancelled, an error, or None (it had finished)."""
    try:
        response = api.get(f"/api/v1/runs/{run_id}")
        if response.status_code != 200:
            return f"run {run_id}: getRun answered {response.status_code}"
        data = response.json_or_none()
        if isinstance(data, dict) and data.get("status") in terminal:
            return None
        cancel = api.post(f"/api/v1/runs/{run_id}/cancel")
        return True if cancel.status_code == 202 else f"run {run_id}: cancelRun answered {cancel.status_code}"
    except Exception as exc:  # a broken server must not break the report
        return f"run {run_id}: {type(exc).__name__}: {exc}".splitlines()[0]
