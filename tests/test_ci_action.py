"""action.yml, run: every `run:` step of the composite action, with its inputs substituted as GitHub
does, against a served server (the `uses:` steps, setup-python and upload-artifact, are GitHub's).

The install step really runs `pip install "$GITHUB_ACTION_PATH"` on this checkout (into a fresh
environment that sees the tests' packages, offline), and the suite that runs is the one it installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.ci_steps import (
    base_environment,
    load_yaml,
    offline_python,
    read_outputs,
    run_bash,
    schema_errors,
    substitute,
)
from support.servers import serve
from support.tokens import OTHER_TOKEN, TOKEN, TOKENS
from support.tooling import ROOT

from reference_impl.app import create_app

ACTION = ROOT / "action.yml"


def action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment after the action's install step ran: its `python` and `runs-conformance` first on PATH."""
    home = tmp_path_factory.mktemp("action-python")
    bin_dir, pip_env = offline_python(home / "py")
    env = {**base_environment(), **pip_env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["GITHUB_ACTION_PATH"] = str(ROOT)
    [install] = [s for s in action()["runs"]["steps"] if s.get("name") == "Install the conformance suite"]
    result = run_bash(substitute(install["run"], {}), env, home, timeout=180)
    assert result.code == 0, result.output
    assert (bin_dir / "runs-conformance").exists(), "the install step installed no runs-conformance command"
    return env


def run_action(env: dict[str, str], workspace: Path, inputs: dict[str, str]) -> tuple[list[int], dict[str, str]]:
    """Run the action's steps after the install one, as a job would; return each step's exit code and the outputs."""
    spec = action()
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in spec["inputs"].items()}
    values.update({f"inputs.{k}": v for k, v in inputs.items()})
    files = {name: workspace / f"{name.lower()}.txt" for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV")}
    codes: list[int] = []
    failed = False
    outputs: dict[str, str] = {}
    for step in spec["runs"]["steps"]:
        if "uses" in step or step.get("name") == "Install the conformance suite":
            continue
        condition = step.get("if")
        assert condition in (None, "always()"), f"an if: the tests do not evaluate: {condition}"
        if failed and condition is None:
            continue
        assert step["shell"] == "bash"
        files["GITHUB_OUTPUT"].unlink(missing_ok=True)  # each step has its own outputs file
        step_env = {**env, **{str(k): str(v) for k, v in files.items()}}
        step_env.update({k: substitute(str(v), values) for k, v in step.get("env", {}).items()})
        result = run_bash(substitute(step["run"], values), step_env, workspace)
        codes.append(result.code)
        failed = failed or result.code != 0
        if "id" in step:
            for name, value in read_outputs(files["GITHUB_OUTPUT"]).items():
                values[f"steps.{step['id']}.outputs.{name}"] = value
                outputs[name] = value
    return codes, outputs


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def test_the_action_declares_what_the_brief_promises() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    for name in ("base-url", "token", "other-token", "profile", "baseline", "select", "workers", "args"):
        assert name in spec["inputs"], name
    uses = [s["uses"] for s in spec["runs"]["steps"] if "uses" in s]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    upload = next(s for s in spec["runs"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    names = [s.get("name") for s in spec["runs"]["steps"]]
    # The job fails last: after the summary (written by the suite's step) and after the upload.
    assert names[-1] == "Fail the job on the suite's exit code"
    assert names.index(upload["name"]) < len(names) - 1 and upload["if"] == "always()"
    # The tokens reach the suite through its environment, never its command line.
    suite = next(s for s in spec["runs"]["steps"] if s.get("id") == "suite")
    assert "inputs.token" not in suite["run"] and "inputs.other-token" not in suite["run"]


def test_the_action_is_valid_for_github() -> None:
    assert schema_errors("github-actions", load_yaml(ACTION)) == []
    broken = action()
    del broken["runs"]["steps"][1]["shell"]  # a composite step's run needs a shell: the schema must say so
    assert schema_errors("github-actions", broken)


def test_the_action_passes_a_conformant_server(installed: dict[str, str], workspace: Path) -> None:
    with serve(create_app(list(TOKENS))) as url:
        codes, outputs = run_action(
            installed,
            workspace,
            {"base-url": url, "token": TOKEN, "other-token": OTHER_TOKEN, "profile": "quick", "select": "auth"},
        )
    assert codes == [0, 0], codes
    assert outputs == {"exit-code": "0", "verdict": "conformant"}
    report = json.loads((workspace / "conformance-reports" / "conformance.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "conformant"
    assert {r["status"] for r in report["requirements"] if r["area"] == "auth"} == {"passed"}
    summary = (workspace / "github_step_summary.txt").read_text(encoding="utf-8")
    assert summary.startswith("## Runs API conformance: conformant (exit 0)")
    assert TOKEN not in summary and TOKEN not in json.dumps(report)


def test_the_action_fails_the_job_on_a_faulty_server_after_writing_everything(
    installed: dict[str, str], workspace: Path
) -> None:
    with serve("auth-missing-token-accepted") as url:
        codes, outputs = run_action(
            installed,
            workspace,
            {
                "base-url": url,
                "token": TOKEN,
                "other-token": OTHER_TOKEN,
                "profile": "quick",
                "select": "AUTH-001 AUTH-004",
                "workers": "2",
                "args": "--strict --seed 7",
                "report-dir": "out",
            },
        )
    assert codes == [0, 1], codes  # the suite's step records; the last step fails the job
    assert outputs == {"exit-code": "1", "verdict": "not_conformant"}
    report = json.loads((workspace / "out" / "conformance.json").read_text(encoding="utf-8"))
    assert report["seed"] == 7 and report["strict"] is True  # args reached the suite
    assert report["profile"] == "quick"
    summary = (workspace / "github_step_summary.txt").read_text(encoding="utf-8")
    assert "**AUTH-001**" in summary and "**AUTH-004**" in summary


def test_the_readmes_five_lines_are_a_step_this_action_accepts() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## In CI\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 5
    [step] = yaml.safe_load(block)
    spec = action()
    assert set(step["with"]) <= set(spec["inputs"]), set(step["with"]) - set(spec["inputs"])
    required = {name for name, item in spec["inputs"].items() if item.get("required")}
    assert required <= set(step["with"])
    assert step["with"]["token"] == "${{ secrets.RUNS_TOKEN }}"  # a secret, never a literal
    for link in ("examples/github-pr-comment.yml", "ci/gitlab/runs-conformance.yml"):
        assert f"({link})" in section and (ROOT / link).is_file()
