"""Flake check (not part of CI): N consecutive full runs of the suite against the reference server and
against the latency-jitter variant; every run must pass.

    python scripts/flake_check.py            # 20 runs each, default profile, --workers auto
    python scripts/flake_check.py -n 5 --profile quick
    python scripts/flake_check.py --args "--workers 8"     # any extra arguments of runs-conformance run
    python scripts/flake_check.py --variants -n 1 --strict  # the reference and every correct variant, once

Each run gets a fresh server and a new random seed (printed), so a flaky check shows up as a
failure that a replay with that seed can reproduce or not. Prints "N/N passed" per server and
exits 1 on any failed run.
"""

from __future__ import annotations

import argparse
import functools
import secrets
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.harness import run_suite  # noqa: E402
from support.servers import VARIANTS, build  # noqa: E402
from support.tokens import TOKENS  # noqa: E402

from reference_impl.app import create_app  # noqa: E402

# The servers it runs against, by name: each call builds a fresh one.
SERVERS: dict[str, Callable[[], ASGIApp]] = {
    "reference": lambda: create_app(list(TOKENS)),
    "latency-jitter": lambda: build("latency-jitter"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="consecutive runs per server (20)")
    parser.add_argument("--profile", default="default", help="the suite's profile (default)")
    parser.add_argument("--strict", action="store_true", help="count a SHOULD warning as a flake too")
    parser.add_argument("--args", default="", help="extra arguments for every run, e.g. '--workers 8'")
    parser.add_argument("--only", choices=sorted(SERVERS), help="one server only")
    parser.add_argument("--variants", action="store_true", help="also every correct variant of the self-check")
    args = parser.parse_args(argv)
    servers = dict(SERVERS)
    if args.variants:
        servers.update({v.name: functools.partial(build, v.name) for v in VARIANTS})

    flaked = False
    started = time.monotonic()
    for name, make in servers.items():
        if args.only and name != args.only:
            continue
        passed = 0
        server_started = time.monotonic()
        for index in range(1, args.runs + 1):
            seed = secrets.randbelow(2**32)
            extra = ["--profile", args.profile, "--seed", str(seed), "--quiet", *shlex.split(args.args)]
            if args.strict:
                extra.append("--strict")
            run = run_suite(make(), *extra)
            bad = run.ids_with("failed", "error", "skipped", "not_run", "warning" if args.strict else "failed")
            ok = run.exit_code == 0 and not bad
            passed += ok
            print(
                f"{name} run {index}/{args.runs}: {'pass' if ok else 'FLAKE'} (exit {run.exit_code}, "
                f"seed {seed}, {run.wall_s:.1f} s){'' if ok else ' ' + ', '.join(bad)}",
                flush=True,
            )
            if not ok:
                flaked = True
                print(run.explain(), flush=True)
        print(f"{name}: {passed}/{args.runs} passed in {time.monotonic() - server_started:.0f} s", flush=True)
    print(f"total wall time {time.monotonic() - started:.0f} s", flush=True)
    return 1 if flaked else 0


if __name__ == "__main__":
    raise SystemExit(main())
