"""The reference server for its own tests (tests/test_reference_*.py): serving it, clients, workflows, polling.

Its tokens are its own, apart from tokens.py's: these tests build the server, not the suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from reference_impl.app import create_app
from reference_impl.serve import serve_in_thread

TOKEN = "reference-test-token"
OTHER_TOKEN = "reference-test-token-2"
RUNS = "/api/v1/runs"

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], timeout: float = 5.0, what: str = "condition") -> T:
    """Polls `probe` until it returns a truthy value, against a deadline; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def quick_workflow(name: str = "quick") -> dict[str, Any]:
    return {"name": name, "steps": [{"id": "a", "action": "noop"}, {"id": "b", "action": "noop", "dependsOn": ["a"]}]}


def sleep_workflow(seconds: float = 30) -> dict[str, Any]:
    return {"name": "busy", "steps": [{"id": "wait", "action": "sleep", "params": {"seconds": seconds}}]}


def fail_workflow() -> dict[str, Any]:
    return {
        "name": "failing",
        "steps": [{"id": "a", "action": "noop"}, {"id": "boom", "action": "fail", "dependsOn": ["a"]}],
    }


def client(url: str, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=10.0)


@contextmanager
def running_server(db_path: str | None = None, **options: Any) -> Iterator[str]:
    with serve_in_thread(create_app([TOKEN, OTHER_TOKEN], db_path, **options)) as url:
        yield url


def start(http: httpx.Client, workflow: dict[str, Any] | None = None, client_id: str = "tests", **kw: Any) -> str:
    body: dict[str, Any] = {"clientId": client_id, "workflow": workflow or quick_workflow()}
    body.update(kw.pop("extra", {}))
    response = http.post(RUNS, json=body, **kw)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runId"]
    return run_id


def status_of(http: httpx.Client, run_id: str) -> str:
    response = http.get(f"{RUNS}/{run_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def wait_for_status(http: httpx.Client, run_id: str, statuses: set[str], timeout: float = 5.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run: dict[str, Any] = http.get(f"{RUNS}/{run_id}").json()
        return run if run["status"] in statuses else None

    return wait_until(probe, timeout, f"run {run_id} to reach {sorted(statuses)}")
