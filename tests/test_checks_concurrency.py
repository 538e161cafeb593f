"""The evidence checks/concurrency.py draws around a finding: the proof, and what shows why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from support.check_runs import explain, run_named_check
from support.faults_stall import STALL_REQUEST_TIMEOUT_S
from support.servers import serve

from conformance.checks.concurrency import CONC_IDS, _timeline
from conformance.history import History, Kind, Operation
from conformance.history_checker import check_history
from conformance.session import Session


def _op(index: int, kind: Kind, client: int, t0: float, t1: float, status: int, **facts: Any) -> Operation:
    return Operation(index, client, "primary", kind, t0 / 1000, t1 / 1000, status=status, **facts)


def _run(run_id: str, status: str) -> dict[str, Any]:
    return {"runId": run_id, "clientId": "etl", "status": status, "cancelRequestedAt": None, "finishedAt": None}


def test_a_finding_proven_by_listings_draws_the_runs_other_operations() -> None:
    # A cancel that overwrote a finished run, proven by two listRuns pages: neither names the run, yet
    # the cancel between them is what shows why, and must be on the timeline; another run's read is not.
    history = History(
        [
            _op(0, "startRun", 1, 0, 1, 202, body={"runId": "57", "status": "queued"}, client_id="etl"),
            _op(1, "listRuns", 2, 2, 3, 200, body={"items": [_run("57", "succeeded")], "nextCursor": None}),
            _op(2, "cancelRun", 3, 2.5, 5, 202, run_id="57", body={"runId": "57", "status": "cancelled"}),
            _op(3, "getRun", 5, 2, 4, 200, run_id="58", body=_run("58", "running")),
            _op(4, "listRuns", 4, 6, 7, 200, body={"items": [_run("57", "cancelled")], "nextCursor": None}),
        ]
    )
    (finding,) = [f for f in check_history(history) if f.requirement_id == "CONC-006"]
    assert (finding.operations, finding.run_id) == ((1, 4), "57")
    drawn = {entry.index: entry.highlight for entry in _timeline(history, finding)}
    assert drawn == {0: False, 1: True, 2: False, 4: True}


def test_requests_that_got_no_answer_are_err_001_failures_naming_them(make_session: Callable[..., Session]) -> None:
    # Every third getRun of a run stalls past the request timeout: the workload's reads go unanswered.
    with serve("stalls-every-third-get") as url:
        session = make_session(url, request_timeout=STALL_REQUEST_TIMEOUT_S)
        session.workload_clients, session.workload_seconds = 4, 2.0
        run = run_named_check("concurrent_history", session)
    assert run.failed("ERR-001"), explain(run)
    (evidence,) = run.evidence["ERR-001"]
    assert "getRun requests got no answer: op #" in evidence.message and "ReadTimeout" in evidence.message, evidence
    assert any(entry.highlight and entry.completed is None for entry in evidence.timeline), evidence.timeline
    assert not [rid for rid in CONC_IDS if run.failed(rid)], explain(run)  # a stall is no contradiction
