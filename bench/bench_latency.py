"""Wall time of a profile with the server a fixed round-trip time away, through bench/latency_proxy.py.

    python bench/bench_latency.py [--profile default] [--delays-ms 0 20 50] [--args ''] [--args '--workers 1']
                                  [--repeat 1] [--seed 1] [--keep DIR]

For each set of extra CLI arguments (`--args`, repeatable, split like a shell line; default one
empty set) and each delay, a fresh reference server (its own process, counting requests) sits
behind a LatencyProxy in this process that adds the delay to every round trip, and
`runs-conformance run --base-url <proxy> --profile P --strict --seed S ARGS` runs against it
(through _timed_suite.py, CI=true). Recorded per run: wall time, the checks phase and cleanup,
requests (lines of exchanges.jsonl: the checks' requests; the server's count adds preflight and
cleanup), exit code, verdict, and seconds and requests per check (progress lines, exchanges.jsonl).

Printed and written to reports/bench.json under "latency" (one entry per profile; a later run of
the same profile replaces it): each run's ratio to the baseline (the first argument set at the
first delay, 0 ms by default, measured in this same process), and its serial fraction:
(wall - wall at 0 ms, same arguments) / (requests the server answered x the added RTT, measured
before the run), which is about 1.0 when every request waits for the one before it and falls as
requests overlap. The delays are what --workers is meant to hide, so this is the figure to compare
`--args '--workers auto'` on.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_JSON,
    OTHER_TOKEN,
    PYTHON,
    ROOT,
    TOKEN,
    check_durations,
    env,
    median,
    reference_server,
    timed,
    write_figures,
)
from latency_proxy import LatencyProxy

KEY = "latency"
CALIBRATION_SAMPLES = 20
SLOWEST = 12  # checks listed per run in bench.json (the full table stays in --keep)


def suite_command(
    base_url: str, profile: str, seed: int, timing_out: Path, report_dir: Path, extra: list[str]
) -> list[str]:
    # Not _common.timed_suite_command: that one passes --quiet, and the per-check seconds come from
    # the progress lines.
    return [
        PYTHON, str(ROOT / "bench" / "_timed_suite.py"), str(timing_out),
        "run", "--base-url", base_url, "--token", TOKEN, "--other-token", OTHER_TOKEN,
        "--profile", profile, "--strict", "--seed", str(seed), "--report-dir", str(report_dir), *extra,
    ]  # fmt: skip


def per_check(stderr: str, exchanges: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Seconds, requests and seconds spent waiting for responses, per check, in the order they ran."""
    seconds = check_durations(stderr)
    requests = Counter(e["check"] for e in exchanges)
    waiting: dict[str, float] = {}
    for e in exchanges:
        waiting[e["check"]] = waiting.get(e["check"], 0.0) + float(e.get("elapsed_ms") or 0.0) / 1000
    names = list(seconds) + [n for n in requests if n not in seconds]
    return {
        n: {
            "s": round(seconds.get(n, 0.0), 2),
            "requests": requests.get(n, 0),
            "in_requests_s": round(waiting.get(n, 0.0), 2),
        }
        for n in names
    }


def added_rtt_ms(direct_url: str, proxy_url: str, samples: int = CALIBRATION_SAMPLES) -> float:
    """What the proxy adds to one round trip, measured: the delay, plus up to ~1 ms per direction of
    event-loop timer granularity (epoll rounds timeouts up to whole milliseconds) and its own hop."""
    took: dict[str, list[float]] = {direct_url: [], proxy_url: []}
    with httpx.Client(timeout=30) as http:
        for _ in range(samples):  # in turns, so that load on the machine falls on both alike
            for url in took:
                began = time.perf_counter()
                http.get(f"{url}/__bench/count").raise_for_status()  # answered without reaching the app
                took[url].append(time.perf_counter() - began)
    return 1000 * (median(took[proxy_url]) - median(took[direct_url]))


def one_run(profile: str, delay_ms: float, extra: list[str], seed: int, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp, reference_server() as server:
        host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
        with LatencyProxy(host, int(port), delay_ms / 1000) as proxy:
            rtt_ms = added_rtt_ms(server.base_url, proxy.url)
            before = server.count()  # asked directly, not through the proxy
            timing_out, report_dir = Path(tmp) / "timed.json", Path(tmp) / "r"
            result = timed(
                suite_command(proxy.url, profile, seed, timing_out, report_dir, extra),
                cwd=Path(tmp),
                environment=env(),
                timeout=3 * 3600,
            )
            server_requests = server.count() - before
            proxy_stats = proxy.stats
        report_path = report_dir / "conformance.json"
        report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
        exchanges_path = report_dir / "exchanges.jsonl"
        exchanges = (
            [json.loads(line) for line in exchanges_path.read_text(encoding="utf-8").splitlines()]
            if exchanges_path.exists()
            else []
        )
        timing = json.loads(timing_out.read_text(encoding="utf-8")) if timing_out.exists() else {}
        checks = per_check(result.stderr, exchanges)
        if keep is not None:
            label = f"{profile}-{delay_ms:g}ms" + (f"-{'_'.join(a.strip('-') for a in extra)}" if extra else "")
            target = keep / label
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(report_dir, target)
            (target / "stderr.txt").write_text(result.stderr, encoding="utf-8")
            (target / "per_check.json").write_text(json.dumps(checks, indent=1), encoding="utf-8")
    not_passed = sorted(
        f"{r['id']} {r['status']}" for r in report.get("requirements", []) if r["status"] not in {"passed", "not_run"}
    )
    return {
        "wall_s": round(result.seconds, 2),
        "checks_s": round(timing.get("checks_s", float("nan")), 2),
        "cleanup_s": round(timing.get("cleanup_s", float("nan")), 2),
        "requests": len(exchanges),
        "server_requests": server_requests,
        "added_rtt_ms": round(rtt_ms, 2),
        "connections": proxy_stats.connections,
        "exit_code": result.returncode,
        "verdict": report.get("verdict", "no report"),
        "not_passed": not_passed,
        "checks": checks,
        "stderr_tail": result.stderr.strip().splitlines()[-3:] if result.returncode not in (0, 1) else [],
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run of repeats (by wall time), with every repeat's wall time."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["wall_s_runs"] = [r["wall_s"] for r in runs]
    middle["wall_s_median"] = round(median([r["wall_s"] for r in runs]), 2)
    middle["exit_codes"] = sorted({r["exit_code"] for r in runs})
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", default="default", choices=["quick", "default", "thorough"])
    parser.add_argument("--delays-ms", type=float, nargs="+", default=[0.0, 20.0, 50.0])
    parser.add_argument(
        "--args",
        action="append",
        dest="arg_sets",
        metavar="'ARGS'",
        help="extra CLI arguments, one shell-quoted set per use (default: one empty set)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per (arguments, delay); the median is kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="copy each run's reports and per-check table into this directory")
    args = parser.parse_args()
    arg_sets = [shlex.split(a) for a in (args.arg_sets or [""])]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)

    results: list[dict[str, Any]] = []
    for extra in arg_sets:
        for delay in args.delays_ms:
            repeats = []
            for _ in range(args.repeat):
                began = time.monotonic()
                repeats.append(one_run(args.profile, delay, extra, args.seed, args.keep))
                print(
                    f"  {args.profile} +{delay:g} ms {shlex.join(extra) or '(no extra args)'}: "
                    f"{repeats[-1]['wall_s']:.1f} s, {repeats[-1]['requests']} requests, "
                    f"exit {repeats[-1]['exit_code']} (took {time.monotonic() - began:.0f} s)",
                    flush=True,
                )
            results.append({"args": extra, "delay_ms": delay, **summarise(repeats)})

    baseline = results[0]
    zero = {shlex.join(r["args"]): r for r in results if r["delay_ms"] == 0}
    for r in results:
        r["ratio_to_baseline"] = round(r["wall_s_median"] / baseline["wall_s_median"], 2)
        base = zero.get(shlex.join(r["args"]))
        if base is not None and r["delay_ms"] > 0 and r["server_requests"]:
            # Against what the run would have added had every round trip waited for the one before:
            # each request the server answered (preflight and cleanup too) times the measured added RTT.
            added = r["wall_s_median"] - base["wall_s_median"]
            sequential = r["server_requests"] * (r["added_rtt_ms"] - base["added_rtt_ms"]) / 1000
            r["serial_fraction"] = round(added / sequential, 2) if sequential > 0 else None

    print(
        f"\nprofile {args.profile}, seed {args.seed}; baseline: "
        f"{shlex.join(baseline['args']) or '(no extra args)'} at {baseline['delay_ms']:g} ms"
    )
    header = ("args", "delay", "+RTT ms", "wall s", "checks s", "requests", "exit", "ratio", "serial")
    print("{:<22} {:>6} {:>7} {:>8} {:>9} {:>9} {:>5} {:>6} {:>7}  verdict".format(*header))
    for r in results:
        serial = f"{r['serial_fraction']:.2f}" if r.get("serial_fraction") is not None else ""
        print(
            f"{shlex.join(r['args']) or '-':<22} {r['delay_ms']:>4g}ms {r['added_rtt_ms']:>7.1f} "
            f"{r['wall_s_median']:>8.1f} {r['checks_s']:>9.1f} {r['requests']:>9} {r['exit_code']:>5} "
            f"{r['ratio_to_baseline']:>6.2f} {serial:>7}  {r['verdict']}"
        )
        for line in r["not_passed"][:5]:
            print(f"{'':<30}{line}")
    slow = max(results, key=lambda r: r["delay_ms"])
    at_zero = zero.get(shlex.join(slow["args"]), baseline)
    ranked = sorted(slow["checks"].items(), key=lambda kv: -kv[1]["s"])[:SLOWEST]
    print(f"\nslowest checks at {slow['delay_ms']:g} ms (seconds at 0 ms, requests):")
    for name, c in ranked:
        before = at_zero["checks"].get(name, {}).get("s", 0.0)
        print(f"  {c['s']:7.1f} s  ({before:5.1f} s)  {c['requests']:5} requests  {name}")

    for r in results:
        r["slowest_checks"] = dict(sorted(r.pop("checks").items(), key=lambda kv: -kv[1]["s"])[:SLOWEST])
    try:
        previous = json.loads(BENCH_JSON.read_text(encoding="utf-8")).get(KEY, {})
    except (OSError, ValueError):
        previous = {}
    previous.pop("measured_at", None)
    previous.pop("cpus", None)
    previous[args.profile] = {
        "seed": args.seed,
        "repeat": args.repeat,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": results,
    }
    write_figures(KEY, previous)


if __name__ == "__main__":
    main()
