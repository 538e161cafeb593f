"""Benchmark of the reference server (a script, not a test): throughput, listing scale, memory.

    PYTHONPATH=. python bench/bench_reference_server.py [--runs 100000]

Prints startRun and getRun requests per second over real HTTP on loopback, the latency of a
listRuns page with 100 runs in the store against 100,000 (the ratio should stay at or under
1.5: keyset pagination over indexes does not slow down as the store grows), and the resident
memory of the process at 100,000 runs. Absolute numbers depend on the machine; the ratio is the
figure that means something. The figures also go into reports/bench.json under "reference_server".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import write_figures

from reference_impl.app import create_app
from reference_impl.serve import serve_in_thread
from reference_impl.store import RunStore

TOKEN = "bench-token"
RUNS = "/api/v1/runs"
WORKFLOW = {"name": "bench", "steps": [{"id": "a", "action": "noop"}]}
CLIENTS = [f"client-{n}" for n in range(10)]
# Pages of 10: in the store of 100 runs each of the 10 clients has 10, so a clientId page holds as
# many items in both stores (with 50, the small store's filtered pages held 10 items against 50,
# and the "ratio" measured page size, not store size).
PAGE = 10


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} req/s  ({count} requests in {seconds:.2f} s)"


def sequential(http: httpx.Client, count: int, call: Any) -> float:
    began = time.perf_counter()
    for index in range(count):
        call(http, index)
    return time.perf_counter() - began


async def concurrent_starts(url: str, count: int, in_flight: int) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=httpx.Limits(max_connections=in_flight)) as http:
        semaphore = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with semaphore:
                response = await http.post(RUNS, json={"clientId": "bench-c", "workflow": WORKFLOW})
                assert response.status_code == 202

        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return time.perf_counter() - began


def page_latency(http: httpx.Client, params: dict[str, Any], repeats: int) -> float:
    """Median milliseconds for one page; the first page and a page found through a cursor alternate."""
    cursor = http.get(RUNS, params={**params, "limit": PAGE}).json()["nextCursor"]
    samples = []
    for index in range(repeats):
        query = {**params, "limit": PAGE}
        if index % 2 and cursor:
            query["cursor"] = cursor
        began = time.perf_counter()
        response = http.get(RUNS, params=query)
        samples.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
    return statistics.median(samples) * 1000


def paired_latency(
    small: httpx.Client, large: httpx.Client, params: dict[str, Any], repeats: int
) -> tuple[float, float]:
    """Median milliseconds for one page from the small store and from the large one, sampled in turns.

    In turns, so that load from others on a shared machine falls on both figures alike.
    """
    cursors = [http.get(RUNS, params={**params, "limit": PAGE}).json()["nextCursor"] for http in (small, large)]
    samples: tuple[list[float], list[float]] = ([], [])
    for index in range(repeats):
        for which, http in enumerate((small, large)):
            query = {**params, "limit": PAGE}
            if index % 2 and cursors[which]:
                query["cursor"] = cursors[which]
            began = time.perf_counter()
            response = http.get(RUNS, params=query)
            samples[which].append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
    return statistics.median(samples[0]) * 1000, statistics.median(samples[1]) * 1000


def fill(store: RunStore, target: int) -> None:
    """Adds runs straight through the store (HTTP would only make filling slow, not more real)."""
    for index in range(store.count(), target):
        store.start_run(CLIENTS[index % len(CLIENTS)], WORKFLOW, {"n": index}, "sha256:" + "0" * 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the large store (default 100000)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per throughput figure")
    args = parser.parse_args()

    app = create_app([TOKEN])
    store: RunStore = app.state.store
    listings = {
        "newest": {},
        "clientId": {"clientId": CLIENTS[3]},
        "status": {"status": "queued"},
        "both": {"clientId": CLIENTS[3], "status": "queued"},
    }
    # A second server keeps a store of 100 runs, so the two sizes are measured side by side.
    small_app = create_app([TOKEN])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        serve_in_thread(small_app) as small_url,
        httpx.Client(base_url=small_url, headers=auth) as small_http,
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, headers=auth) as http,
    ):
        fill(small_app.state.store, 100)
        fill(store, 100)
        small = {name: page_latency(http, params, 200) for name, params in listings.items()}

        def start(client: httpx.Client, _index: int) -> None:
            assert client.post(RUNS, json={"clientId": "bench-s", "workflow": WORKFLOW}).status_code == 202

        start_seconds = sequential(http, args.requests, start)
        ids = [run["runId"] for run in http.get(RUNS, params={"limit": 200}).json()["items"]]

        def get(client: httpx.Client, index: int) -> None:
            assert client.get(f"{RUNS}/{ids[index % len(ids)]}").status_code == 200

        get_seconds = sequential(http, args.requests, get)
        concurrent_seconds = asyncio.run(concurrent_starts(url, args.requests, 16))

        began = time.perf_counter()
        fill(store, args.runs)
        fill_seconds = time.perf_counter() - began
        paired = {name: paired_latency(small_http, http, params, 300) for name, params in listings.items()}
        small = {name: pair[0] for name, pair in paired.items()}
        large = {name: pair[1] for name, pair in paired.items()}
        memory = rss_mib()
        total = store.count()

    print(f"startRun (one client, sequential): {rate(args.requests, start_seconds)}")
    print(f"startRun (16 in flight):           {rate(args.requests, concurrent_seconds)}")
    print(f"getRun   (one client, sequential): {rate(args.requests, get_seconds)}")
    print(f"filled the store to {total} runs in {fill_seconds:.1f} s")
    print(f"listRuns page of {PAGE}, median ms:   100 runs   {total} runs   ratio")
    worst = 0.0
    for name in listings:
        ratio = large[name] / small[name]
        worst = max(worst, ratio)
        print(f"  {name:<10}                      {small[name]:8.2f}   {large[name]:10.2f}   {ratio:5.2f}")
    verdict = "ok" if worst <= 1.5 else "OVER 1.5"
    print(f"worst ratio {worst:.2f} ({verdict})")
    print(f"resident memory at {total} runs: {memory:.0f} MiB (server and benchmark in one process)")
    write_figures(
        "reference_server",
        {
            "start_run_per_s": round(args.requests / start_seconds, 1),
            "start_run_16_in_flight_per_s": round(args.requests / concurrent_seconds, 1),
            "get_run_per_s": round(args.requests / get_seconds, 1),
            "runs_in_large_store": total,
            "list_page_ms_small": {k: round(v, 3) for k, v in small.items()},
            "list_page_ms_large": {k: round(v, 3) for k, v in large.items()},
            "list_page_ratio": {k: round(large[k] / small[k], 3) for k in listings},
            "list_page_worst_ratio": round(worst, 3),
            "list_target_ratio": 1.5,
            "meets_target": worst <= 1.5,
            "rss_mib_at_large_store": round(memory, 1),
        },
    )


if __name__ == "__main__":
    main()
