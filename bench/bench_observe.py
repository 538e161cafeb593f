"""Observe mode's cost as the recording grows: 10k, 30k and 100k exchanges of a correct server, as NDJSON.

    python bench/bench_observe.py [--sizes 10000 30000 100000] [--repeat 3] [--seed 1]

Each recording is a history of the simulated correct server of tests/support/history_model.py (4
clients, overlapping requests, keys, walks, unanswered requests) written as NDJSON lines with
microsecond times (docs/observe.md's shape), built once per size and not timed. What is timed, on
one core, is the whole of observe mode but writing the reports: reading the file as a stream,
judging every answer alone, rebuilding the history and `check_history`. The figures: seconds, µs per
exchange, and the per-exchange cost relative to the smallest size (about 1 when the cost grows
linearly), and the history findings, which must be none (the server is correct: one would be a false
alarm of the rebuild). The model's bodies are not the spec's full schemas, so the answer judges'
findings are counted apart and mean nothing here. The target: 100k exchanges in under 30 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, median, write_figures

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.history_model import EPOCH, correct_history

from conformance.history import Operation
from conformance.observe import observe_records
from conformance.observe_traffic import read_traffic

TARGET_S = 30.0
PATHS = {
    "startRun": ("POST", "/api/v1/runs"),
    "listRuns": ("GET", "/api/v1/runs"),
    "getRun": ("GET", "/api/v1/runs/{}"),
    "getRunDefinition": ("GET", "/api/v1/runs/{}/definition"),
    "cancelRun": ("POST", "/api/v1/runs/{}/cancel"),
}


def _number(value: object) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def line(op: Operation) -> dict[str, Any]:
    method, template = PATHS[op.kind]
    path = template.format(op.run_id)
    if op.query:
        path += "?" + "&".join(f"{k}={v}" for k, v in op.query.items())
    request_headers = {"Authorization": f"Bearer token-of-{op.credential}"}
    record: dict[str, Any] = {
        "time": (EPOCH + timedelta(seconds=op.invoked)).isoformat(timespec="microseconds"),
        "method": method,
        "path": path,
        "client": str(op.client),
        "request_headers": request_headers,
        "status": op.status,
    }
    if op.completed is not None:
        record["duration_ms"] = (op.completed - op.invoked) * 1000
    if op.kind == "startRun":
        if op.key is not None:
            request_headers["Idempotency-Key"] = op.key
        # One body per fingerprint: equal exactly where the model's bodies are equal.
        record["request_body"] = json.dumps({"clientId": op.client_id, "inputs": {"fp": op.body_fingerprint}})
    if op.if_none_match is not None:
        request_headers["If-None-Match"] = op.if_none_match
    if op.completed is not None:
        media = "application/problem+json" if (op.status or 0) >= 400 else "application/json"
        record["response_headers"] = {"Content-Type": media, **({"ETag": op.etag} if op.etag else {})}
        record["response_body"] = None if op.body is None else json.dumps(op.body, default=_number)
    return record


def measure(size: int, repeat: int, seed: int, directory: Path) -> dict[str, Any]:
    history = correct_history(seed=seed, operations=size, clients=4)
    path = directory / f"correct-{size}.ndjson"
    with path.open("w", encoding="utf-8") as out:
        for op in history.operations:
            out.write(json.dumps(line(op)) + "\n")
    times, seen = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        seen = observe_records(read_traffic(path), [str(path)])
        times.append(time.perf_counter() - began)
    assert seen is not None
    conc = sorted(rid for rid in seen.findings if rid.startswith("CONC-"))
    seconds = median(times)
    return {
        "exchanges": size,
        "bytes": path.stat().st_size,
        "observe_s_median": round(seconds, 3),
        "observe_s_all": [round(t, 3) for t in times],
        "us_per_exchange": round(1e6 * seconds / size, 2),
        "history_findings": conc,
        "unreadable": len(seen.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rc-bench-observe-") as tmp:
        for size in sorted(args.sizes):
            row = measure(size, args.repeat, args.seed, Path(tmp))
            rows.append(row)
            print(
                f"{size:>7} exchanges ({row['bytes'] / 1e6:.1f} MB): {row['observe_s_median']:.2f} s, "
                f"{row['us_per_exchange']:.1f} µs/exchange, history findings {row['history_findings'] or 'none'}, "
                f"unreadable {row['unreadable']}",
                flush=True,
            )
    smallest = rows[0]["us_per_exchange"]
    for row in rows:
        row["relative_cost"] = round(row["us_per_exchange"] / smallest, 2)
    largest = rows[-1]
    verdict = "within" if largest["observe_s_median"] <= TARGET_S * largest["exchanges"] / 100_000 else "OVER"
    print(
        f"per-exchange cost relative to {rows[0]['exchanges']}: {[r['relative_cost'] for r in rows]}; {verdict} target"
    )
    write_figures("observe", {"rows": rows, "target_s_per_100k": TARGET_S})


if __name__ == "__main__":
    main()
