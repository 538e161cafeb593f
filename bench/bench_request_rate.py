"""Requests per second the suite drives, against a plain httpx loop sending the same requests.

    python bench/bench_request_rate.py [--profile quick] [--repeat 3]

One reference server (its own process, fresh for each repeat) serves both. The suite runs the whole profile against it
(`runs-conformance run --base-url ...`, CI=true); its rate is the exchanges it made (exchanges.jsonl)
over the wall time of its checks phase. Then a plain `httpx.Client` loop on one connection replays
the same requests from exchanges.jsonl (method, URL, headers, body; the redacted Authorization
gets the token back, a body cut short in the record is padded back to its length) against the same
server. The ratio suite / loop is the share of the raw HTTP rate the suite keeps (target at least
0.5); the rest is generation, validation, polling waits and the suite's own bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OTHER_TOKEN, TOKEN, env, median, reference_server, timed, timed_suite_command, write_figures

TARGET = 0.5
CUT = re.compile(r"… \[(\d+) more characters\]$")
DROPPED = {"host", "content-length", "authorization", "connection", "accept-encoding", "user-agent"}


def suite_once(server: Any, profile: str, keep: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp:
        out = Path(tmp) / "timed.json"
        result = timed(
            timed_suite_command(server.base_url, profile, out, Path(tmp) / "r"),
            cwd=Path(tmp),
            environment=env(),
        )
        timing = json.loads(out.read_text(encoding="utf-8"))
        transcript = (Path(tmp) / "r" / "exchanges.jsonl").read_text(encoding="utf-8")
    keep.write_text(transcript, encoding="utf-8")
    exchanges = len(transcript.splitlines())
    return {
        "wall_s": result.seconds,
        "checks_s": timing["checks_s"],
        "exchanges": exchanges,
        "requests_per_s": exchanges / timing["checks_s"],
        "exit_code": result.returncode,
    }


def replayable(transcript: Path, base_url: str) -> list[dict[str, Any]]:
    requests = []
    for line in transcript.read_text(encoding="utf-8").splitlines():
        exchange = json.loads(line)
        if exchange.get("status") is None:
            continue  # no answer in the suite's run (a cut upload): nothing to compare with
        url = re.sub(r"^https?://[^/]+", base_url, exchange["url"])
        # As bytes: the suite sends some header values (an Idempotency-Key with é) as UTF-8 bytes.
        headers = [(k.encode(), v.encode()) for k, v in exchange["request_headers"].items() if k.lower() not in DROPPED]
        if "authorization" in {k.lower() for k in exchange["request_headers"]}:
            other = "$RUNS_OTHER_TOKEN" in (exchange.get("curl") or "")
            headers.append((b"Authorization", f"Bearer {OTHER_TOKEN if other else TOKEN}".encode()))
        body = exchange.get("request_body")
        content = None
        if body is not None:
            cut = CUT.search(body)
            if cut:
                body = body[: cut.start()] + "x" * int(cut.group(1))
            content = body.encode("utf-8")
        requests.append({"method": exchange["method"], "url": url, "headers": headers, "content": content})
    return requests


def loop_once(base_url: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    with httpx.Client(timeout=30) as http:
        took: list[tuple[float, str]] = []
        began = time.perf_counter()
        for r in requests:
            one = time.perf_counter()
            http.request(r["method"], r["url"], headers=r["headers"], content=r["content"]).read()
            took.append((time.perf_counter() - one, f"{r['method']} {r['url']}"))
        seconds = time.perf_counter() - began
    slowest = [f"{t * 1000:.0f} ms {what[:100]}" for t, what in sorted(took, reverse=True)[:3]]
    return {
        "seconds": seconds,
        "requests": len(requests),
        "requests_per_s": len(requests) / seconds,
        "slowest": slowest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["quick", "default", "thorough"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    suite: list[dict[str, Any]] = []
    loop: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.repeat):  # in turns: load on the shared machine falls on both alike
            # A fresh server for each pair: the replay starts runs of its own (the long fixture's
            # 600 s sleeps among them) that nobody cancels, and they would hold the next suite's runs
            # in the queue.
            with reference_server() as server:
                transcript = Path(tmp) / f"exchanges-{index}.jsonl"
                suite.append(suite_once(server, args.profile, transcript))
                loop.append(loop_once(server.base_url, replayable(transcript, server.base_url)))
    ratios = [s["requests_per_s"] / b["requests_per_s"] for s, b in zip(suite, loop, strict=True)]
    ratio = median(ratios)
    figures = {
        "profile": args.profile,
        "suite": {
            "exchanges_median": median([s["exchanges"] for s in suite]),
            "checks_s_median": round(median([s["checks_s"] for s in suite]), 2),
            "requests_per_s_median": round(median([s["requests_per_s"] for s in suite]), 1),
        },
        "httpx_loop": {
            "requests_median": median([b["requests"] for b in loop]),
            "seconds_median": round(median([b["seconds"] for b in loop]), 2),
            "requests_per_s_median": round(median([b["requests_per_s"] for b in loop]), 1),
            "slowest_requests_last_run": loop[-1]["slowest"],
        },
        "ratio": round(ratio, 3),
        "ratios": [round(r, 3) for r in ratios],
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }
    s, b = figures["suite"], figures["httpx_loop"]
    print(
        f"suite ({args.profile}): {s['exchanges_median']:.0f} requests in {s['checks_s_median']:.2f} s of checks "
        f"= {s['requests_per_s_median']:.0f} req/s"
    )
    print(
        f"httpx loop, same requests: {b['requests_median']:.0f} in {b['seconds_median']:.2f} s "
        f"= {b['requests_per_s_median']:.0f} req/s"
    )
    print(f"suite / loop: {ratio:.2f} (runs {figures['ratios']}; target >= {TARGET})")
    write_figures("request_rate", figures)


if __name__ == "__main__":
    main()
