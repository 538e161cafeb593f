"""The history checker's cost as the history grows: 10k, 30k and 100k operations of a correct server.

    python bench/bench_history_checker.py [--sizes 10000 30000 100000] [--repeat 3] [--seed 1]

Each history comes from the simulated correct server of tests/support/history_model.py (4 clients with
overlapping requests, many runs and Idempotency-Keys, listRuns walks, unanswered requests), built
once per size and not timed. `check_history` is timed on each (median of the repeats, one core: the
checker is single-threaded), and must find nothing, since the server is correct. The figures are
seconds, microseconds per operation and per observation (a response showing a run's status, a
listRuns item each), and the per-operation cost at each size relative to the smallest: about 1 when
the cost grows linearly, log(n)-ish at most. The target is at most 10 s for 100k operations; the
script asserts nothing about time (the machine is shared), it prints and records.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, median, write_figures

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.history_model import correct_history

from conformance.history_checker import check_history

TARGET_S = 10.0
TARGET_OPS = 100_000


def measure(size: int, repeat: int, seed: int) -> dict[str, Any]:
    began = time.perf_counter()
    history = correct_history(seed=seed, operations=size, clients=4)
    built_s = time.perf_counter() - began
    observations = len(history.observations)
    times = []
    findings = 0
    for _ in range(repeat):
        # A fresh History each time: deriving observations and walks (cached per instance) is part of the cost.
        fresh = type(history)(history.operations)
        began = time.perf_counter()
        findings = len(check_history(fresh))
        times.append(time.perf_counter() - began)
    seconds = median(times)
    walks = fresh.walks
    return {
        "operations": size,
        "observations": observations,
        "runs": len(fresh.runs()),
        "walks": len(walks),
        "check_s_median": round(seconds, 3),
        "check_s_all": [round(t, 3) for t in times],
        "us_per_operation": round(1e6 * seconds / size, 2),
        "us_per_observation": round(1e6 * seconds / max(observations, 1), 2),
        "findings": findings,
        "history_built_s": round(built_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for size in sorted(args.sizes):
        row = measure(size, args.repeat, args.seed)
        rows.append(row)
        print(
            f"{size:>7} ops ({row['observations']} observations, {row['runs']} runs, {row['walks']} walks): "
            f"{row['check_s_median']:.2f} s, {row['us_per_operation']:.1f} µs/op, "
            f"{row['us_per_observation']:.2f} µs/observation, {row['findings']} findings",
            flush=True,
        )
    base = rows[0]["us_per_operation"]
    for row in rows:
        row["per_op_vs_smallest"] = round(row["us_per_operation"] / base, 2)
    print("per-operation cost relative to the smallest history: " + ", ".join(
        f"{row['operations']}: {row['per_op_vs_smallest']:.2f}" for row in rows
    ))  # fmt: skip
    largest = next((row for row in rows if row["operations"] == TARGET_OPS), None)
    figures: dict[str, Any] = {"sizes": rows, "target_s": TARGET_S, "target_operations": TARGET_OPS}
    if largest is not None:
        figures["meets_target"] = largest["check_s_median"] <= TARGET_S
        print(f"{TARGET_OPS} operations: {largest['check_s_median']:.2f} s (target <= {TARGET_S:.0f} s)")
    if any(row["findings"] for row in rows):
        print("the checker found something in a correct server's history: a false alarm to investigate")
    write_figures("history_checker", figures)


if __name__ == "__main__":
    main()
