"""What the live observer holds per exchange, with and without a history limit.

    python bench/bench_observe_memory.py [--exchanges 200000] [--limit 50000] [--page 5]

Feeds synthetic exchanges of a clean server (per run: a keyed startRun, a getRun, a getRunDefinition
and a listRuns page of `--page` runs, each answered before the next is sent) straight to
`conformance.observe.Observer`, with no proxy and no files, and reads the process's resident memory
(VmRSS, and its peak VmHWM) before and after. Each mode runs in a fresh process, so neither inherits
the other's heap. The history check at each report is what `observation()` costs; it runs once at the
end, as the proxy's report on exit does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance.observe import Observer
from conformance.observe_traffic import Recorded

BASE = "http://127.0.0.1:8080/api/v1/runs"
AUTH = {"Authorization": "Bearer bench-token", "User-Agent": "bench", "Accept": "*/*"}
WORKFLOW = {"name": "etl", "version": "1", "steps": [{"id": "a", "action": "noop"}]}
HASH = "sha256:" + "ab" * 32
EPOCH = datetime(2026, 12, 7, tzinfo=UTC)


def _memory() -> dict[str, int]:
    """VmRSS and VmHWM in kB, from /proc (Linux)."""
    found = {}
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def _run(n: int) -> dict[str, Any]:
    stamp = (EPOCH + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")  # newer runs later
    return {
        "runId": f"{n:08d}-6b1c-4d8e-9f0a-{n:012d}",
        "clientId": "bench",
        "status": "succeeded",
        "definitionHash": HASH,
        "inputs": {},
        "createdAt": stamp,
        "startedAt": stamp,
        "finishedAt": stamp,
        "cancelRequestedAt": None,
    }


def exchanges(count: int, page: int = 5) -> Any:
    """`count` exchanges of a clean server, one run in every four; listRuns pages of `page` runs."""
    clock = 1_800_000_000.0
    for i in range(count):
        n, step = divmod(i, 4)
        run = _run(n)
        clock += 0.002
        request: dict[str, Any] = {"method": "GET", "request_body": None, "headers": dict(AUTH)}
        url, status, body, answer_headers = BASE, 200, run, {"content-type": "application/json"}
        if step == 0:
            request.update(
                method="POST",
                request_body=json.dumps({"clientId": "bench", "workflow": WORKFLOW}),
                headers={**AUTH, "Idempotency-Key": f"key-{n}", "Content-Type": "application/json"},
            )
            status, body = 202, {"runId": run["runId"], "status": "queued"}
            answer_headers["location"] = f"/api/v1/runs/{run['runId']}"
        elif step == 1:
            url = f"{BASE}/{run['runId']}"
        elif step == 2:
            url = f"{BASE}/{run['runId']}/definition"
            body = WORKFLOW
            answer_headers["etag"] = f'W/"{HASH}"'
        else:
            url = f"{BASE}?limit={page}"
            items = [_run(m) for m in range(n, max(-1, n - page), -1)]
            body = {"items": items, "nextCursor": f"after-{n}" if len(items) == page else None}
        yield Recorded(
            source="live",
            where=f"exchange {i + 1}",
            method=request["method"],
            url=url,
            request_headers=request["headers"],
            request_body=request["request_body"],
            status=status,
            response_headers=answer_headers,
            response_body=json.dumps(body),
            started=clock,
            duration=0.001,
            precision=0.001,
            connection=f"127.0.0.1:{40000 + n % 50}",
            credential=AUTH["Authorization"],
        )


def measure(count: int, limit: int | None, page: int) -> dict[str, Any]:
    before = _memory()
    clock = time.monotonic()
    observer = Observer(["live"], history_limit=limit)
    for item in exchanges(count, page):
        observer.add(item)
    fed = time.monotonic() - clock
    held = _memory()
    seen = observer.observation()
    after = _memory()
    return {
        "exchanges": count,
        "history_limit": limit,
        "page": page,
        "segments": observer.segments,
        "violations": sorted(seen.findings),
        "feed_s": round(fed, 1),
        "check_s": round(time.monotonic() - clock - fed, 1),
        "rss_before_mb": round(before["VmRSS"] / 1024, 1),
        "rss_held_mb": round(held["VmRSS"] / 1024, 1),
        "rss_peak_mb": round(after["VmHWM"] / 1024, 1),
        "per_exchange_kb": round((held["VmRSS"] - before["VmRSS"]) / count, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exchanges", type=int, default=200_000)
    parser.add_argument("--limit", type=int, default=50_000)
    parser.add_argument("--page", type=int, default=5, help="runs on each listRuns page (1 to 200)")
    parser.add_argument("--one", choices=("limited", "unlimited"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        limit = args.limit if args.one == "limited" else None
        print(json.dumps(measure(args.exchanges, limit, args.page)))
        return
    for mode in ("unlimited", "limited"):
        out = subprocess.run(
            [
                *(sys.executable, __file__, "--one", mode, "--exchanges", str(args.exchanges)),
                *("--limit", str(args.limit), "--page", str(args.page)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
