"""The disruption hook (--disrupt): a server restarted mid-workload, judged with the failures around it
indeterminate; a server that keeps its key records in memory is caught only across the restart.

The servers here are processes (tests/support/faults_disrupt.py), each with its SQLite file, and
the disrupt command kills one and starts it again on the same port, as a user's script would
(tests/support/restarts.py). The correct variants whose state crosses a restart are held to --strict
across one too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.check_runs import assert_caught, assert_passed, explain, open_session, run_named_check
from support.harness import quick_args, run_suite_at
from support.restarts import restart_args, served, unproven_restart

from conformance.catalog import catalog
from conformance.config import RunConfig
from conformance.execution import CheckRun
from conformance.final_reads import REQUIREMENTS as FINAL_READS
from conformance.history import Disruption, History, Operation
from conformance.history_checker import check_history
from conformance.history_disruption import DisruptionPlan, judged
from conformance.options import UsageError
from conformance.outcomes import Outcome

WORKLOAD_SECONDS = 4.0
DISRUPT_AT = 1.5


def _run(url: str, plan: DisruptionPlan | None) -> tuple[CheckRun, History]:
    with open_session(url, profile="quick") as session:
        session.workload_seconds = WORKLOAD_SECONDS
        session.disruption = plan
        run = run_named_check("concurrent_history", session)
        return run, session.histories[-1]


def _assert_disrupted(history: History) -> Disruption:
    """The command ran, succeeded, the server came back, and some requests did fail around it: otherwise
    the test proved nothing about a restart."""
    disruption = history.disruption
    assert disruption is not None and disruption.exit_code == 0, disruption
    assert disruption.answering is not None, disruption
    assert any(op.indeterminate for op in history.operations), "no request failed: was the server restarted?"
    assert any(op.answered and op.invoked > disruption.window_end for op in history.operations)
    return disruption


@pytest.mark.slow
def test_the_reference_server_restarted_mid_workload_is_conformant(tmp_path: Path) -> None:
    with served(["--fault", "none"], tmp_path) as (url, restart):
        run, history = _run(url, DisruptionPlan(restart, at=DISRUPT_AT, grace=1.0, wait=20))
    _assert_disrupted(history)
    assert_passed(run)
    assert run.statuses().get("ERR-001") is not Outcome.FAILED


@pytest.mark.slow
def test_keys_in_memory_pass_without_a_disruption_and_fail_across_one(tmp_path: Path) -> None:
    with served(["--fault", "keys-in-memory"], tmp_path) as (url, restart):
        calm, _ = _run(url, None)
        assert_passed(calm)
        disrupted, history = _run(url, DisruptionPlan(restart, at=DISRUPT_AT, grace=1.0, wait=20))
    _assert_disrupted(history)
    assert_caught(disrupted, {"CONC-001"}, cites_id=False)
    # The restart between the key's two answers is on the finding's timeline: it is why they differ.
    lanes = [entry for entry in disrupted.evidence["CONC-001"][0].timeline if entry.kind.startswith("disrupt: ")]
    assert [entry.status for entry in lanes] == [0]


@pytest.mark.slow
def test_a_cursor_secret_per_process_passes_without_a_disruption_and_fails_across_one(tmp_path: Path) -> None:
    # page_sizes walks (cursors issued), then the workload with the restart (--disrupt puts it after the
    # other checks), then the final reads: the cursors issued before the restart are 400 after it.
    select = ("PAGE-011", "concurrent_history")
    with served(["--fault", "cursor-secret-per-process"], tmp_path) as (url, restart):
        calm = run_suite_at(url, *quick_args(select), report_dir=tmp_path / "calm")
        disrupted = run_suite_at(url, *quick_args(select, *restart_args(restart)), report_dir=tmp_path / "r")
    assert calm.exit_code == 0 and calm.status("PAGE-011") == "passed", calm.explain()
    assert unproven_restart(tmp_path / "r") is None, f"{unproven_restart(tmp_path / 'r')}\n{disrupted.explain()}"
    assert disrupted.ids_with("failed") == ["PAGE-011"], disrupted.explain()
    assert disrupted.report is not None
    (page_011,) = (req for req in disrupted.report["requirements"] if req["id"] == "PAGE-011")
    assert {evidence["check"] for evidence in page_011["evidence"]} == {"final_reads"}, disrupted.explain()


@pytest.mark.slow
def test_a_server_that_does_not_come_back_fails_err_001(tmp_path: Path) -> None:
    with served(["--fault", "none"], tmp_path) as (url, restart):
        stop = restart.rsplit("; ", 1)[0]  # the kill and the wait for the process to be gone: nothing starts it again
        run, history = _run(url, DisruptionPlan(stop, at=0.5, grace=0.5, wait=4.0))
    assert history.disruption is not None and history.disruption.answering is None
    assert run.statuses()["ERR-001"] is Outcome.FAILED, explain(run)
    assert any("did not answer within --disrupt-wait 4 s" in e.message for e in run.evidence["ERR-001"])
    # Every request after the command is indeterminate (the window never closed): none is an ERR-001 of its own.
    assert all("got no answer" not in e.message for e in run.evidence["ERR-001"])


# The correct variants with state that crosses a restart, each with the areas where it differs from the
# reference: IDs from a counter that must go on after the newest run (and their 404s), cursors signed
# with a secret that must outlive the process, keys held while in flight, runs settled before the 202,
# reads from replicas whose log must outlive the primary's process. Each run selects those areas, the
# concurrency area (the workload the restart interrupts) and the final reads' IDs (what must last
# across it): a full quick run each would cost about twice as much CI time. Every variant, the whole
# quick profile, with and without a restart: scripts/flake_check.py --variants --restart.
RESTARTED_VARIANTS: dict[str, tuple[str, ...]] = {
    "sequential-run-ids": ("pagination", "ERR-010"),
    "other-encodings": ("pagination", "ERR-010"),
    "lenient-cursors": ("pagination",),
    "in-flight-conflicts": ("idempotency",),
    "settled-before-answer": ("lifecycle", "cancel"),
    "snapshot-reads": ("pagination", "lifecycle"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RESTARTED_VARIANTS))
def test_a_correct_variant_restarted_mid_workload_is_conformant(name: str, tmp_path: Path) -> None:
    """--strict, quick: the workload around the restart, the variant's areas and the final reads after it,
    against what the variant kept in its file."""
    report_dir = tmp_path / "report"
    select = ("concurrency", *FINAL_READS, *RESTARTED_VARIANTS[name])
    with served(["--variant", name], tmp_path) as (url, restart):
        run = run_suite_at(url, *quick_args(select, *restart_args(restart)), report_dir=report_dir)
    assert unproven_restart(report_dir) is None, f"{unproven_restart(report_dir)}\n{run.explain()}"
    bad = run.ids_with("failed", "warning", "error", "skipped", "not_run")
    assert run.exit_code == 0 and not bad, f"{name}: {bad}\n{run.explain()}"
    must_pass = {*FINAL_READS, *(rid for rid, item in catalog().items() if item.area == "concurrency")}
    assert must_pass <= set(run.ids_with("passed")), run.explain()


def test_a_failing_command_skips_the_concurrency_ids_with_its_output(reference_url: str) -> None:
    with open_session(reference_url, profile="quick") as session:
        session.workload_seconds = 1.0
        session.disruption = DisruptionPlan("echo no such deployment >&2; exit 3", at=0.2)
        run = run_named_check("concurrent_history", session)
    statuses = run.statuses()
    assert statuses["CONC-001"] is Outcome.SKIPPED
    assert not any(outcome is Outcome.PASSED for rid, outcome in statuses.items() if rid.startswith("CONC-"))
    reason = str(run.outcomes)
    assert "exited 3" in reason and "no such deployment" in reason


def _op(index: int, invoked: float, completed: float | None, **facts: object) -> Operation:
    error = None if completed is not None else "ConnectError: refused"
    return Operation(index, 0, "primary", "getRun", invoked, completed, error=error, **facts)  # type: ignore[arg-type]


def test_the_window_runs_from_the_command_to_the_answer_plus_grace() -> None:
    done = Disruption("x", started=10.0, ended=11.0, exit_code=0, output="", answering=12.0, grace=2.0, wait=30)
    assert not done.covers(9.99) and done.covers(10.0) and done.covers(14.0) and not done.covers(14.01)
    lost = Disruption("x", started=10.0, ended=11.0, exit_code=0, output="", answering=None, grace=2.0, wait=30)
    assert lost.covers(1e9)


def test_options_need_the_command_and_a_server_it_can_restart() -> None:
    with pytest.raises(UsageError, match="--disrupt-at without --disrupt"):
        RunConfig(base_url="http://x", token="t", disrupt_at=3.0).validate()
    with pytest.raises(UsageError, match="--disrupt needs --base-url"):
        RunConfig(disrupt="docker restart api").validate()
    config = RunConfig(base_url="http://x", token="t", disrupt="docker restart api", disrupt_grace=0.0)
    config.validate()
    assert config.disruption_plan() == DisruptionPlan("docker restart api", at=None, grace=0.0, wait=30.0)
    assert RunConfig.from_sources({}, env={"RUNS_DISRUPT": "true"}).disruption_plan() == DisruptionPlan("true")


def _start(index: int, t0: float, t1: float | None, run_id: str, fp: str = "A") -> Operation:
    if t1 is None:  # lost in the disruption: no answer, and not the server's transport error
        return Operation(index, 0, "primary", "startRun", t0, None, key="k", body_fingerprint=fp, client_id="etl",
                         error="ConnectError: refused", indeterminate=True)  # fmt: skip
    body = {"runId": run_id, "status": "queued"}
    return Operation(index, 0, "primary", "startRun", t0, t1, 202, key="k", body_fingerprint=fp, client_id="etl",
                     body=body)  # fmt: skip


def test_a_start_whose_answer_was_lost_may_have_made_the_run_a_walk_and_a_replay_show() -> None:
    lost = _start(0, 1.0, None, "")
    replay = _start(1, 5.0, 5.1, "57")
    shown = {"items": [{"runId": "57", "clientId": "etl", "status": "queued"}], "nextCursor": None}
    page = Operation(2, 1, "primary", "listRuns", 5.2, 5.3, 200, query={"clientId": "etl"}, walk=1, page=0, body=shown)
    assert check_history(History([lost, replay, page])) == []


def test_a_lost_answer_excuses_nothing_about_a_key_answered_before_it() -> None:
    first = _start(0, 0.0, 0.1, "57")
    lost = _start(1, 1.0, None, "")
    after = _start(2, 5.0, 5.1, "58")  # the restart forgot the key: a second run for it
    assert {finding.requirement_id for finding in check_history(History([first, lost, after]))} == {"CONC-001"}


def test_only_failures_inside_the_window_are_indeterminate() -> None:
    window = Disruption("x", started=10.0, ended=11.0, exit_code=0, output="", answering=12.0, grace=2.0, wait=30)
    before, inside, after = (_op(0, 9.0, None), _op(1, 9.5, None), _op(2, 14.5, None))
    assert not judged(before, window, failed_at=9.9).indeterminate  # ERR-001 still holds before the command
    assert judged(inside, window, failed_at=10.5).indeterminate  # sent before, failed during: it counts
    assert not judged(after, window, failed_at=14.6).indeterminate  # past the grace: the server's failure again
    proxy = judged(_op(3, 11.0, 11.1, status=502), window, failed_at=11.1)
    assert proxy.indeterminate and proxy.completed is None and proxy.error == "answered 502"
    forgot = _op(4, 12.5, 12.6, status=404)  # an answer in the window stays one: a forgotten run is the point
    assert judged(forgot, window, failed_at=12.6) is forgot
    assert not judged(_op(5, 20.0, 20.1, status=503), window, failed_at=20.1).indeterminate


def test_the_record_for_conformance_json_counts_from_the_history_start() -> None:
    done = Disruption("x", started=10.0, ended=11.5, exit_code=0, output="ok", answering=12.0, grace=2.0, wait=30)
    record = done.as_record(start=8.0)
    assert (record["started_s"], record["command_s"], record["answering_after_s"], record["window_end_s"]) == (
        2.0,
        1.5,
        0.5,
        6.0,
    )
    lost = Disruption("x", started=10.0, ended=11.5, exit_code=None, output="", answering=None, grace=2.0, wait=30)
    assert lost.as_record(start=8.0)["answering_after_s"] is None and lost.as_record(8.0)["exit_code"] is None


def _report(directory: Path, disruptions: list[dict[str, object]], ops: list[dict[str, object]]) -> Path:
    (directory / "conformance.json").write_text(json.dumps({"disruptions": disruptions}), encoding="utf-8")
    (directory / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops), encoding="utf-8")
    return directory


def test_a_restart_is_proven_only_by_a_request_lost_around_it_and_one_answered_after(tmp_path: Path) -> None:
    done = {"exit_code": 0, "window_end_s": 2.5}
    lost = {"invoked_ms": 1500.0, "completed_ms": None, "indeterminate": True}
    after = {"invoked_ms": 2600.0, "completed_ms": 2610.0, "indeterminate": False}
    assert unproven_restart(_report(tmp_path, [done], [lost, after])) is None
    assert unproven_restart(_report(tmp_path, [], [lost, after])) == "0 disruptions recorded, not one"
    assert "did not come back" in str(unproven_restart(_report(tmp_path, [{**done, "window_end_s": None}], [lost])))
    # A command that restarted nothing (`true`): every request answered, none indeterminate.
    assert "no request failed" in str(unproven_restart(_report(tmp_path, [done], [after])))
    assert "after the disruption" in str(unproven_restart(_report(tmp_path, [done], [lost])))
