"""Mutation score: run the suite against each single-client fault (tests/support/faults.py), tabulate what it caught.

    python scripts/mutation_score.py                  # --select the areas of each fault's IDs (as the test does)
    python scripts/mutation_score.py --write-readme   # the same, and rewrite README.md's per-area counts
    python scripts/mutation_score.py --full           # the whole quick suite against each fault (slower)
    python scripts/mutation_score.py --only etag-strong page-limit-ignored

Writes docs/mutation-score.md (a Markdown table, one row per fault) and prints it; with
--write-readme, after a run of every fault, rewrites the per-area table of README.md between its
`<!-- mutation-score:start -->` and `<!-- mutation-score:end -->` markers. Both are derived from the
fault table and the run, and carry no date and no timing, so a rerun that catches the same faults
changes nothing in git (tests/test_selfcheck_catalog.py holds the README's counts to the faults of
today). A fault is caught when the run exits 1 and every ID it names is failed (under --strict, so a
SHOULD counts).

Timings go to stderr, one line per fault: "first failure" is when the first check that found a
failure finished, measured from the start of the run (the report has per-requirement durations but
no timestamps, so it is read off the progress lines as they are written); "run time" is the whole
run, server start excluded. --timings also writes them into docs/mutation-score.md. Exits 1 if any
fault was missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.harness import SuiteRun, quick_args, run_suite  # noqa: E402
from support.servers import SINGLE_CLIENT_FAULTS, Fault  # noqa: E402
from support.tokens import TOKENS  # noqa: E402

from reference_impl.app import create_app  # noqa: E402

OUTPUT = ROOT / "docs" / "mutation-score.md"
README = ROOT / "README.md"
START, END = "<!-- mutation-score:start -->", "<!-- mutation-score:end -->"
AREA_LABELS = {"etag": "etag and definition"}  # the README's name for an area, where it differs


def area_table(results: list[tuple[Fault, bool]]) -> str:
    """Faults and how many were caught, per area in the order of SINGLE_CLIENT_FAULTS, and in all."""
    lines = ["| area | faults | caught |", "|---|---|---|"]
    for area in dict.fromkeys(item.area for item, _ in results):
        caught = [ok for item, ok in results if item.area == area]
        lines.append(f"| {AREA_LABELS.get(area, area)} | {len(caught)} | {sum(caught)} |")
    lines.append(f"| **all** | **{len(results)}** | **{sum(ok for _, ok in results)}** |")
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """What README.md holds between the markers."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {START} ... {END}")
    return text[start + len(START) : end].strip("\n")


def write_readme(table: str, path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    old = readme_table(text)
    path.write_text(text.replace(f"{START}\n{old}\n{END}", f"{START}\n{table}\n{END}", 1), encoding="utf-8")


def _caught(fault: Fault, run: SuiteRun) -> bool:
    return run.exit_code == 1 and all(run.status(rid) == "failed" for rid in fault.breaks)


def fault_row(fault: Fault, run: SuiteRun, timings: bool = False) -> str:
    """The fault's row of docs/mutation-score.md: what the run caught; its timings only when asked."""
    failed = run.ids_with("failed")
    missed = [rid for rid in fault.breaks if run.status(rid) != "failed"]
    shown = ", ".join(f"**{rid}**" if rid in fault.breaks else rid for rid in failed) or "—"
    verdict = (
        "yes" if _caught(fault, run) else f"**NO** (not failed: {', '.join(missed) or 'exit ' + str(run.exit_code)})"
    )
    errors = run.ids_with("error")
    if errors:
        shown += f" (suite errors: {', '.join(errors)})"
    cells = [fault.name, fault.area, ", ".join(fault.breaks), verdict, shown]
    if timings:
        cells += [_first_failure(run), f"{run.wall_s:.1f} s"]
    return f"| {' | '.join(cells)} |"


def _first_failure(run: SuiteRun) -> str:
    return f"{run.first_failure_s:.1f} s" if run.first_failure_s is not None else "—"


def render_doc(rows: list[str], caught: int, full: bool, timings: bool) -> str:
    """docs/mutation-score.md: no date, no Python version, no timing unless asked, so reruns leave it alone."""
    scope = "the whole quick suite" if full else "`--select` of the areas of the IDs each fault names"
    head = "| fault | area | expected IDs | caught? | failed IDs |"
    rule = "|---|---|---|---|---|"
    notes = [
        "- **caught**: the run exited 1 and every expected ID is `failed` (SHOULDs count under `--strict`).",
        "- **failed IDs**: every requirement the run failed; the expected ones in bold.",
    ]
    if timings:
        head, rule = head + " first failure | run time |", rule + "---|---|"
        notes += [
            "- **first failure**: when the first check that found a failure finished, from the start of the run "
            "(read off the progress lines: the report has per-requirement durations, not timestamps).",
            "- **run time**: the whole run, to the written report (cleanup included).",
        ]
    return "\n".join(
        [
            "# Mutation score",
            "",
            f"**{caught}/{len(rows)} faults caught** on the IDs they name.",
            "",
            f"Generated by `python scripts/mutation_score.py{' --full' if full else ''}`: each fault of "
            "`tests/support/faults.py` served on a loopback port, and `runs-conformance run --profile quick "
            f"--strict --seed 1` with {scope}.",
            "",
            *notes,
            "",
            head,
            rule,
            *rows,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run the whole quick suite against each fault")
    parser.add_argument("--only", nargs="+", default=[], metavar="FAULT", help="these faults only")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the table goes")
    parser.add_argument(
        "--write-readme", action="store_true", help="rewrite README.md's per-area counts (needs every fault)"
    )
    parser.add_argument("--timings", action="store_true", help="write each run's timings into the table too")
    args = parser.parse_args(argv)

    chosen = [f for f in SINGLE_CLIENT_FAULTS if not args.only or f.name in args.only]
    unknown = set(args.only) - {f.name for f in chosen}
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    if args.write_readme and args.only:
        # Only a run of every fault speaks for the whole catalog.
        parser.error("--write-readme needs a run of every fault: drop --only")
    # One run against the reference first, unrecorded: the first run in a process pays one-off costs
    # (imports, Hypothesis and schema set-up) that would otherwise count against the first fault.
    run_suite(create_app(list(TOKENS)), *quick_args(("etag",)))
    rows: list[str] = []
    results: list[tuple[Fault, bool]] = []
    started = time.monotonic()
    for fault in chosen:
        select = () if args.full else fault.select
        run = run_suite(fault.build(TOKENS), *quick_args(select, *fault.cli_args))
        results.append((fault, _caught(fault, run)))
        rows.append(fault_row(fault, run, args.timings))
        print(f"{fault_row(fault, run)}  first failure {_first_failure(run)}, run {run.wall_s:.1f} s", file=sys.stderr)
    print(f"{len(chosen)} faults in {time.monotonic() - started:.0f} s", file=sys.stderr)
    caught_count = sum(caught for _, caught in results)

    table = render_doc(rows, caught_count, args.full, args.timings)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table, encoding="utf-8")
    print(table)
    areas = area_table(results)
    if args.write_readme:
        write_readme(areas)
        print(f"rewrote the mutation table of {README}", file=sys.stderr)
    print(areas)
    return 0 if caught_count == len(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
