"""It works as users install it: a non-editable install ships the spec, catalog and templates,
and the console scripts run from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install --no-deps --target T .`: the package as a wheel installs it, dependencies aside."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return target


@pytest.mark.slow
def test_the_package_carries_its_data(installed: Path) -> None:
    package = installed / "conformance"
    for relative in ("_spec/runs.yaml", "requirements.yaml", "fixtures.yaml"):
        assert (package / relative).is_file(), f"conformance/{relative} is not in the installed package"
    assert (package / "_spec/runs.yaml").read_bytes() == (ROOT / "openapi/runs.yaml").read_bytes()
    templates = list((package / "report").rglob("*.j2"))
    assert templates, "the report templates are not in the installed package"


def _run_installed(installed: Path, script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("RUNS_TOKEN", None)
    return subprocess.run(
        [str(installed / "bin" / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_installed_package_reads_its_own_copy_of_the_spec(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = "from conformance.spec import spec_path; from conformance import catalog; print(spec_path())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(installed)


@pytest.mark.slow
def test_the_live_proxys_addon_ships_and_is_the_one_mitmdump_is_given(installed: Path, tmp_path: Path) -> None:
    # `observe --listen` hands mitmdump this file's path (`-s`): it must be a file of the installed package.
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = "from conformance.observe_live import ADDON; print(ADDON)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    addon = Path(proc.stdout.strip())
    assert addon.is_relative_to(installed) and addon.is_file()
    assert addon.read_bytes() == (ROOT / "conformance" / "observe_addon.py").read_bytes()


@pytest.mark.slow
def test_the_main_command_runs_from_another_folder(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _run_installed(installed, "runs-conformance", "run", "--profile", "quick", "--seed", "1", cwd=elsewhere)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((elsewhere / "reports" / "conformance.json").read_text())
    assert report["verdict"] == "conformant"
    assert "Traceback" not in proc.stderr
    assert (elsewhere / "reports" / "conformance.html").is_file()


@pytest.mark.slow
def test_the_server_script_answers_usage_errors_in_one_line(installed: Path, tmp_path: Path) -> None:
    proc = _run_installed(installed, "runs-reference-server", "--port", "not-a-port", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
