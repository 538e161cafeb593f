"""Wall time of `runs-conformance run --profile P` against the bundled server (a script, not a test).

    python bench/bench_suite_profiles.py [--profiles quick default] [--repeat 3] [--cold]

Each run is a fresh process (`python -m conformance.cli run --profile P`, CI=true so it is
deterministic, reports into a temporary directory, the working directory an empty one): the wall
time a user waits, imports included. Prints the median per profile against its target (quick
10 s, default 60 s on a 2-core machine), where the time goes (imports and startup, the checks,
the slowest checks by median), and with --cold also a run with an empty Hypothesis cache (what
every run paid before the cache moved to the user's cache directory).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, check_durations, env, median, timed, write_figures

TARGETS = {"quick": 10.0, "default": 60.0}
IMPORTS = "import conformance.cli, conformance.runner, conformance.checks.schema, hypothesis, schemathesis"


def one_run(profile: str, *, cold: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        extra = {"HYPOTHESIS_STORAGE_DIRECTORY": str(Path(tmp) / "hypothesis")} if cold else {}
        result = timed(
            [PYTHON, "-m", "conformance.cli", "run", "--profile", profile, "--report-dir", str(Path(tmp) / "r")],
            cwd=cwd,
            environment=env(**extra),
        )
        report = json.loads((Path(tmp) / "r" / "conformance.json").read_text(encoding="utf-8"))
        exchanges = sum(1 for _ in (Path(tmp) / "r" / "exchanges.jsonl").open(encoding="utf-8"))
        leftovers = sorted(p.name for p in cwd.iterdir())
    durations = check_durations(result.stderr)
    return {
        "wall_s": result.seconds,
        "in_run_s": float(report["duration_s"]),
        "checks_s": sum(durations.values()),
        "exit_code": result.returncode,
        "verdict": report["verdict"],
        "exchanges": exchanges,
        "checks": durations,
        "written_to_cwd": leftovers,
    }


def import_seconds(repeat: int) -> float:
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            samples.append(timed([PYTHON, "-c", IMPORTS], cwd=Path(tmp), environment=env()).seconds)
    return median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["quick", "default"], choices=["quick", "default", "thorough"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per profile (median reported)")
    parser.add_argument("--cold", action="store_true", help="also time quick with an empty Hypothesis cache")
    args = parser.parse_args()

    figures: dict[str, Any] = {"imports_s": import_seconds(3)}
    one_run("quick", cold=False)  # warm the user's Hypothesis cache, as any earlier run would have
    if args.cold:
        cold = [one_run("quick", cold=True) for _ in range(args.repeat)]
        figures["quick_cold_cache"] = {"wall_s_median": median([r["wall_s"] for r in cold])}
    for profile in args.profiles:
        runs = [one_run(profile, cold=False) for _ in range(args.repeat)]
        names = runs[0]["checks"].keys()
        per_check = {n: median([r["checks"].get(n, 0.0) for r in runs]) for n in names}
        wall = median([r["wall_s"] for r in runs])
        entry: dict[str, Any] = {
            "wall_s_median": round(wall, 2),
            "wall_s_runs": [round(r["wall_s"], 2) for r in runs],
            "in_run_s_median": round(median([r["in_run_s"] for r in runs]), 2),
            "checks_s_median": round(median([r["checks_s"] for r in runs]), 2),
            "exchanges_median": median([r["exchanges"] for r in runs]),
            "verdicts": sorted({r["verdict"] for r in runs}),
            "written_to_cwd": sorted({n for r in runs for n in r["written_to_cwd"]}),
            "slowest_checks_s": dict(sorted(per_check.items(), key=lambda kv: -kv[1])[:8]),
        }
        if profile in TARGETS:
            entry["target_s"] = TARGETS[profile]
            entry["ratio_to_target"] = round(wall / TARGETS[profile], 3)
            entry["meets_target"] = wall <= TARGETS[profile]
        figures[profile] = entry

    print(f"imports (cli, runner, checks, hypothesis, schemathesis): {figures['imports_s']:.2f} s")
    if "quick_cold_cache" in figures:
        print(f"quick with an empty Hypothesis cache: {figures['quick_cold_cache']['wall_s_median']:.2f} s")
    for profile in args.profiles:
        e = figures[profile]
        target = f"target {e['target_s']:.0f} s, ratio {e['ratio_to_target']:.2f}" if "target_s" in e else ""
        print(
            f"{profile:<8} wall {e['wall_s_median']:6.2f} s (runs {e['wall_s_runs']}) {target}; "
            f"in run {e['in_run_s_median']:.2f} s, checks {e['checks_s_median']:.2f} s, "
            f"{e['exchanges_median']:.0f} exchanges, verdicts {e['verdicts']}"
        )
        for name, seconds in e["slowest_checks_s"].items():
            print(f"    {seconds:5.1f} s  {name}")
    write_figures("suite_profiles", figures)


if __name__ == "__main__":
    main()
