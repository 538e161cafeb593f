"""What a run covered, a gate on it, findings that keep their identity across seeds, and the event stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.harness import run_suite, run_suite_at
from support.servers import build

from conformance.coverage import documented_responses
from conformance.diff import diff_reports
from conformance.events import EVENT_KINDS
from conformance.results import RunReport

pytestmark = pytest.mark.slow


def _fault(name: str) -> object:
    return build(name)


def test_a_quick_run_observes_every_documented_response(reference_url: str, tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    run = run_suite_at(
        reference_url, "--profile", "quick", "--require-coverage", "--seed", "3", "--events", str(events)
    )
    assert run.exit_code == 0, run.explain()
    assert run.report is not None
    responses = run.report["coverage"]["responses"]
    documented = [(r["operation"], r["status"]) for r in responses if r["documented"]]
    assert documented == list(documented_responses())
    assert all(r["observed"] > 0 for r in responses if r["documented"]), [r for r in responses if not r["observed"]]
    assert {h["name"] for h in run.report["coverage"]["headers"]} == {"ETag", "Location", "WWW-Authenticate"}
    assert all(h["seen"] and h["checked"] for h in run.report["coverage"]["headers"])
    assert run.report["coverage"]["requirements"]["IDEM-001"] >= 1
    assert "coverage: 19 of 19 documented responses observed" in run.stderr
    # The stream: one JSON object a line, typed, in the order the run went.
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").split("\n") if line]
    kinds = [line["event"] for line in lines]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert set(kinds) <= set(EVENT_KINDS) and {"check_started", "check_finished", "requirement"} <= set(kinds)
    assert lines[-1]["verdict"] == "conformant" and lines[-1]["exit_code"] == 0


def test_the_coverage_gate_fails_a_server_that_never_answers_304(tmp_path: Path) -> None:
    args = ("--profile", "quick", "--require-coverage", "--seed", "5")
    run = run_suite(_fault("etag-if-none-match-ignored"), *args)
    assert run.exit_code == 1, run.explain()
    assert run.report is not None
    assert "1 documented response never observed: getRunDefinition 304" in run.report["reason"], run.report["reason"]
    # Accepting the gap (and the failure it comes from) in the baseline takes the gate's reason away.
    # The failure's entry is the report's own, paste-ready: it names the fingerprints it accepts.
    etag_005 = next(r for r in run.report["requirements"] if r["id"] == "ETAG-005")
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(
        "- {id: 'response:getRunDefinition:304', reason: no conditional GETs yet, expires: 2099-01-01}\n"
        + etag_005["baseline_entry"],
        encoding="utf-8",
    )
    accepted = run_suite(_fault("etag-if-none-match-ignored"), *args, "--baseline", str(baseline))
    assert accepted.exit_code == 0, accepted.explain()


@pytest.mark.parametrize("fault", ["idem-keys-case-folded", "etag-strong", "page-empty-cursor-on-last-page"])
def test_findings_keep_their_fingerprints_across_seeds(fault: str, tmp_path: Path) -> None:
    runs = []
    for seed in ("11", "12"):
        run = run_suite(_fault(fault), "--profile", "quick", "--select", "idempotency", "etag", "pagination",
                        "--seed", seed, report_dir=tmp_path / seed)  # fmt: skip
        assert run.exit_code == 1 and run.report is not None, run.explain()
        runs.append(run.report)
    prints = [
        {(r["id"], e["fingerprint"]) for r in report["requirements"] if r["status"] == "failed" for e in r["evidence"]}
        for report in runs
    ]
    assert prints[0] and prints[0] == prints[1]
    # The release gate: the second seed found no new defect.
    old, new = (RunReport.from_json(report) for report in runs)
    assert diff_reports(old, new).newly_failing == []
