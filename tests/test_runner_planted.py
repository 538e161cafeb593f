"""Servers with one planted bug each: the suite fails exactly the requirements the bug breaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.planted_bugs import BUGS, planted_server

from conformance.cli import main

TOKEN = "rc-planted-SECRET-7f3a9c"
OTHER = "rc-planted-OTHER-SECRET-41b2"


@pytest.mark.parametrize("name", sorted(BUGS))
def test_planted_bug_fails_the_right_ids(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    bug = BUGS[name]
    monkeypatch.setenv("RUNS_TOKEN", TOKEN)
    monkeypatch.setenv("RUNS_OTHER_TOKEN", OTHER)
    with planted_server(name, [TOKEN, OTHER]) as url:
        argv = ["run", "--base-url", url, "--profile", "quick", "--report-dir", str(tmp_path)]
        code = main([*argv, "--strict", "--select", *bug.select])
    out, err = capsys.readouterr()
    report = json.loads((tmp_path / "conformance.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert code == 1, err
    for rid in bug.expected:
        assert statuses[rid] == "failed", (rid, statuses[rid], err[-2000:])
    assert "error" not in statuses.values()
    failed = next(r for r in report["requirements"] if r["id"] == bug.expected[0])
    exchanges = [x for e in failed["evidence"] for x in e["exchanges"]]
    assert exchanges, "a failure carries its exchanges"
    assert any("curl" in x["curl"] for x in exchanges)
    # Redaction: the tokens appear nowhere, neither in the report nor the transcript nor the output.
    everything = out + err + (tmp_path / "conformance.json").read_text() + (tmp_path / "exchanges.jsonl").read_text()
    assert TOKEN not in everything and OTHER not in everything
    assert "$RUNS_TOKEN" in json.dumps(report)


def test_a_should_failure_is_a_warning_without_strict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNS_TOKEN", TOKEN)
    with planted_server("no_405", [TOKEN, OTHER]) as url:
        code = main(
            ["run", "--base-url", url, "--profile", "quick", "--report-dir", str(tmp_path), "--select", "ERR-011"]
        )
    capsys.readouterr()
    report = json.loads((tmp_path / "conformance.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses["ERR-011"] == "warning"
    assert code == 0
    assert report["verdict"] == "conformant"
