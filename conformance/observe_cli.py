"""`runs-conformance observe TRAFFIC...`: the command line of observe mode (conformance/observe.py).

Exit codes: 0 no violation seen (never "conformant": the summary says what was observed), 1 a
violation was seen, 2 a usage error or nothing at all readable in the files given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "traffic",
        nargs="+",
        metavar="TRAFFIC",
        help="recorded traffic: a HAR 1.2 file, the suite's exchanges.jsonl, or NDJSON (docs/observe.md)",
    )
    parser.add_argument(
        "--report-dir",
        metavar="DIR",
        default=os.environ.get("RUNS_REPORT_DIR", "reports"),
        help="where the reports go ($RUNS_REPORT_DIR; default reports)",
    )
    parser.add_argument(
        "--clock-skew",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="how far apart the clocks that stamped the recording may be (several gateway nodes): no order "
        "closer than this is trusted (default 0: one clock)",
    )
    parser.add_argument(
        "--events",
        metavar="FILE",
        help="also write the events (run_started, finding, requirement, run_finished) as NDJSON to FILE (- for stdout)",
    )


def _open(path: Path) -> TextIO:
    from conformance.config import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the events to {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from conformance.config import UsageError
    from conformance.events import Events, NdjsonWriter
    from conformance.observe import observe

    paths = [Path(p) for p in args.traffic]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    if not 0 <= args.clock_skew < 3600:
        raise UsageError(f"--clock-skew {args.clock_skew} is not a number of seconds from 0 to 3600")
    command = "runs-conformance observe " + " ".join(shlex.quote(p) for p in args.traffic)
    with contextlib.ExitStack() as outputs:
        events = None
        if args.events is not None:
            stream = sys.stdout if args.events == "-" else outputs.enter_context(_open(Path(args.events)))
            events = Events([NdjsonWriter(stream)])
        report, seen = observe(paths, Path(args.report_dir), command, events, args.clock_skew)
    for error in seen.errors:
        print(f"runs-conformance: unreadable: {error}", file=sys.stderr)
    people = sys.stderr if args.events == "-" else sys.stdout  # stdout is the events' then
    for row in report.requirements:
        if row.evidence:
            print(f"{row.status.value.upper():8} {row.id}: {row.message}", file=people)
    print(f"observe: {report.reason}", file=people)
    print(f"report: {Path(args.report_dir) / 'conformance.json'}", file=people)
    return report.exit_code
