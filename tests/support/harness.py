"""Run the suite's CLI in-process against an ASGI app served on a loopback port, and read its report."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from conformance.cli import main
from reference_impl.serve import serve_in_thread

from .tokens import OTHER_TOKEN, TOKEN, TOKENS

__all__ = ["TOKENS", "SuiteRun", "quick_args", "run_suite", "run_suite_at"]

# Progress prints "[ 3/23] failed  check_name (0.4 s)" when a check finishes with a failure.
_FAILED_CHECK = re.compile(r"^\[\s*\d+/\d+\]\s+(failed|error)\s")


class _StampedStream(io.StringIO):
    """stderr replacement that remembers when each line was written (for time to first failure)."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started
        self.first_failure_s: float | None = None
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            if self.first_failure_s is None and _FAILED_CHECK.match(line):
                self.first_failure_s = time.monotonic() - self.started
        return super().write(text)


@dataclass
class SuiteRun:
    exit_code: int
    report: dict[str, Any] | None  # conformance.json, or None when none was written
    stdout: str
    stderr: str
    wall_s: float
    first_failure_s: float | None  # when the first check that found a failure finished
    args: list[str] = field(default_factory=list)

    def status(self, requirement_id: str) -> str | None:
        for req in (self.report or {}).get("requirements", []):
            if req["id"] == requirement_id:
                return str(req["status"])
        return None

    def ids_with(self, *statuses: str) -> list[str]:
        return [r["id"] for r in (self.report or {}).get("requirements", []) if r["status"] in statuses]

    def explain(self) -> str:
        """What to print when an assertion about this run fails."""
        lines = [f"exit {self.exit_code} after {self.wall_s:.1f} s: runs-conformance {' '.join(self.args)}"]
        for req in (self.report or {}).get("requirements", []):
            if req["status"] not in {"passed", "not_selected"}:
                lines.append(f"  {req['status']:<8} {req['id']}: {req['message'][:300]}")
        lines.append(self.stderr[-3000:])
        return "\n".join(lines)


def run_suite_at(base_url: str, *extra: str, report_dir: Path | None = None) -> SuiteRun:
    """`runs-conformance run` against `base_url` with the self-check tokens, in this process."""
    with contextlib.ExitStack() as stack:
        if report_dir is None:
            report_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rc-selfcheck-")))
        args = [
            "run",
            "--base-url",
            base_url,
            "--token",
            TOKEN,
            "--other-token",
            OTHER_TOKEN,
            "--report-dir",
            str(report_dir),
            *extra,
        ]
        started = time.monotonic()
        out, err = io.StringIO(), _StampedStream(started)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        wall = time.monotonic() - started
        path = report_dir / "conformance.json"
        report = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        return SuiteRun(code, report, out.getvalue(), err.getvalue(), wall, err.first_failure_s, args)


def run_suite(app: ASGIApp, *extra: str, report_dir: Path | None = None) -> SuiteRun:
    """Serve `app` on a loopback port for one run of the suite."""
    with serve_in_thread(app) as url:
        return run_suite_at(url, *extra, report_dir=report_dir)


def quick_args(select: Sequence[str] = (), *more: str, seed: int = 1) -> list[str]:
    """The arguments every self-check run uses: quick profile, strict, a fixed seed, quiet progress."""
    args = ["--profile", "quick", "--strict", "--seed", str(seed)]
    if select:
        args += ["--select", *select]
    return [*args, *more]
