"""The CLI's contract without a working server: usage errors, unreachable servers, catalog coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.hostile_servers import closed_port

from conformance.catalog import Level, catalog
from conformance.cli import main
from conformance.registry import registered_checks


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--profile", "fast"], "unknown profile 'fast'"),
        (["--select", "NOPE-001"], "--select 'NOPE-001'"),
        (["--fixtures", "/nonexistent/fixtures.yaml"], "cannot read fixtures file"),
        (["--base-url", "ftp://example.com", "--token", "t"], "--base-url must be an http"),
        (["--base-url", "localhost:8080", "--token", "t"], "--base-url must be an http"),
        (["--base-url", "http://127.0.0.1:9"], "no token"),
        (["--timeout", "0"], "--timeout"),
        (["--request-timeout", "-1"], "--request-timeout"),
        (["--seed", "banana"], "--seed"),
        (["--seed", "-5"], "--seed must be between"),
        (["--baseline", "/nonexistent/baseline.yaml"], "baseline"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], needle: str
) -> None:
    monkeypatch.delenv("RUNS_TOKEN", raising=False)
    code, out, err = _run(capsys, "run", "--report-dir", str(tmp_path), *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err + out
    assert not (tmp_path / "conformance.json").exists()  # nothing ran


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys)
    assert code == 2
    assert "give a command" in err


def test_unreachable_server_exits_3_and_writes_a_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, err = _run(capsys, "run", "--base-url", url, "--token", "t", "--report-dir", str(tmp_path))
    assert code == 3
    assert "cannot reach" in err
    assert "Traceback" not in err + out
    report = json.loads((tmp_path / "conformance.json").read_text())
    assert report["verdict"] == "unreachable"
    assert report["exit_code"] == 3
    assert report["base_url"] == url
    assert {r["status"] for r in report["requirements"]} == {"skipped"}
    assert len(report["requirements"]) == len(catalog())


def test_every_must_has_a_check_and_every_check_names_real_ids() -> None:
    checks = registered_checks()
    known = catalog()
    covered = {rid for c in checks for rid in c.requirements}
    for c in checks:
        assert c.requirements, f"{c.name} names no requirement"
        unknown = [rid for rid in c.requirements if rid not in known]
        assert not unknown, f"{c.name} names {unknown}, which the catalog lacks"
    uncovered_must = [r.id for r in known.values() if r.level is Level.MUST and r.id not in covered]
    assert not uncovered_must, f"MUST requirements no check verifies: {uncovered_must}"
    uncovered = [r.id for r in known.values() if r.id not in covered]
    assert not uncovered, f"requirements no check verifies: {uncovered}"


def test_schemathesis_failure_map_names_real_ids() -> None:
    from conformance import schema_phase as schema

    known = catalog()
    for ids in (
        *schema.FAILURE_MAP.values(),
        *schema.NEGATIVE_PARAMETER_MAP.values(),
        *schema.NEGATIVE_OPERATION_MAP.values(),
    ):
        for rid in ids:
            assert rid in known


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["run", "--help"]) == 0
    out, _ = capsys.readouterr()
    assert "--base-url" in out
