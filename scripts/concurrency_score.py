"""Concurrency score: each concurrency fault and correct variant, N runs with different seeds, tabulated.

    python scripts/concurrency_score.py                      # 20 seeds each, --profile default
    python scripts/concurrency_score.py -n 5 --only conc-replica-reads snapshot-reads --keep-reports
    python scripts/concurrency_score.py --as-ci             # the faults at the self-check's budget
    python scripts/concurrency_score.py --others            # and what the rest of the suite finds in each
    python scripts/concurrency_score.py --jobs 3            # three runs at a time, each in its own process

Each run serves a fresh server on a loopback port and runs `runs-conformance run --select concurrency
--strict --seed S` against it (seeds 1..N, so any row can be replayed). A fault is caught in a run
when the run exits 1 and every ID it names (`breaks`) is failed; a variant passes when the run exits
0 with every concurrency requirement passed. Writes docs/concurrency-score.md and prints it; exits 1
if a fault was caught in fewer than `--need` of its runs or a variant failed any run.

"First failure" is when, counted from the workload's first request, the earliest finding was proven
(the last answer among its operations arrived), read off the finding's timeline in conformance.json:
how long the workload has to run before this fault shows. With --jobs N, N runs go on at once, each
in a process of its own (the CLI is run in-process and redirects stdout): the workload's time is a
budget, so the wall time shrinks about N-fold while the machine's load, and so every run's
stress, grows.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from starlette.types import ASGIApp  # noqa: E402
from support.harness import SuiteRun, run_suite  # noqa: E402
from support.servers import CONCURRENCY_FAULTS, VARIANTS  # noqa: E402
from support.tokens import TOKENS  # noqa: E402

from conformance.catalog import catalog  # noqa: E402
from reference_impl.app import create_app  # noqa: E402

OUTPUT = ROOT / "docs" / "concurrency-score.md"
CONC_IDS = [rid for rid, req in catalog().items() if req.area == "concurrency"]


@dataclass
class Score:
    name: str
    kind: str  # "fault" or "variant"
    expected: tuple[str, ...]  # the IDs a fault must fail; () for a variant
    description: str
    ok: int = 0
    runs: int = 0
    failed_ids: Counter[str] = field(default_factory=Counter)
    first_failures_ms: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    bad_seeds: list[int] = field(default_factory=list)  # seeds where a fault escaped or a variant failed
    others: list[str] | None = None  # what the rest of the quick suite fails against it (--others)


def _first_failure_ms(report: dict[str, Any] | None) -> float | None:
    """When the earliest finding was proven: the latest completion among its highlighted operations."""
    proven: list[float] = []
    for requirement in (report or {}).get("requirements", []):
        for failure in requirement.get("evidence") or []:
            ends = [
                entry["completed"] if entry.get("completed") is not None else entry["invoked"]
                for entry in failure.get("timeline") or []
                if entry.get("highlight")
            ]
            if ends:
                proven.append(max(ends) * 1000)
    return min(proven) if proven else None


def _judge(score: Score, run: SuiteRun, seed: int) -> None:
    failed = [rid for rid in CONC_IDS if run.status(rid) == "failed"]
    score.runs += 1
    score.walls.append(run.wall_s)
    score.failed_ids.update(failed)
    if score.kind == "variant":
        ok = run.exit_code == 0 and all(run.status(rid) == "passed" for rid in CONC_IDS)
    else:
        ok = run.exit_code == 1 and all(run.status(rid) == "failed" for rid in score.expected)
        first = _first_failure_ms(run.report)
        if first is not None:
            score.first_failures_ms.append(first)
    score.ok += ok
    if not ok:
        score.bad_seeds.append(seed)
    if run.ids_with("error"):
        score.failed_ids.update(f"error:{rid}" for rid in run.ids_with("error"))


def _servers() -> dict[str, tuple[Score, Callable[[], ASGIApp], Sequence[str]]]:
    """Every server scored, by name: (its score, how to build it, the CLI arguments it is given under --as-ci)."""
    servers: dict[str, tuple[Score, Callable[[], ASGIApp], Sequence[str]]] = {}
    for fault in CONCURRENCY_FAULTS:
        score = Score(fault.name, "fault", fault.breaks, fault.description)
        servers[fault.name] = (score, functools.partial(fault.build, TOKENS), fault.cli_args)
    servers["reference"] = (
        Score("reference", "variant", (), "the reference server itself"),
        functools.partial(create_app, list(TOKENS)),
        (),
    )
    for variant in VARIANTS:
        score = Score(variant.name, "variant", (), variant.description)
        servers.setdefault(variant.name, (score, functools.partial(variant.build, TOKENS), ()))
    return servers


def _run(name: str, seed: int, args: argparse.Namespace) -> SuiteRun:
    """One run of the concurrency checks against a fresh server `name` (in a worker process under --jobs)."""
    score, build, cli_args = _servers()[name]
    # The concurrency checks, and the area of any other ID the fault breaks (ERR-001 for a stall).
    areas = sorted({"concurrency", *(catalog()[rid].area for rid in score.expected)})
    extra = ["--profile", args.profile, "--select", *areas, "--strict", "--seed", str(seed), "--quiet"]
    if args.workload_seconds:
        extra += ["--workload-seconds", str(args.workload_seconds)]
    if args.as_ci:
        extra += cli_args
    if args.keep_reports:
        report_dir = Path(tempfile.mkdtemp(prefix=f"rc-conc-{seed}-"))
        print(f"reports: {report_dir}", file=sys.stderr)
        return run_suite(build(), *extra, report_dir=report_dir)
    return run_suite(build(), *extra)


def _row(score: Score) -> str:
    n = score.runs
    ids = ", ".join(
        f"**{rid}** {count}/{n}" if rid in score.expected else f"{rid} {count}/{n}"
        for rid, count in sorted(score.failed_ids.items())
    )
    wall = f"{statistics.median(score.walls):.1f} s" if score.walls else "—"
    bad = ", ".join(map(str, sorted(score.bad_seeds))) or "—"
    if score.kind == "variant":
        return f"| {score.name} | {score.ok}/{n} | {ids or '—'} | {wall} | {bad} |"
    firsts = [ms / 1000 for ms in score.first_failures_ms]
    first = f"{statistics.median(firsts):.2f} s ({min(firsts):.2f}–{max(firsts):.2f})" if firsts else "—"
    expected = ", ".join(score.expected)
    return f"| {score.name} | {expected} | {score.ok}/{n} | {ids or '—'} | {first} | {wall} | {bad} |"


def _table(title: str, scores: Sequence[Score]) -> list[str]:
    if not scores:
        return []
    if scores[0].kind == "variant":
        header = ["| server | passed | failed IDs (runs) | run time | seeds failed |", "|---|---|---|---|---|"]
    else:
        header = [
            "| fault | must fail | caught | failed IDs (runs) | first failure: median (min–max) | run time "
            "| seeds missed |",
            "|---|---|---|---|---|---|---|",
        ]
    return [
        f"## {title}",
        "",
        *header,
        *(_row(score) for score in scores),
        "",
        *(f"- **{score.name}**: {score.description}{_others(score)}" for score in scores),
        "",
    ]


def _others(score: Score) -> str:
    if score.others is None:
        return ""
    return f". The rest of the suite (quick, seed 1) fails: {', '.join(score.others) or 'nothing'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="runs (seeds 1..N) per server (20)")
    parser.add_argument("--profile", default="default", help="the suite's profile (default)")
    parser.add_argument("--workload-seconds", type=float, default=None, help="override the profile's workload time")
    parser.add_argument("--need", type=int, default=None, help="runs a fault must be caught in (default: N - N//20)")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="these faults and variants only")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the table goes")
    parser.add_argument("--keep-reports", action="store_true", help="keep each run's report directory (printed)")
    parser.add_argument(
        "--others", action="store_true", help="also run the rest of the quick suite once against each fault"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process (1)")
    parser.add_argument(
        "--as-ci",
        action="store_true",
        help="the budget tests/test_selfcheck.py gives the faults: --profile quick and each fault's own cli_args",
    )
    args = parser.parse_args(argv)
    if args.as_ci:
        args.profile = "quick"
    need = args.need if args.need is not None else args.runs - args.runs // 20

    by_name = _servers()
    if args.only:
        unknown = set(args.only) - set(by_name)
        if unknown:
            parser.error(f"unknown faults or variants: {', '.join(sorted(unknown))}")
        by_name = {name: server for name, server in by_name.items() if name in args.only}
    servers = list(by_name.values())

    # One unrecorded run first: the first run in a process pays one-off costs (imports, spec set-up).
    run_suite(create_app(list(TOKENS)), "--profile", "quick", "--select", "CONC-001", "--quiet")
    started = time.monotonic()
    jobs = [(score, seed) for score, _, _ in servers for seed in range(1, args.runs + 1)]
    context = multiprocessing.get_context("spawn")  # the parent serves threads: never fork it
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        futures = {pool.submit(_run, score.name, seed, args): (score, seed) for score, seed in jobs}
        for future in concurrent.futures.as_completed(futures):
            score, seed = futures[future]
            run = future.result()
            _judge(score, run, seed)
            verdict = ("pass" if run.exit_code == 0 else "FAIL") if score.kind == "variant" else f"exit {run.exit_code}"
            print(
                f"{score.name} seed {seed}: {verdict}, failed {run.ids_with('failed') or '-'} ({run.wall_s:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
            if score.kind == "variant" and run.exit_code != 0:
                print(run.explain(), file=sys.stderr, flush=True)
    if args.others:
        # Whether a fault is a concurrency fault only: what every other check finds against it.
        areas = sorted({req.area for req in catalog().values()} - {"concurrency"})
        for score, build, _ in servers:
            if score.kind != "variant":
                run = run_suite(build(), "--profile", "quick", "--strict", "--seed", "1", "--quiet", "--select", *areas)
                score.others = run.ids_with("failed", "error")
                print(f"{score.name}: the rest of the suite fails {score.others or 'nothing'}", file=sys.stderr)
    total = time.monotonic() - started

    faults = [s for s, _, _ in servers if s.kind == "fault"]
    variants = [s for s, _, _ in servers if s.kind == "variant"]
    caught = sum(s.ok >= need for s in faults)
    clean = sum(s.ok == s.runs for s in variants)
    seconds = f" --workload-seconds {args.workload_seconds:g}" if args.workload_seconds else ""
    budget = f"--profile {args.profile}{seconds}" + (" (and each fault's cli_args)" if args.as_ci else "")
    lines = [
        "# Concurrency score",
        "",
        f"**{caught}/{len(faults)} concurrency faults caught in at least {need} of {args.runs} runs; "
        f"{clean}/{len(variants)} correct servers passed every run.**",
        "",
        f"Generated by `python scripts/concurrency_score.py -n {args.runs}"
        + (" --as-ci" if args.as_ci else f" --profile {args.profile}" if args.profile != "default" else "")
        + (" --others" if args.others else "")
        + seconds
        + f"` on {datetime.now(UTC).date().isoformat()} ({platform.python_implementation()} "
        f"{platform.python_version()}, {total / 60:.0f} min in all, on a shared two-core machine): each server "
        f"on a loopback port, and `runs-conformance run {budget} --select concurrency --strict --seed S` "
        f"for S = 1..{args.runs}.",
        "",
        "- **caught** / **passed**: runs where the fault failed every ID it must (exit 1), or where the correct "
        "server passed every CONC ID (exit 0).",
        "- **failed IDs**: in how many runs each CONC ID failed; the ones the fault must fail in bold.",
        "- **first failure**: when the earliest finding was proven, counted from the workload's first request "
        "(the last answer among the finding's operations): how long the workload must run to show the bug.",
        "- **run time**: the whole run (server start excluded), median.",
        "",
        *_table("Faults (tests/support/faults_concurrency.py: CONCURRENCY_FAULTS)", faults),
        *_table("Correct servers (the reference, and tests/support/servers.py: VARIANTS)", variants),
    ]
    text = "\n".join(lines)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0 if caught == len(faults) and clean == len(variants) else 1


if __name__ == "__main__":
    raise SystemExit(main())
