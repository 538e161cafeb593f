"""examples/github-pr-comment.yml: valid for GitHub, only well-known actions for artifacts and the
comment (no hand-written API calls), and its comparison step, run, writes the comment the diff makes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from support.ci_steps import load_yaml, run_bash, schema_errors, substitute
from support.tooling import ROOT

EXAMPLE = ROOT / "examples" / "github-pr-comment.yml"
REPORTS = ROOT / "tests" / "data" / "reports"


def steps() -> dict[str, dict[str, Any]]:
    workflow: Any = load_yaml(EXAMPLE)
    return {s.get("name", s.get("uses")): s for s in workflow["jobs"]["conformance"]["steps"]}


def test_the_pr_comment_workflow_is_valid_for_github() -> None:
    assert schema_errors("github-workflows", load_yaml(EXAMPLE)) == []


def test_it_uses_well_known_actions_and_no_hand_written_api_calls() -> None:
    by_name = steps()
    assert by_name["Run the conformance suite"]["uses"].endswith("/runs-conformance@v1")
    assert by_name["Download main's reports"]["uses"].startswith("dawidd6/action-download-artifact@")
    comment = by_name["Comment on the pull request"]
    assert comment["uses"].startswith("marocchino/sticky-pull-request-comment@")
    assert comment["with"]["path"] == "conformance-comment.md" and comment["with"]["header"]  # one comment, updated
    scripts = "\n".join(s.get("run", "") for s in by_name.values())
    for call in ("curl", "gh api", "api.github.com"):
        assert call not in scripts


def _compare(tmp_path: Path, old: str | None, new: str) -> int:
    step = steps()["Compare with main"]
    values = {
        "steps.conformance.outputs.report-dir": "conformance-reports",
        "github.server_url": "https://github.example",
        "github.repository": "acme/server",
        "github.run_id": "42",
    }
    (tmp_path / "conformance-reports").mkdir()
    shutil.copy(REPORTS / f"{new}.json", tmp_path / "conformance-reports" / "conformance.json")
    if old is not None:
        (tmp_path / "base-reports").mkdir()
        shutil.copy(REPORTS / f"{old}.json", tmp_path / "base-reports" / "conformance.json")
    env = {**os.environ, **{k: substitute(str(v), values) for k, v in step["env"].items()}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this checkout's runs-conformance
    return run_bash(substitute(step["run"], values), env, tmp_path).code


def test_the_comparison_step_writes_the_markdown_diff(tmp_path: Path) -> None:
    assert _compare(tmp_path, "auth-401-without-challenge", "auth-missing-token-accepted") == 0
    comment = (tmp_path / "conformance-comment.md").read_text(encoding="utf-8")
    assert "### New failures: 2" in comment and "### Fixed: 1" in comment
    assert "(https://github.example/acme/server/actions/runs/42)" in comment


def test_without_mains_report_the_comment_says_so(tmp_path: Path) -> None:
    assert _compare(tmp_path, None, "auth-missing-token-accepted") == 0
    comment = (tmp_path / "conformance-comment.md").read_text(encoding="utf-8")
    assert "Nothing to compare yet" in comment
