"""The reference server on a loopback port, counting the requests it answers (for the benchmarks).

    python bench/_server.py --token T [--token T2]

Prints its base URL on the first line of stdout, then serves until terminated. GET /__bench/count
answers {"count": N} (requests answered so far, this one not included) without reaching the app.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_impl.app import create_app
from reference_impl.serve import serve_in_thread


class Counting:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__bench/count":
            body = json.dumps({"count": self.count}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            self.count += 1
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", action="append", required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    app = Counting(create_app(args.token))
    with serve_in_thread(app) as url:  # type: ignore[arg-type]
        print(url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
