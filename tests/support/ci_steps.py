"""Run the shell steps of the CI files the project ships (action.yml, the GitLab component) as CI would.

Only what those files use is understood: `${{ inputs.x }}` and `${{ steps.id.outputs.y }}` for
GitHub, `$[[ inputs.x ]]` for GitLab; anything else is an error, so a file cannot start to rely on
something the tests do not run. Bash runs each script the way each CI does: GitHub with
`bash --noprofile --norc -eo pipefail`, GitLab's script lines one after another in one bash
under `-eo pipefail`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "StepResult",
    "base_environment",
    "load_yaml",
    "offline_python",
    "read_outputs",
    "run_bash",
    "schema_errors",
    "substitute",
    "vendored_schema",
]

_GITHUB = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_GITLAB = re.compile(r"\$\[\[\s*(.*?)\s*\]\]")


def substitute(text: str, values: Mapping[str, str], *, gitlab: bool = False) -> str:
    """`text` with each expression replaced by its value in `values` (keyed `inputs.x`, `steps.id.outputs.y`)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("steps.") and name not in values:
            return ""  # as on GitHub: a step that did not run, or set no such output
        if name not in values:
            raise KeyError(f"an expression the tests do not run: {match.group(0)}")
        return values[name]

    return (_GITLAB if gitlab else _GITHUB).sub(value, text)


@dataclass
class StepResult:
    code: int
    output: str


def run_bash(
    script: str, env: Mapping[str, str], cwd: Path, *, gitlab: bool = False, timeout: float = 120
) -> StepResult:
    # GitLab's runner also runs a job's script lines as one bash script under `set -eo pipefail`.
    flags = ["-eo", "pipefail"] if gitlab else ["--noprofile", "--norc", "-eo", "pipefail"]
    path = cwd / ".step.sh"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        ["bash", *flags, str(path)], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return StepResult(done.returncode, done.stdout + done.stderr)


def read_outputs(path: Path) -> dict[str, str]:
    """A $GITHUB_OUTPUT file's name=value lines."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)


def offline_python(home: Path) -> tuple[Path, dict[str, str]]:
    """A fresh Python environment that sees this one's packages, and the pip settings that make
    `pip install <checkout>` there build and install only the project, offline: what a CI job's
    install step does, without downloading the suite's dependencies again. Returns its bin folder
    and the environment variables."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=60)
    purelib = subprocess.run(
        [str(home / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    outer = sysconfig.get_paths()["purelib"]
    # Appended after the new environment's own folder: the suite installed there wins over this one's.
    Path(purelib, "_outer_site.pth").write_text(f"import site; site.addsitedir({outer!r})\n", encoding="utf-8")
    env = {
        "PIP_NO_DEPS": "1",
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this one backwards: 0 turns build isolation off
        "PIP_IGNORE_INSTALLED": "1",
    }
    return home / "bin", env


def base_environment() -> dict[str, str]:
    """This process's environment without what would make a step import the tests' copy of the suite."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "GITHUB_STEP_SUMMARY"}}
    return env


def vendored_schema(name: str) -> dict[str, object]:
    """A CI provider's published JSON Schema, as check-jsonschema vendors it (github-actions,
    github-workflows, gitlab-ci): the pip-installable copy of each."""
    import importlib.resources
    import json

    text = (importlib.resources.files("check_jsonschema.builtin_schemas") / "vendor" / f"{name}.json").read_text(
        encoding="utf-8"
    )
    schema: dict[str, object] = json.loads(text)
    return schema


def schema_errors(name: str, document: object) -> list[str]:
    """Where `document` breaks the vendored schema `name`: one line per error."""
    from jsonschema import validators

    schema = vendored_schema(name)
    validator = validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def load_yaml(path: Path) -> object:
    """A CI file as its CI reads it: YAML 1.1 reads a bare `on:` key as true, GitHub as "on"."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data
