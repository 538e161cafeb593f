"""The runs-reference-server console script: usage errors are one line and exit 2; it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.reference_server import wait_until
from support.tooling import free_port

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "reference_impl.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("RUNS_TOKENS", None) if env is None else None
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30, env=environment, cwd=ROOT)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--token", "t", "--port", "http"),
        ("--token", "t", "--port", "70000"),
        ("--token", "t", "--db", "/no/such/dir/runs.db"),
        ("--token", "has space"),
        ("--token", "t", "--bogus"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runs-reference-server: error:"), result.stderr
    assert "Traceback" not in result.stderr


def test_serves_with_tokens_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "RUNS_TOKENS": "env-one, env-two"}
    args = [*COMMAND, "--port", str(port), "--db", str(tmp_path / "cli.db"), "--log-level", "warning"]
    process = subprocess.Popen(args, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/runs"

        def listing() -> httpx.Response | None:
            try:
                return httpx.get(url, headers={"Authorization": "Bearer env-two"}, timeout=2)
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                return None

        assert wait_until(listing, timeout=15, what="the CLI server").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "cli.db").exists()
