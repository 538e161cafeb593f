"""The suite against the bundled reference server: it must pass at every profile, the same way twice."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _report(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((path / "conformance.json").read_text())
    return data


def _assert_green(code: int, err: str, report: dict[str, object]) -> None:
    failing = [
        (r["id"], r["status"], r["message"])
        for r in report["requirements"]  # type: ignore[attr-defined]
        if r["status"] not in ("passed", "not_selected")
    ]
    assert code == 0, (failing, err[-3000:])
    assert report["verdict"] == "conformant"
    assert not failing, failing


def test_quick_profile_passes_the_bundled_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code = main(["run", "--profile", "quick", "--report-dir", str(tmp_path)])
    assert not list(cwd.iterdir()), "nothing (.hypothesis, .schemathesis) is written into the working directory"
    _, err = capsys.readouterr()
    report = _report(tmp_path)
    _assert_green(code, err, report)
    assert {r["status"] for r in report["requirements"]} == {"passed"}  # type: ignore[attr-defined]
    seed = report["seed"]
    assert f"seed {seed}" in err and f"--seed {seed}" in err
    assert "Traceback" not in err
    for key in ("verdict", "seed", "suite_version", "spec_version", "base_url", "requirements", "cleanup"):
        assert key in report
    first = report["requirements"][0]  # type: ignore[index]
    assert {"id", "level", "area", "status", "message", "rerun"} <= set(first)
    assert "--seed" in first["rerun"] and "--select" in first["rerun"]


@pytest.mark.slow
def test_default_profile_passes_the_bundled_server(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["run", "--profile", "default", "--report-dir", str(tmp_path)])
    _, err = capsys.readouterr()
    _assert_green(code, err, _report(tmp_path))


@pytest.mark.slow
def test_thorough_profile_passes_the_bundled_server_on_a_subset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The whole thorough profile takes minutes; CI runs two operations of its schema phase, auth and ERR-010.
    code = main(
        [
            "run", "--profile", "thorough", "--report-dir", str(tmp_path),
            "--select", "schemathesis_get_run", "schemathesis_cancel_run", "auth", "ERR-010",
        ]
    )  # fmt: skip
    _, err = capsys.readouterr()
    _assert_green(code, err, _report(tmp_path))


# The schema phase and the hand-written error checks; the pagination and lifecycle checks poll,
# so how many requests they make depends on timing, not on the seed.
DETERMINISM_SELECT = ("schemathesis_start_run", "schemathesis_list_runs", "schemathesis_get_run", "errors")
_VOLATILE = [
    (re.compile(r"rc-[0-9a-f]{8}"), "rc-SESSION"),
    (re.compile(r"run_[A-Za-z0-9_-]+"), "run_ID"),
    (re.compile(r"rc-invalid-[0-9a-f]+"), "rc-invalid-X"),
    (re.compile(r"run_rc_[0-9a-f]+"), "run_rc_X"),
    (re.compile(r"rc-unknown-[0-9a-f]+"), "rc-unknown-X"),  # CheckContext.unknown_run_ids: random on purpose
    (re.compile(r"cursor=ey[^&\s]+"), "cursor=ISSUED"),  # cursors the server issued are its own data
    # Near misses of a runId the server issued (its suffix, its other case) are the server's data too.
    (re.compile(r"/un_[A-Za-z0-9]+"), "/un_ID"),
    (re.compile(r"RUN_[A-Za-z0-9]+"), "RUN_ID"),
]


def _normalise(exchange: dict[str, str]) -> str:
    text = f"{exchange['check']} {exchange['method']} {exchange['url']} {exchange['request_body'] or ''}"
    text = re.sub(r"http://127\.0\.0\.1:\d+", "URL", text)
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.slow
def test_same_seed_under_ci_makes_the_same_requests(tmp_path: Path) -> None:
    # Separate processes, as in CI: Hypothesis draws some strings from the loaded modules' constants.
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    runs: list[list[str]] = []
    for attempt in range(2):
        out = tmp_path / str(attempt)
        argv = [
            "run",
            "--profile",
            "quick",
            "--seed",
            "4242",
            "--report-dir",
            str(out),
            "--select",
            *DETERMINISM_SELECT,
        ]
        done = subprocess.run(
            [sys.executable, "-m", "conformance.cli", *argv], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        lines = (out / "exchanges.jsonl").read_text(encoding="utf-8").splitlines()
        runs.append([_normalise(json.loads(line)) for line in lines])
    assert len(runs[0]) > 100
    assert runs[0] == runs[1]
