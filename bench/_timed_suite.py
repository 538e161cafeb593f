"""`runs-conformance run ARGS...` with the phases of the run timed (for the benchmarks).

    python bench/_timed_suite.py OUT.json run --profile quick ...

Runs the CLI in this process, wrapping the runner's phases (checks, cleanup) to time them and
count their requests, and writes {"checks_s", "cleanup_s", "cleanup_requests", "exit_code"} to OUT.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import conformance.runner as runner
from conformance.cli import main

figures: dict[str, Any] = {}


def _timed(name: str, function: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            figures[f"{name}_s"] = time.perf_counter() - began

    return wrapper


def _counting_cleanup(function: Any) -> Any:
    def wrapper(session: Any) -> Any:
        from conformance.client import Recorder

        counted = Recorder()
        original = Recorder.__init__
        made: list[Recorder] = []

        def init(self: Recorder, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            made.append(self)

        Recorder.__init__ = init  # type: ignore[method-assign]
        try:
            return function(session)
        finally:
            Recorder.__init__ = original  # type: ignore[method-assign]
            figures["cleanup_requests"] = sum(len(r.exchanges) for r in made) + len(counted.exchanges)

    return wrapper


# The pipeline's execute and cleanup stages, wrapped where the runner looks them up.
runner.run_checks = _timed("checks", runner.run_checks)  # type: ignore[assignment]
runner.cancel_leftovers = _timed("cleanup", _counting_cleanup(runner.cancel_leftovers))  # type: ignore[assignment]

if __name__ == "__main__":
    out = Path(sys.argv[1])
    code = main(sys.argv[2:])
    figures["exit_code"] = code
    out.write_text(json.dumps(figures), encoding="utf-8")
    sys.exit(code)
