"""With --db, a stop and restart keeps every run and idempotency record, and settles runs in flight."""

from __future__ import annotations

from pathlib import Path

from support.reference_server import (
    RUNS,
    client,
    quick_workflow,
    running_server,
    sleep_workflow,
    start,
    wait_for_status,
)


def test_restart_keeps_runs_keys_cursors_and_settles_in_flight(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    body = {"clientId": "durable", "workflow": quick_workflow()}
    with running_server(db) as url, client(url) as http:
        keyed = http.post(RUNS, json=body, headers={"Idempotency-Key": "survives"}).json()["runId"]
        done = [start(http, client_id="durable") for _ in range(3)]
        for run_id in done:
            wait_for_status(http, run_id, {"succeeded"})
        in_flight = start(http, sleep_workflow(300), client_id="durable")
        wait_for_status(http, in_flight, {"running"})
        before = {r["runId"]: r for r in http.get(RUNS, params={"clientId": "durable"}).json()["items"]}
        cursor = http.get(RUNS, params={"clientId": "durable", "limit": 2}).json()["nextCursor"]

    with running_server(db) as url, client(url) as http:
        after = {r["runId"]: r for r in http.get(RUNS, params={"clientId": "durable"}).json()["items"]}
        assert set(after) == set(before)
        for run_id in done:
            assert after[run_id] == before[run_id]
        # In flight at the stop: failed with a reason, never back to queued, never stuck.
        settled = after[in_flight]
        assert settled["status"] == "failed" and settled["failureReason"]
        assert settled["startedAt"] == before[in_flight]["startedAt"] <= settled["finishedAt"]
        # The idempotency record survived: the replay gets the first run, a new body gets 409.
        replay = http.post(RUNS, json=body, headers={"Idempotency-Key": "survives"})
        assert replay.status_code == 202 and replay.json()["runId"] == keyed
        clash = http.post(RUNS, json={**body, "inputs": {"x": 1}}, headers={"Idempotency-Key": "survives"})
        assert clash.status_code == 409
        # Cursors are signed with a secret kept in the file.
        page = http.get(RUNS, params={"clientId": "durable", "limit": 2, "cursor": cursor})
        assert page.status_code == 200 and page.json()["items"]
        # New runs still sort newest first after the old ones.
        newest = start(http, client_id="durable")
        assert http.get(RUNS, params={"clientId": "durable", "limit": 1}).json()["items"][0]["runId"] == newest


def test_queued_runs_are_executed_after_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "queued.db")
    with running_server(db, workers=1) as url, client(url) as http:
        blocker = start(http, sleep_workflow(300))
        wait_for_status(http, blocker, {"running"})
        waiting = start(http)
        assert http.get(f"{RUNS}/{waiting}").json()["status"] == "queued"
    with running_server(db) as url, client(url) as http:
        wait_for_status(http, waiting, {"succeeded"})
        assert http.get(f"{RUNS}/{blocker}").json()["status"] == "failed"
