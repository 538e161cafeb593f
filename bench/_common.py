"""Shared by the benchmarks: where figures go, running a command, a reference server in its own process.

Every benchmark merges its figures into reports/bench.json under its own key, so each script runs
alone and `python bench/run_all.py` runs them all. Figures are medians of repeats inside one run:
the machine is shared, so only ratios measured side by side mean something.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_JSON = ROOT / "reports" / "bench.json"
PYTHON = sys.executable
TOKEN = "bench-token-primary"
OTHER_TOKEN = "bench-token-secondary"
PROGRESS = re.compile(r"^\[\s*\d+/\d+\]\s+(\w+)\s+(\S+) \((\d+(?:\.\d+)?) s\)")


def env(**extra: str) -> dict[str, str]:
    """The environment a benchmarked command runs in: the repo on the path, CI=true (deterministic)."""
    out = dict(os.environ)
    out["PYTHONPATH"] = str(ROOT) + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    out["CI"] = "true"
    out.pop("RUNS_TOKEN", None)
    out.pop("RUNS_OTHER_TOKEN", None)
    out.update(extra)
    return out


def write_figures(key: str, figures: dict[str, Any]) -> None:
    """Merge `figures` into reports/bench.json under `key` (other scripts' keys are kept)."""
    BENCH_JSON.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(BENCH_JSON.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    figures = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
    data[key] = figures
    BENCH_JSON.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"figures written to {BENCH_JSON} under {key!r}")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass
class Timed:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def timed(command: Sequence[str], *, cwd: Path, environment: dict[str, str], timeout: float = 900) -> Timed:
    began = time.perf_counter()
    done = subprocess.run(
        list(command), cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Timed(time.perf_counter() - began, done.returncode, done.stdout, done.stderr)


def check_durations(stderr: str) -> dict[str, float]:
    """Seconds per check from the runner's progress lines (`[ 3/54] passed  name (1.2 s)`)."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        match = PROGRESS.match(line.strip())
        if match:
            out[match.group(2)] = float(match.group(3))
    return out


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[str]

    def count(self) -> int:
        """Requests the server answered so far (the counting middleware of bench/_server.py)."""
        import httpx

        return int(httpx.get(f"{self.base_url}/__bench/count", timeout=10).json()["count"])


@contextlib.contextmanager
def reference_server() -> Iterator[Server]:
    """The reference server in a process of its own (so a client's CPU is not the server's), counting requests."""
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "_server.py"), "--token", TOKEN, "--token", OTHER_TOKEN],
        env=env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        yield Server(line, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def timed_suite_command(base_url: str, profile: str, timing_out: Path, report_dir: Path, *extra: str) -> list[str]:
    """`runs-conformance run` against `base_url`, through _timed_suite.py, which writes the run's timing."""
    return [
        PYTHON, str(ROOT / "bench" / "_timed_suite.py"), str(timing_out),
        "run", "--base-url", base_url, "--token", TOKEN, "--other-token", OTHER_TOKEN,
        "--profile", profile, "--quiet", "--report-dir", str(report_dir), *extra,
    ]  # fmt: skip
