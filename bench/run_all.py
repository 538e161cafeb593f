"""Every benchmark, one after another, then a summary of reports/bench.json against the targets.

    python bench/run_all.py [--quick] [--latency] [--latency-only] [--summary-only]

Runs bench_suite_profiles.py, bench_schema_phase.py, bench_request_rate.py,
bench_reference_server.py, bench_history_checker.py, bench_observe.py and bench_observe_live.py, each in its
own process (never at the same time: they would measure each other), each merging its figures into reports/bench.json.
--quick repeats less and skips the default profile's wall time; --latency also runs
bench_latency.py (the suite behind a proxy adding 0, 20 and 50 ms per round trip).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_JSON, PYTHON, ROOT, env


def run(script: str, *args: str) -> None:
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    code = subprocess.run([PYTHON, str(ROOT / "bench" / script), *args], env=env(), check=False).returncode
    if code:
        print(f"{script} exited {code}", flush=True)


def summary(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def mark(ok: Any) -> str:
        return "yes" if ok else "NO"

    profiles = data.get("suite_profiles", {})
    for name in ("quick", "default"):
        if name in profiles:
            p = profiles[name]
            rows.append(
                (
                    f"suite wall time, {name}",
                    f"{p['wall_s_median']:.1f} s",
                    f"<= {p['target_s']:.0f} s",
                    mark(p["meets_target"]),
                )
            )
    if "imports_s" in profiles:
        rows.append(("  of which imports", f"{profiles['imports_s']:.1f} s", "", ""))
    if "schema_phase" in data:
        s = data["schema_phase"]
        rows.append(
            (
                f"schema phase ms/request vs schemathesis run ({s['profile']})",
                f"{s['suite']['per_request_ms_median']:.1f} / {s['schemathesis_cli']['per_request_ms_median']:.1f}"
                f" = {s['ratio_per_request']:.2f}",
                f"<= {s['target']}",
                mark(s["meets_target"]),
            )
        )
    if "request_rate" in data:
        r = data["request_rate"]
        rows.append(
            (
                f"requests/s, suite vs httpx loop ({r['profile']})",
                f"{r['suite']['requests_per_s_median']:.0f} / {r['httpx_loop']['requests_per_s_median']:.0f}"
                f" = {r['ratio']:.2f}",
                f">= {r['target']}",
                mark(r["meets_target"]),
            )
        )
    for name, entry in sorted(data.get("latency", {}).items()):
        if not isinstance(entry, dict) or "runs" not in entry:
            continue
        for r in entry["runs"]:
            extra = " ".join(r["args"])
            serial = f", serial {r['serial_fraction']:.2f}" if r.get("serial_fraction") is not None else ""
            rows.append(
                (
                    f"{name} +{r['delay_ms']:g} ms per round trip{' ' + extra if extra else ''}",
                    f"{r['wall_s_median']:.1f} s = {r['ratio_to_baseline']:.2f}x{serial}",
                    "",
                    f"exit {r['exit_code']}",
                )
            )
    if "reference_server" in data:
        v = data["reference_server"]
        rows.append(
            ("server startRun / getRun req/s", f"{v['start_run_per_s']:.0f} / {v['get_run_per_s']:.0f}", "", "")
        )
        rows.append(
            (
                f"server listRuns page, {v['runs_in_large_store']} vs 100 runs (worst)",
                f"{v['list_page_worst_ratio']:.2f}",
                f"<= {v['list_target_ratio']}",
                mark(v["meets_target"]),
            )
        )
        rows.append(
            (f"server RSS at {v['runs_in_large_store']} runs", f"{v['rss_mib_at_large_store']:.0f} MiB", "", "")
        )
    if "history_checker" in data:
        h = data["history_checker"]
        largest = max(h["sizes"], key=lambda row: row["operations"])
        scaling = ", ".join(f"{row['per_op_vs_smallest']:.2f}" for row in h["sizes"])
        rows.append(
            (
                f"history checker, {largest['operations']} operations",
                f"{largest['check_s_median']:.2f} s",
                f"<= {h['target_s']:.0f} s",
                mark(h.get("meets_target")),
            )
        )
        rows.append(("  per-op cost vs the smallest history", scaling, "~1", ""))
    if "observe_live" in data:
        live = data["observe_live"]
        rows.append(
            (
                f"observe --listen, added per request at {live['rate']:g} req/s (p50 / p99)",
                f"{live['added_p50_ms']:.1f} / {live['added_p99_ms']:.1f} ms",
                "",
                "",
            )
        )
        rows.append(("  proxy CPU per request (mitmdump alone)", f"{live['proxy_cpu_ms_per_request']:.2f} ms "
                     f"({live['mitmdump_cpu_ms_per_request']:.2f} ms)", "", ""))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no default-profile wall time")
    parser.add_argument("--summary-only", action="store_true", help="print the summary of reports/bench.json")
    parser.add_argument("--latency", action="store_true", help="also run bench_latency.py (minutes more)")
    parser.add_argument("--latency-only", action="store_true", help="run only bench_latency.py")
    args = parser.parse_args()
    if not args.summary_only:
        repeat = "1" if args.quick else "3"
        profiles = ["quick"] if args.quick else ["quick", "default"]
        if not args.latency_only:
            run("bench_suite_profiles.py", "--profiles", *profiles, "--repeat", repeat, "--cold")
            run("bench_schema_phase.py", "--repeat", repeat)
            run("bench_request_rate.py", "--repeat", repeat)
            run("bench_reference_server.py")
            run("bench_history_checker.py", "--repeat", repeat)
            run("bench_observe.py", "--repeat", repeat)
            run("bench_observe_live.py", "--repeat", "1" if args.quick else "2")
        if args.latency or args.latency_only:
            # One run per delay: at 50 ms the added time (~requests x 50 ms) dwarfs the machine's noise.
            # Workers 1 (every check in turn) against auto (the default): what running side by side buys.
            for profile in profiles:
                run("bench_latency.py", "--profile", profile, "--args", "--workers 1", "--args", "--workers auto")
    data = json.loads(BENCH_JSON.read_text(encoding="utf-8"))
    rows = summary(data)
    width = max(len(r[0]) for r in rows)
    measured = max(22, *(len(r[1]) for r in rows))
    print(f"\n{'figure':<{width}}  {'measured':<{measured}} {'target':<9} met")
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:<{measured}} {target:<9} {ok}")


if __name__ == "__main__":
    main()
