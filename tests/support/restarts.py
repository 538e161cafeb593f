"""A server of tests/support served as a process on a SQLite file, and a command that restarts it.

`served(["--variant", "gzip"], directory)` starts `python -m support.faults_disrupt ARGS --db FILE
--port P` (the one launcher: `--fault NAME` or `--variant NAME`) and yields its base URL and a shell
command that kills it and starts it again on the same port and file, as a user's script for
`--disrupt` would. `restart_args(command)` are the suite's arguments that run it mid-workload, and
`unproven_restart(report_dir)` says why a run's report does not show that a restart happened (None
when it does): a run that never lost a request proved nothing about one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from .tokens import TOKEN
from .tooling import free_port

__all__ = ["GRACE_S", "restart_args", "served", "unproven_restart"]

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 1.0  # after the server answers again: connections the restart broke may still fail this long
WAIT_S = 20.0  # a cold start of the launcher (imports, a 2-core machine shared with others) stays well below


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=1).is_success
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def served(launch: Sequence[str], directory: Path) -> Iterator[tuple[str, str]]:
    """(base URL, a disrupt command that kills the server and starts it again on its port and file).

    The server's file, pid and log are in `directory`. While inside, PYTHONPATH names tests/ and the
    repository, so the disrupt command's shell (a child of this process) can start the launcher.
    """
    port = free_port()
    pid_file = directory / "server.pid"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    args = " ".join(shlex.quote(arg) for arg in launch)
    launcher = (
        f"{shlex.quote(sys.executable)} -m support.faults_disrupt {args} "
        f"--db {shlex.quote(str(directory / 'runs.db'))} --port {port}"
    )
    log = shlex.quote(str(directory / "server.log"))
    start = f"{launcher} >>{log} 2>&1 & echo $! > {shlex.quote(str(pid_file))}"
    pid = f"$(cat {shlex.quote(str(pid_file))})"
    # Wait for the old process to be gone before starting the new one: two would fight for the port.
    restart = f"kill {pid} && while kill -0 {pid} 2>/dev/null; do sleep 0.05; done; {start}"
    subprocess.run(start, shell=True, check=True, env=env)
    url = f"http://127.0.0.1:{port}"
    before = os.environ.get("PYTHONPATH")
    try:
        deadline = time.monotonic() + WAIT_S
        while not _answers(url):
            assert time.monotonic() < deadline, (directory / "server.log").read_text()
            time.sleep(0.05)  # polling for readiness against the deadline above
        os.environ["PYTHONPATH"] = env["PYTHONPATH"]
        yield url, restart
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
        with contextlib.suppress(ProcessLookupError):  # a test's command may have stopped it for good
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def restart_args(command: str) -> list[str]:
    """`runs-conformance run` arguments that run `command` in the middle of the concurrent workload."""
    return ["--disrupt", command, "--disrupt-grace", str(GRACE_S), "--disrupt-wait", str(WAIT_S)]


def unproven_restart(report_dir: Path) -> str | None:
    """Why the run's conformance.json and history.jsonl do not prove a restart mid-workload; None when they
    do: the command succeeded, the server answered again, some request failed around the restart and
    some was answered after its window."""
    report = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    disruptions = report.get("disruptions") or []
    if len(disruptions) != 1:
        return f"{len(disruptions)} disruptions recorded, not one"
    (disruption,) = disruptions
    if disruption["exit_code"] != 0 or disruption["window_end_s"] is None:
        return f"the command failed or the server did not come back: {disruption}"
    lines = (report_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
    ops = [json.loads(line) for line in lines]
    if not any(op["indeterminate"] for op in ops):
        return "no request failed around the command: was the server restarted?"
    window_end_ms = disruption["window_end_s"] * 1000
    if not any(op["completed_ms"] is not None and op["invoked_ms"] > window_end_ms for op in ops):
        return "no request was answered after the disruption's window"
    return None
