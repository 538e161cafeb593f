"""One Idempotency-Key, many concurrent requests: exactly one run, enforced by the database."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
from support.reference_server import RUNS, TOKEN, client, quick_workflow, running_server

from reference_impl.store import IdempotencyClaim, RunStore


def test_fifty_concurrent_starts_with_one_key_make_one_run() -> None:
    body = {"clientId": "concurrent", "workflow": quick_workflow()}

    async def fire(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "one-key"}
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=20.0) as http:
            return await asyncio.gather(*(http.post(RUNS, json=body) for _ in range(50)))

    with running_server() as url:
        responses = asyncio.run(fire(url))
        assert {r.status_code for r in responses} == {202}
        assert len({r.json()["runId"] for r in responses}) == 1
        with client(url) as http:
            assert len(http.get(RUNS, params={"clientId": "concurrent"}).json()["items"]) == 1


def test_two_connections_to_one_file_race_for_one_key(tmp_path: Path) -> None:
    """Two stores (two SQLite connections, as two server processes would have) on one file."""
    path = str(tmp_path / "shared.db")
    stores = [RunStore(path), RunStore(path)]
    claim = IdempotencyClaim("scope", "race", "fingerprint")
    barrier = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        barrier.wait()
        outcome = stores[index % 2].start_run("race", quick_workflow(), {}, "sha256:x", claim)
        with lock:
            results.append(outcome.run.run_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(results) == 20 and len(set(results)) == 1
    assert stores[0].count() == 1
