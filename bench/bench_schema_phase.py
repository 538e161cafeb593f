"""The suite's schema-level phase against `schemathesis run` on the same spec, server and budget.

    python bench/bench_schema_phase.py [--profile default] [--repeat 3]

One reference server (its own process, counting the requests it answers) serves both, in turns:
- the suite: `runs-conformance run --select <the six Schemathesis checks>` under CI=true, the
  profile's example budget (`schema_examples`) and phases;
- the CLI: `schemathesis run openapi/runs.yaml --url ... -H 'Authorization: Bearer T' -n <same budget>
  --phases <same phases> --generation-deterministic` (deterministic implies no example database)
  with the same checks excluded.
Each command's wall time is divided by the requests the server counted for it, and the suite's
time per request is given as a ratio to the CLI's (target at most 1.2). Both include process
start-up; the suite's figure also shows its checks phase alone (time inside the checks / requests
they made, from exchanges.jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT, TOKEN, env, median, reference_server, timed, timed_suite_command, write_figures

sys.path.insert(0, str(ROOT))

from conformance.profiles import PROFILES
from conformance.schema_phase import EXCLUDED_CHECKS

SCHEMA_CHECKS = [
    "schemathesis_start_run",
    "schemathesis_list_runs",
    "schemathesis_get_run",
    "schemathesis_get_run_definition",
    "schemathesis_cancel_run",
    "schemathesis_stateful",
]
TARGET = 1.2


def phases(profile: str) -> list[str]:
    # As conformance/schema_phase.py configures them: quick leaves out the coverage phase (but for the
    # operations in schema_phase.COVERED_AT_EVERY_BUDGET, which the suite alone runs it for at quick).
    return (
        ["examples", "fuzzing", "stateful"] if profile == "quick" else ["examples", "coverage", "fuzzing", "stateful"]
    )


def suite_once(server: Any, profile: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-schema-") as tmp:
        out = Path(tmp) / "timed.json"
        before = server.count()
        result = timed(
            timed_suite_command(server.base_url, profile, out, Path(tmp) / "r", "--select", *SCHEMA_CHECKS),
            cwd=Path(tmp),
            environment=env(),
        )
        requests = server.count() - before
        timing = json.loads(out.read_text(encoding="utf-8"))
        lines = (Path(tmp) / "r" / "exchanges.jsonl").read_text(encoding="utf-8").splitlines()
        in_checks = sum(1 for line in lines if json.loads(line)["check"] in SCHEMA_CHECKS)
    return {
        "wall_s": result.seconds,
        "requests": requests,
        "per_request_ms": 1000 * result.seconds / max(requests, 1),
        "checks_s": timing["checks_s"],
        "check_requests": in_checks,
        "checks_per_request_ms": 1000 * timing["checks_s"] / max(in_checks, 1),
        "exit_code": result.returncode,
    }


def cli_once(server: Any, profile: str) -> dict[str, Any]:
    budget = PROFILES[profile].schema_examples
    with tempfile.TemporaryDirectory(prefix="bench-schemathesis-") as tmp:
        before = server.count()
        result = timed(
            [
                str(Path(PYTHON).parent / "schemathesis"),
                "run",
                str(ROOT / "openapi" / "runs.yaml"),
                "--url",
                server.base_url,
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "-n",
                str(budget),
                "--phases",
                ",".join(phases(profile)),
                "--generation-deterministic",
                "--seed",
                "0",
                "--exclude-checks",
                ",".join(EXCLUDED_CHECKS),
                "--no-color",
            ],
            cwd=Path(tmp),
            environment=env(),
        )
        requests = server.count() - before
    return {
        "wall_s": result.seconds,
        "requests": requests,
        "per_request_ms": 1000 * result.seconds / max(requests, 1),
        "exit_code": result.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default", choices=["quick", "default", "thorough"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    suite: list[dict[str, Any]] = []
    cli: list[dict[str, Any]] = []
    with reference_server() as server:
        for _ in range(args.repeat):  # in turns, so load on the machine falls on both alike
            suite.append(suite_once(server, args.profile))
            cli.append(cli_once(server, args.profile))
    ratios = [s["per_request_ms"] / c["per_request_ms"] for s, c in zip(suite, cli, strict=True)]
    ratio = median(ratios)
    figures = {
        "profile": args.profile,
        "budget_per_operation": PROFILES[args.profile].schema_examples,
        "phases": phases(args.profile),
        "suite": {
            "wall_s_median": round(median([s["wall_s"] for s in suite]), 2),
            "requests_median": median([s["requests"] for s in suite]),
            "per_request_ms_median": round(median([s["per_request_ms"] for s in suite]), 2),
            "checks_per_request_ms_median": round(median([s["checks_per_request_ms"] for s in suite]), 2),
        },
        "schemathesis_cli": {
            "wall_s_median": round(median([c["wall_s"] for c in cli]), 2),
            "requests_median": median([c["requests"] for c in cli]),
            "per_request_ms_median": round(median([c["per_request_ms"] for c in cli]), 2),
        },
        "ratio_per_request": round(ratio, 3),
        "ratios": [round(r, 3) for r in ratios],
        "target": TARGET,
        "meets_target": ratio <= TARGET,
    }
    s, c = figures["suite"], figures["schemathesis_cli"]
    print(
        f"profile {args.profile}: {figures['budget_per_operation']} examples per operation, phases {figures['phases']}"
    )
    print(
        f"suite      {s['wall_s_median']:6.2f} s  {s['requests_median']:6.0f} requests  "
        f"{s['per_request_ms_median']:6.2f} ms/request  (checks phase alone {s['checks_per_request_ms_median']:.2f})"
    )
    print(
        f"schemathesis run {c['wall_s_median']:6.2f} s  {c['requests_median']:6.0f} requests  "
        f"{c['per_request_ms_median']:6.2f} ms/request"
    )
    print(f"time per request, suite / schemathesis: {ratio:.2f} (runs {figures['ratios']}; target <= {TARGET})")
    write_figures("schema_phase", figures)


if __name__ == "__main__":
    main()
