"""Flake check (not part of CI): N consecutive full runs of the suite against the reference server and
against the latency-jitter variant; every run must pass.

    python scripts/flake_check.py            # 20 runs each, default profile, --workers auto
    python scripts/flake_check.py -n 5 --profile quick
    python scripts/flake_check.py --args "--workers 8"     # any extra arguments of runs-conformance run
    python scripts/flake_check.py --variants -n 1 --strict  # the reference and every correct variant, once
    python scripts/flake_check.py --variants --restart -n 1 --strict --profile quick  # ... and across a restart

Each run gets a fresh server and a new random seed (printed), so a flaky check shows up as a
failure that a replay with that seed can reproduce or not. Prints "N/N passed" per server and
exits 1 on any failed run.

With --restart each server also runs N more times as a process on a SQLite file
(tests/support/faults_disrupt.py, the one launcher), killed and started again in the middle of the
concurrent workload (--disrupt); such a run passes only if its report proves the restart (the
command succeeded, some request failed around it, the server answered after it). A table at the end:
each server, its runs passed without and with the restart, and the seconds all its runs took.
"""

from __future__ import annotations

import argparse
import functools
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.harness import SuiteRun, run_suite, run_suite_at  # noqa: E402
from support.restarts import restart_args, served, unproven_restart  # noqa: E402
from support.servers import VARIANTS, build  # noqa: E402
from support.tokens import TOKENS  # noqa: E402

from reference_impl.app import create_app  # noqa: E402

# The servers it runs against, by name: each call builds a fresh one.
SERVERS: dict[str, Callable[[], ASGIApp]] = {
    "reference": lambda: create_app(list(TOKENS)),
    "latency-jitter": lambda: build("latency-jitter"),
}


def _launch(name: str) -> list[str]:
    """The launcher's arguments for a server of SERVERS or VARIANTS, served as a process on a file."""
    return ["--fault", "none"] if name == "reference" else ["--variant", name]


def _restarted_run(name: str, extra: Sequence[str]) -> tuple[SuiteRun, str | None]:
    """One run against the server as a process restarted mid-workload; with why the restart is unproven."""
    with tempfile.TemporaryDirectory(prefix="rc-restart-") as directory:
        report_dir = Path(directory) / "report"
        with served(_launch(name), Path(directory)) as (url, restart):
            run = run_suite_at(url, *extra, *restart_args(restart), report_dir=report_dir)
        return run, unproven_restart(report_dir) if run.report is not None else "no conformance.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="consecutive runs per server (20)")
    parser.add_argument("--profile", default="default", help="the suite's profile (default)")
    parser.add_argument("--strict", action="store_true", help="count a SHOULD warning as a flake too")
    parser.add_argument("--args", default="", help="extra arguments for every run, e.g. '--workers 8'")
    parser.add_argument("--only", choices=sorted(SERVERS), help="one server only")
    parser.add_argument("--variants", action="store_true", help="also every correct variant of the self-check")
    parser.add_argument(
        "--restart", action="store_true", help="also each server restarted mid-workload (--disrupt); prints a table"
    )
    args = parser.parse_args(argv)
    servers = dict(SERVERS)
    if args.variants:
        servers.update({v.name: functools.partial(build, v.name) for v in VARIANTS})

    flaked = False
    started = time.monotonic()
    table: list[tuple[str, int, int | None, float]] = []
    for name, make in servers.items():
        if args.only and name != args.only:
            continue
        server_started = time.monotonic()
        passed = {False: 0, True: 0}
        for restarted in (False, True) if args.restart else (False,):
            for index in range(1, args.runs + 1):
                seed = secrets.randbelow(2**32)
                extra = ["--profile", args.profile, "--seed", str(seed), "--quiet", *shlex.split(args.args)]
                if args.strict:
                    extra.append("--strict")
                unproven = None
                if restarted:
                    run, unproven = _restarted_run(name, extra)
                else:
                    run = run_suite(make(), *extra)
                bad = run.ids_with("failed", "error", "skipped", "not_run", "warning" if args.strict else "failed")
                ok = run.exit_code == 0 and not bad and unproven is None
                passed[restarted] += ok
                label = f"{name}{' restarted' if restarted else ''}"
                print(
                    f"{label} run {index}/{args.runs}: {'pass' if ok else 'FLAKE'} (exit {run.exit_code}, "
                    f"seed {seed}, {run.wall_s:.1f} s){'' if ok else ' ' + ', '.join(bad)}"
                    f"{'' if unproven is None else '; restart unproven: ' + unproven}",
                    flush=True,
                )
                if not ok:
                    flaked = True
                    print(run.explain(), flush=True)
        seconds = time.monotonic() - server_started
        table.append((name, passed[False], passed[True] if args.restart else None, seconds))
        restarts = f", {passed[True]}/{args.runs} restarted" if args.restart else ""
        print(f"{name}: {passed[False]}/{args.runs} passed{restarts} in {seconds:.0f} s", flush=True)
    if args.restart:
        _print_table(table, args.runs)
    print(f"total wall time {time.monotonic() - started:.0f} s", flush=True)
    return 1 if flaked else 0


def _print_table(rows: list[tuple[str, int, int | None, float]], runs: int) -> None:
    print("\n| server | conformant without restart | with restart | seconds (all its runs) |\n|---|---|---|---|")
    for name, calm, restarted, seconds in rows:
        print(f"| {name} | {calm}/{runs} | {restarted}/{runs} | {seconds:.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())
