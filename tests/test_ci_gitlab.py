"""ci/gitlab/runs-conformance.yml, the GitLab CI/CD component: valid against GitLab's published CI
schema (as check-jsonschema vendors it), and its job's script, run with the inputs interpolated as
GitLab does, against a served server: the suite installed from this checkout (offline), the reports
where the artifacts and the JUnit test report expect them, and the job failing on the suite's exit code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.ci_steps import base_environment, offline_python, run_bash, schema_errors, substitute
from support.servers import serve
from support.tokens import OTHER_TOKEN, TOKEN, TOKENS
from support.tooling import ROOT

from reference_impl.app import create_app

COMPONENT = ROOT / "ci" / "gitlab" / "runs-conformance.yml"


def documents() -> tuple[dict[str, Any], str]:
    """The component's header (spec: inputs) and its job's text, before interpolation."""
    header, body = COMPONENT.read_text(encoding="utf-8").split("\n---\n", 1)
    return yaml.safe_load(header), body


def job(inputs: dict[str, str]) -> dict[str, Any]:
    """The job as GitLab builds it: every `$[[ inputs.x ]]` replaced, defaults for the inputs not given."""
    header, body = documents()
    declared = header["spec"]["inputs"]
    missing = [name for name, spec in declared.items() if "default" not in spec and name not in inputs]
    assert not missing, f"inputs without a default must be given: {missing}"
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in declared.items()}
    values.update({f"inputs.{k}": v for k, v in inputs.items()})
    jobs: dict[str, Any] = yaml.safe_load(substitute(body, values, gitlab=True))
    return jobs["runs-conformance"]


@pytest.fixture(scope="module")
def python_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    bin_dir, pip_env = offline_python(tmp_path_factory.mktemp("gitlab-python") / "py")
    return {**base_environment(), **pip_env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_job(env: dict[str, str], workspace: Path, inputs: dict[str, str]) -> int:
    spec = job({"suite": str(ROOT), **inputs})
    job_env = {**env, "RUNS_TOKEN": TOKEN, "RUNS_OTHER_TOKEN": OTHER_TOKEN}  # masked CI/CD variables
    job_env.update({k: str(v) for k, v in spec["variables"].items()})
    return run_bash("\n".join(spec["script"]), job_env, workspace, gitlab=True, timeout=180).code


def test_the_component_is_valid_for_gitlab() -> None:
    header, body = documents()
    assert schema_errors("gitlab-ci", header) == []
    assert schema_errors("gitlab-ci", yaml.safe_load(substitute(body, _defaults(), gitlab=True))) == []
    broken = job({"base-url": "http://x"})
    broken["artifacts"]["reports"]["junit"] = {"path": "junit.xml"}  # the schema must notice a wrong shape
    assert schema_errors("gitlab-ci", {"runs-conformance": broken})


def _defaults() -> dict[str, str]:
    header, _ = documents()
    return {f"inputs.{k}": str(v.get("default", "http://x")) for k, v in header["spec"]["inputs"].items()}


def test_the_job_keeps_every_report_and_wires_junit() -> None:
    spec = job({"base-url": "http://x", "report-dir": "out"})
    assert spec["artifacts"]["when"] == "always"
    assert spec["artifacts"]["reports"]["junit"] == "out/junit.xml"
    assert "out/conformance.html" in spec["artifacts"]["paths"]
    assert "allow_failure" not in spec
    assert not any("TOKEN" in k for k in spec["variables"]), "tokens are masked variables, never inputs"


def test_the_job_passes_a_conformant_server(python_env: dict[str, str], tmp_path: Path) -> None:
    with serve(create_app(list(TOKENS))) as url:
        code = run_job(python_env, tmp_path, {"base-url": url, "profile": "quick", "select": "auth"})
    assert code == 0
    out = tmp_path / "conformance-reports"
    for name in ("conformance.html", "conformance.json", "junit.xml", "summary.md"):
        assert (out / name).is_file(), name
    assert (out / "summary.md").read_text(encoding="utf-8").startswith("## Runs API conformance: conformant")


def test_the_job_fails_on_a_faulty_server_after_writing_its_reports(python_env: dict[str, str], tmp_path: Path) -> None:
    with serve("auth-missing-token-accepted") as url:
        code = run_job(
            python_env,
            tmp_path,
            {"base-url": url, "profile": "quick", "select": "AUTH-001", "args": "--seed 3", "report-dir": "out"},
        )
    assert code == 1
    junit = (tmp_path / "out" / "junit.xml").read_text(encoding="utf-8")
    assert "AUTH-001" in junit and "<failure" in junit
    assert "**AUTH-001**" in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
