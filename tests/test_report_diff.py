"""`runs-conformance diff OLD NEW`: newly failing, newly passing, and an exit code that gates a release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.diff import diff_reports, main
from conformance.report._demo import demo_report
from conformance.results import RunReport, Status


def with_statuses(**statuses: Status) -> RunReport:
    report = demo_report()
    for req in report.requirements:
        key = req.id.replace("-", "_")
        if key in statuses:
            req.status = statuses[key]
    return report


def save(tmp_path: Path, name: str, report: RunReport) -> Path:
    path = tmp_path / name
    report.write(path)
    return path


def test_the_same_run_has_no_differences() -> None:
    d = diff_reports(demo_report(), demo_report())
    assert (d.newly_failing, d.newly_passing, d.changed, d.added, d.removed) == ([], [], [], [], [])
    assert d.still_failing == 4  # three failures and one suite error
    assert d.exit_code == 0


def test_new_failures_fail_the_gate_and_fixes_are_listed() -> None:
    old = with_statuses(ERR_002=Status.PASSED)
    new = with_statuses(ERR_002=Status.FAILED, ERR_001=Status.PASSED, AUTH_001=Status.ERROR)
    d = diff_reports(old, new)
    assert [(c.id, c.old, c.new) for c in d.newly_failing] == [
        ("ERR-002", Status.PASSED, Status.FAILED),
        ("AUTH-001", Status.PASSED, Status.ERROR),
    ]
    assert [c.id for c in d.newly_passing] == ["ERR-001"]
    assert d.exit_code == 1


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (Status.PASSED, Status.WARNING, "changed"),  # a warning does not gate
        (Status.FAILED, Status.BASELINED, "changed"),  # accepted in NEW's baseline
        (Status.PASSED, Status.SKIPPED, "changed"),  # less coverage is listed, not gated
        (Status.PASSED, Status.NOT_RUN, "changed"),
        (Status.FAILED, Status.ERROR, "changed"),  # still failing, differently
        (Status.BASELINED, Status.FAILED, "newly_failing"),  # e.g. its baseline entry expired
        (Status.WARNING, Status.FAILED, "newly_failing"),  # e.g. NEW ran under --strict
        (Status.SKIPPED, Status.FAILED, "newly_failing"),
        (Status.WARNING, Status.PASSED, "newly_passing"),
        (Status.BASELINED, Status.PASSED, "newly_passing"),
        (Status.SKIPPED, Status.PASSED, "changed"),
    ],
)
def test_status_changes_are_classified(old: Status, new: Status, kind: str) -> None:
    d = diff_reports(with_statuses(LIFE_001=old), with_statuses(LIFE_001=new))
    for name in ("newly_failing", "newly_passing", "changed"):
        assert [c.id for c in getattr(d, name)] == (["LIFE-001"] if name == kind else []), name
    assert d.exit_code == (1 if kind == "newly_failing" else 0)


def test_added_and_removed_requirements() -> None:
    old, new = demo_report(), demo_report()
    old.requirements = [r for r in old.requirements if r.id != "LIFE-001"]
    new.requirements = [r for r in new.requirements if r.id not in {"LIFE-002", "LIFE-003"}]
    next(r for r in new.requirements if r.id == "LIFE-001").status = Status.FAILED
    d = diff_reports(old, new)
    assert [c.id for c in d.added] == ["LIFE-001"]
    assert [c.id for c in d.newly_failing] == ["LIFE-001"]  # a new requirement that fails is a new failure
    assert [c.id for c in d.removed] == ["LIFE-002", "LIFE-003"]


def test_the_command_prints_and_gates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = save(tmp_path, "old.json", demo_report())
    new_report = with_statuses(ERR_002=Status.FAILED, ERR_001=Status.PASSED)
    new_report.spec_sha256 = "0" * 64
    new = save(tmp_path, "new.json", new_report)
    assert main([str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "Newly failing: 1\n  ERR-002" in out
    assert "Newly passing: 1\n  ERR-001" in out
    assert "note: spec sha256 differs" in out
    assert "GATE FAILED: 1 new failure(s)" in out
    assert main([str(new), str(new)]) == 0
    assert "GATE PASSED" in capsys.readouterr().out
    assert main(["--json", str(old), str(new)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["newly_failing"] == [{"id": "ERR-002", "old": "passed", "new": "failed"}]
    assert data["exit_code"] == 1


def test_json_diff_lists_the_still_failing_and_the_newly_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = save(tmp_path, "old.json", with_statuses(ERR_002=Status.FAILED, ERR_001=Status.PASSED))
    new = save(tmp_path, "new.json", with_statuses(ERR_002=Status.FAILED, ERR_001=Status.NOT_RUN))
    main(["--json", str(old), str(new)])
    data = json.loads(capsys.readouterr().out)
    assert len(data["still_failing_ids"]) == data["still_failing"]  # the demo report fails a few of its own
    assert {"id": "ERR-002", "old": "failed", "new": "failed"} in data["still_failing_ids"]
    assert data["newly_not_run"] == [{"id": "ERR-001", "old": "passed", "new": "not_run"}]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read OLD"),
        ("{not json", "is not JSON"),
        ('{"schema_version": 99}', "not a runs-conformance result file"),
        ('{"schema_version": 1}', "not a runs-conformance result file (missing 'requirements')"),
        ("[]", "not a runs-conformance result file"),
    ],
)
def test_a_bad_file_is_exit_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = save(tmp_path, "good.json", demo_report())
    assert main([str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("runs-conformance diff: ")
    assert expected in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_the_cli_offers_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = pytest.importorskip("conformance.cli")
    path = save(tmp_path, "run.json", demo_report())
    assert cli.main(["diff", str(path), str(path)]) == 0
    assert "GATE PASSED" in capsys.readouterr().out
    assert cli.main(["diff", str(tmp_path / "absent.json"), str(path)]) == 2
    assert "cannot read OLD" in capsys.readouterr().err
