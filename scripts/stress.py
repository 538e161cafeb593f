"""Stress test (CI runs it, .ci/run): the suite must not break itself on a busy machine.

    python scripts/stress.py                          # 4 side by side, then 10 in a row beside a CPU hog
    python scripts/stress.py --side-by-side 2 --in-a-row 3 --profile quick

Serves the reference server in a process of its own (as a CI runner that hosts the server under
test does), then runs `runs-conformance run` against it as users do: first N runs side by side, then
M runs one after another beside a CPU hog that keeps every core busy. Every run must end
`conformant` with no `error` row; each gets its own seed (printed, so a failure replays with
`--seed`) and report directory. Prints one line per run and exits 1 if any run fell short.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TOKEN, OTHER_TOKEN = "stress-token", "stress-other-token"  # two credentials: IDEM-007 needs both
SERVER_START_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def reference_server() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "RUNS_TOKENS": f"{TOKEN},{OTHER_TOKEN}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "reference_impl.cli", "--port", str(port), "--log-level", "warning"], env=env
    )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the reference server did not start on port {port}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def cpu_hog(cores: int) -> Iterator[None]:
    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(cores)]
    for hog in hogs:
        hog.start()
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()


def start_run(base_url: str, profile: str, report_dir: Path, extra: list[str]) -> tuple[int, subprocess.Popen[bytes]]:
    seed = secrets.randbelow(2**31)
    env = {**os.environ, "RUNS_TOKEN": TOKEN, "RUNS_OTHER_TOKEN": OTHER_TOKEN}
    command = [sys.executable, "-m", "conformance.cli", "run", "--base-url", base_url, "--profile", profile]
    command += ["--seed", str(seed), "--report-dir", str(report_dir), *extra]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return seed, process


def judged(label: str, seed: int, process: subprocess.Popen[bytes], report_dir: Path, started: float) -> bool:
    """One line for the run; whether it was conformant with no suite error."""
    _, stderr = process.communicate()
    took = time.monotonic() - started
    report = report_dir / "conformance.json"
    if not report.exists():
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        print(f"{label}: seed {seed}: exit {process.returncode}, no report ({tail[0]})", flush=True)
        return False
    data = json.loads(report.read_text())
    errors = [r["id"] for r in data["requirements"] if r["status"] == "error"]
    short = [f"{r['id']} {r['status']}" for r in data["requirements"] if r["status"] not in {"passed", "not_selected"}]
    good = data["verdict"] == "conformant" and not errors
    shown = "" if good else f" ({', '.join(short[:8])})"
    print(f"{label}: seed {seed}: {data['verdict']}, {len(errors)} error rows, {took:.0f} s{shown}", flush=True)
    return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side-by-side", type=int, default=4, help="runs at once in the first round")
    parser.add_argument("--in-a-row", type=int, default=10, help="runs one after another beside the hog")
    parser.add_argument("--hog", type=int, default=os.cpu_count() or 2, help="cores the CPU hog keeps busy")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--args", default="", help="more arguments of runs-conformance run")
    options = parser.parse_args(argv)
    extra = options.args.split()
    good = bad = 0
    with tempfile.TemporaryDirectory(prefix="rc-stress-") as tmp, reference_server() as base_url:
        started = time.monotonic()
        dirs = [Path(tmp) / f"side-{i}" for i in range(options.side_by_side)]
        runs = [start_run(base_url, options.profile, d, extra) for d in dirs]
        for i, ((seed, process), d) in enumerate(zip(runs, dirs, strict=True)):
            ok = judged(f"side by side {i + 1}/{options.side_by_side}", seed, process, d, started)
            good, bad = good + ok, bad + (not ok)
        with cpu_hog(options.hog):
            for i in range(options.in_a_row):
                d = Path(tmp) / f"hog-{i}"
                started = time.monotonic()
                seed, process = start_run(base_url, options.profile, d, extra)
                ok = judged(f"beside a {options.hog}-core hog {i + 1}/{options.in_a_row}", seed, process, d, started)
                good, bad = good + ok, bad + (not ok)
    print(f"stress: {good}/{good + bad} runs conformant with no error row")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
