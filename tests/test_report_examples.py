"""The CI examples in examples/: valid YAML that starts a server, runs the suite, keeps the reports and gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from support.tooling import ROOT

from conformance.cli import build_parser

EXAMPLES = ROOT / "examples"


def load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def commands(text: str) -> list[str]:
    return [
        line.strip() for line in text.splitlines() if "runs-conformance " in line or "runs-reference-server" in line
    ]


def check_run_command(script: str) -> None:
    """The suite's command line in the example parses with the real CLI."""
    [line] = [c for c in commands(script) if c.startswith("runs-conformance run")]
    argv = line.replace('"$BASE_URL"', "http://127.0.0.1:8080").split()[1:]
    args = build_parser().parse_args(argv)
    assert args.base_url == "http://127.0.0.1:8080"
    assert args.report_dir == Path("reports")


def test_github_actions_example() -> None:
    workflow = load("github-actions.yml")
    assert workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    steps = workflow["jobs"]["conformance"]["steps"]
    by_name = {s.get("name", s.get("uses")): s for s in steps}
    script = "\n".join(s.get("run", "") for s in steps)
    assert "runs-reference-server --port 8080" in script
    assert "--retry-max-time 60" in script  # a bounded wait, never a hang
    check_run_command(by_name["Run the conformance suite"]["run"])
    assert "continue-on-error" not in by_name["Run the conformance suite"]  # its exit code gates the job
    upload = by_name["Upload the reports"]
    assert upload["if"] == "always()" and upload["uses"].startswith("actions/upload-artifact@")
    assert "reports/" in upload["with"]["path"]
    diff = by_name["Compare with the last release"]["run"]
    assert "runs-conformance diff last-release/conformance.json reports/conformance.json" in diff
    assert 'exit "$code"' in diff  # the diff's exit code is not swallowed by a pipe


def test_gitlab_ci_example() -> None:
    pipeline = load("gitlab-ci.yml")
    job = pipeline["runs-conformance"]
    before, script = "\n".join(job["before_script"]), "\n".join(job["script"])
    assert "runs-reference-server --port 8080" in before
    assert "--retry-max-time 60" in before
    check_run_command(script)
    assert job["artifacts"]["when"] == "always"
    assert "reports/" in job["artifacts"]["paths"]
    assert job["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert "runs-conformance diff last-release.json reports/conformance.json" in script
    assert "allow_failure" not in job


def test_the_ci_gate_doc_shows_both_examples() -> None:
    text = (ROOT / "docs" / "ci-gate.md").read_text(encoding="utf-8")
    for needle in ("examples/github-actions.yml", "examples/gitlab-ci.yml", "--baseline", "runs-conformance diff"):
        assert needle in text, needle
