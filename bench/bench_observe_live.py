"""What the live proxy (`runs-conformance observe --listen`) adds to each request, at about 200 requests a second.

    python bench/bench_observe_live.py [--rate 200] [--seconds 10] [--repeat 1]

The reference server runs in a process of its own, and so does the proxy (the command a user runs,
`runs-conformance observe --listen 127.0.0.1:PORT --upstream URL`, judging and writing its reports
as it would), so the client here measures what a client of the proxy would. The client sends an
open-loop load (request i leaves at start + i/rate, whether or not earlier ones are answered, so a
slow answer does not slow the load down): nine reads of a run (getRun, getRunDefinition, listRuns)
for every startRun with a fresh Idempotency-Key. The same load goes first straight to the server,
then through mitmproxy's own `mitmdump` as a plain reverse proxy (nothing judged: what mitmproxy costs
by itself), then through the observe proxy (the same mitmdump with the suite's addon writing each flow
to a file, and the suite's process tailing and judging it), `--repeat` times in turn. mitmdump is
`--mitmdump PATH`, else $RUNS_MITMDUMP, else the one on PATH (or beside this Python).
The CPU time per request of the observe proxy is both processes': mitmdump's and the suite's. The figures: p50 and p99
latency of each, and the differences from direct, what each proxy adds per request; the observe
proxy's own report must show no violation (the server is the reference: a finding would be a false
alarm). Also the CPU time each proxy process spent per request (from /proc): 1 s over it is the
most requests a second the proxy can take on one free core, whatever else the machine is doing.
The machine is shared: compare figures measured side by side only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, TOKEN, env, reference_server, write_figures

from conformance.observe_live import INSTALL_HINT, find_mitmdump

BODY = {"clientId": "bench-live", "workflow": {"name": "etl", "version": "1", "steps": [{"id": "a", "action": "noop"}]}}


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc (Linux): what the proxy itself spent."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _load(base: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop load at `rate` a second for `seconds`: each request's latency in ms, and the errors."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, headers=auth, limits=limits, timeout=30) as client:
        first = await client.post("/api/v1/runs", json=BODY, headers={"Idempotency-Key": str(uuid.uuid4())})
        run_id = first.json()["runId"]

        async def one(i: int) -> None:
            nonlocal errors
            began = time.perf_counter()
            try:
                kind = i % 10
                if kind == 0:
                    answer = await client.post(
                        "/api/v1/runs", json=BODY, headers={"Idempotency-Key": str(uuid.uuid4())}
                    )
                elif kind < 5:
                    answer = await client.get(f"/api/v1/runs/{run_id}")
                elif kind < 8:
                    answer = await client.get(f"/api/v1/runs/{run_id}/definition")
                else:
                    answer = await client.get("/api/v1/runs", params={"clientId": "bench-live", "limit": 5})
                if answer.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - began) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        achieved = len(tasks) / (time.perf_counter() - start)
    return {
        "requests": len(latencies),
        "errors": errors,
        "achieved_rate": round(achieved, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(_percentile(latencies, 0.99), 3),
    }


def _observe_proxy(
    upstream: str, report_dir: Path, report_every: float, mitmdump: str
) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    return _started([
        PYTHON, "-m", "conformance.cli", "observe", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
        "--report-dir", str(report_dir), "--report-every", str(report_every), "--mitmdump", mitmdump,
    ], port)  # fmt: skip


def _mitmdump(upstream: str, mitmdump: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    return _started([mitmdump, "-q", "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1",
                     "--listen-port", str(port)], port)  # fmt: skip


def _cpu_tree(pid: int) -> float:
    """CPU time of a process and its children (the observe proxy's mitmdump), from /proc."""
    total = _cpu_seconds(pid)
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split():
            with contextlib.suppress(OSError):
                total += _cpu_tree(int(child))
    return total


def _started(command: list[str], port: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy ended: {process.communicate()}")
        try:
            httpx.get(f"{base}/api/v1/runs", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the proxy never listened")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests a second (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each load lasts (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="direct then proxied, this many times (default 1)")
    parser.add_argument(
        "--report-every", type=float, default=60.0, help="the proxy's history checks (default 60, the command's)"
    )
    parser.add_argument("--mitmdump", metavar="PATH", help="the mitmdump program ($RUNS_MITMDUMP; default: on PATH)")
    args = parser.parse_args()
    mitmdump = find_mitmdump(args.mitmdump) or find_mitmdump(str(Path(PYTHON).parent / "mitmdump"))
    if mitmdump is None:
        raise SystemExit(INSTALL_HINT)
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rc-bench-live-") as tmp:
        for _ in range(args.repeat):
            row: dict[str, Any] = {}
            # Each path gets a fresh server: runs started by one load (and the server's work on them) would
            # otherwise slow the next load's server down, and the order of the loads would be measured.
            for name in ("direct", "mitmdump", "proxied"):
                with reference_server() as server:
                    if name == "direct":
                        process, target = None, server.base_url
                    elif name == "mitmdump":
                        process, target = _mitmdump(server.base_url, mitmdump)
                    else:
                        process, target = _observe_proxy(server.base_url, Path(tmp), args.report_every, mitmdump)
                    try:
                        asyncio.run(_load(target, args.rate, 1.0))  # warm up, not measured
                        cpu = _cpu_tree(process.pid) if process is not None else 0.0
                        row[name] = asyncio.run(_load(target, args.rate, args.seconds))
                        if process is not None:
                            spent = _cpu_tree(process.pid) - cpu
                            row[name]["proxy_cpu_ms_per_request"] = round(spent * 1000 / row[name]["requests"], 3)
                    finally:
                        if process is not None:
                            process.terminate()  # SIGTERM: the observe proxy writes its report, then ends
                            process.communicate(timeout=120)
                print(f"{name:8} {json.dumps(row[name])}", flush=True)
            rounds.append(row)
        report = json.loads((Path(tmp) / "conformance.json").read_text(encoding="utf-8"))
        code = process.returncode if process is not None else None
    violated = [r["id"] for r in report["requirements"] if r["status"] in ("failed", "warning")]

    def added(name: str, figure: str) -> float:
        return float(statistics.median(r[name][figure] - r["direct"][figure] for r in rounds))

    print(
        f"added per request at {args.rate:g} req/s: observe proxy p50 {added('proxied', 'p50_ms'):.2f} ms, "
        f"p99 {added('proxied', 'p99_ms'):.2f} ms; mitmdump alone p50 {added('mitmdump', 'p50_ms'):.2f} ms, "
        f"p99 {added('mitmdump', 'p99_ms'):.2f} ms; the proxy's report: {report['reason']}; "
        f"violations {violated or 'none'} (exit {code}); proxy CPU per request: observe "
        f"{statistics.median(r['proxied']['proxy_cpu_ms_per_request'] for r in rounds):.2f} ms, mitmdump "
        f"{statistics.median(r['mitmdump']['proxy_cpu_ms_per_request'] for r in rounds):.2f} ms"
    )
    write_figures(
        "observe_live",
        {
            "rate": args.rate,
            "seconds": args.seconds,
            "report_every": args.report_every,
            "rounds": rounds,
            "added_p50_ms": round(added("proxied", "p50_ms"), 3),
            "added_p99_ms": round(added("proxied", "p99_ms"), 3),
            "mitmdump_added_p50_ms": round(added("mitmdump", "p50_ms"), 3),
            "mitmdump_added_p99_ms": round(added("mitmdump", "p99_ms"), 3),
            "proxy_cpu_ms_per_request": statistics.median(r["proxied"]["proxy_cpu_ms_per_request"] for r in rounds),
            "mitmdump_cpu_ms_per_request": statistics.median(r["mitmdump"]["proxy_cpu_ms_per_request"] for r in rounds),
            "violations": violated,
        },
    )


if __name__ == "__main__":
    main()
