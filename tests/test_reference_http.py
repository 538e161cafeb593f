"""The reference server's behaviours over real HTTP: the contract, operation by operation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rfc8785
from support.reference_server import (
    OTHER_TOKEN,
    RUNS,
    client,
    fail_workflow,
    quick_workflow,
    running_server,
    sleep_workflow,
    start,
    wait_for_status,
)

from conformance.spec import PROBLEM_BASE, schema_validator


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server() as base:
        yield base


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with client(url) as c:
        yield c


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    schema_validator("/components/schemas/Problem").validate(body)
    return body


def test_start_returns_runref_and_location(http: httpx.Client) -> None:
    response = http.post(RUNS, json={"clientId": "loc", "workflow": quick_workflow()})
    assert response.status_code == 202
    schema_validator("/components/schemas/RunRef").validate(response.json())
    assert response.headers["location"] == f"{RUNS}/{response.json()['runId']}"
    run = http.get(response.headers["location"]).json()
    schema_validator("/components/schemas/Run").validate(run)
    assert run["inputs"] == {} and run["clientId"] == "loc"


def test_quick_run_succeeds_and_failing_run_fails(http: httpx.Client) -> None:
    ok = wait_for_status(http, start(http), {"succeeded"})
    bad = wait_for_status(http, start(http, fail_workflow()), {"failed"})
    for run in (ok, bad):
        assert run["createdAt"] <= run["startedAt"] <= run["finishedAt"]
    assert "boom" in bad["failureReason"]


def test_idempotent_replay_same_run_and_json_equal_bodies(http: httpx.Client) -> None:
    body = {"clientId": "idem", "workflow": quick_workflow(), "inputs": {"a": 1, "b": [1, 2]}}
    first = http.post(RUNS, json=body, headers={"Idempotency-Key": "replay-1"})
    # Same JSON, other key order and whitespace: the same request.
    reordered = json.dumps(
        {"inputs": {"b": [1, 2], "a": 1.0}, "workflow": quick_workflow(), "clientId": "idem"}, indent=2
    )
    second = http.post(
        RUNS, content=reordered, headers={"Idempotency-Key": "replay-1", "Content-Type": "application/json"}
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["runId"] == second.json()["runId"]
    listed = http.get(RUNS, params={"clientId": "idem"}).json()["items"]
    assert [r["runId"] for r in listed] == [first.json()["runId"]]


def test_same_key_other_body_is_409_and_first_run_untouched(http: httpx.Client) -> None:
    first = http.post(
        RUNS, json={"clientId": "idem409", "workflow": quick_workflow()}, headers={"Idempotency-Key": "k"}
    )
    clash = http.post(
        RUNS, json={"clientId": "idem409", "workflow": quick_workflow("other")}, headers={"Idempotency-Key": "k"}
    )
    assert_problem(clash, 409, "idempotency-key-reused")
    definition = http.get(f"{RUNS}/{first.json()['runId']}/definition").json()
    assert definition == quick_workflow()
    assert len(http.get(RUNS, params={"clientId": "idem409"}).json()["items"]) == 1


def test_keys_are_scoped_per_token(url: str, http: httpx.Client) -> None:
    body = {"clientId": "scoped", "workflow": quick_workflow()}
    mine = http.post(RUNS, json=body, headers={"Idempotency-Key": "shared"}).json()["runId"]
    with client(url, OTHER_TOKEN) as other:
        theirs = other.post(RUNS, json=body, headers={"Idempotency-Key": "shared"}).json()["runId"]
        # Runs are visible to every valid token; only keys are per token.
        assert other.get(f"{RUNS}/{mine}").status_code == 200
    assert mine != theirs


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "caf\u00e9"])
def test_invalid_idempotency_keys_are_400(http: httpx.Client, key: str) -> None:
    headers = {"Idempotency-Key": key.encode("utf-8")}  # type: ignore[dict-item]
    response = http.post(RUNS, json={"clientId": "badkey", "workflow": quick_workflow()}, headers=headers)
    assert_problem(response, 400, "invalid-request")


def test_rejected_request_does_not_use_up_its_key(http: httpx.Client) -> None:
    key = {"Idempotency-Key": '"quoted-key"'}
    bad = http.post(RUNS, json={"clientId": "unused", "workflow": {"name": "x", "steps": []}}, headers=key)
    assert_problem(bad, 400, "invalid-request")
    wrong_type = http.post(RUNS, content=b"{}", headers={**key, "Content-Type": "text/plain"})
    assert_problem(wrong_type, 415, "unsupported-media-type")
    good = http.post(RUNS, json={"clientId": "unused", "workflow": quick_workflow()}, headers=key)
    assert good.status_code == 202


def test_without_key_every_post_is_a_new_run(http: httpx.Client) -> None:
    assert start(http, client_id="nokey") != start(http, client_id="nokey")


def test_definition_snapshot_hash_and_etag(http: httpx.Client) -> None:
    workflow = {
        "version": "1",
        "name": "snap",
        "steps": [{"params": {"z": 1, "a": [True, None]}, "id": "s", "action": "noop"}],
    }
    run_id = start(http, workflow)
    run = http.get(f"{RUNS}/{run_id}").json()
    expected = "sha256:" + hashlib.sha256(rfc8785.dumps(workflow)).hexdigest()
    assert run["definitionHash"] == expected
    response = http.get(f"{RUNS}/{run_id}/definition")
    assert response.status_code == 200 and response.json() == workflow
    assert list(response.json()) == list(workflow)  # stored verbatim, key order included
    etag = response.headers["etag"]
    assert etag == f'W/"{expected}"'
    strong = etag[2:]
    for header in (etag, strong, "*", f'"nope", {etag}', f'W/"x",{strong}'):
        cached = http.get(f"{RUNS}/{run_id}/definition", headers={"If-None-Match": header})
        assert cached.status_code == 304, header
        assert cached.headers["etag"] == etag and cached.content == b""
    for header in ('"other"', 'W/"sha256:00"', "garbage", f"{etag} junk"):
        assert http.get(f"{RUNS}/{run_id}/definition", headers={"If-None-Match": header}).status_code == 200


def test_same_workflow_same_hash_other_workflow_other_hash(http: httpx.Client) -> None:
    one, two, three = start(http), start(http), start(http, quick_workflow("different"))
    hashes = [http.get(f"{RUNS}/{r}").json()["definitionHash"] for r in (one, two, three)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_404_and_401_win_over_304(url: str, http: httpx.Client) -> None:
    run_id = start(http)
    etag = http.get(f"{RUNS}/{run_id}/definition").headers["etag"]
    missing = http.get(f"{RUNS}/run_00000000000000000000000000/definition", headers={"If-None-Match": "*"})
    assert_problem(missing, 404, "not-found")
    with client(url, token=None) as anonymous:
        denied = anonymous.get(f"{RUNS}/{run_id}/definition", headers={"If-None-Match": etag})
    assert_problem(denied, 401, "unauthorized")


@pytest.mark.parametrize("run_id", ["nope", "run_01", "RUN_X", "%00", "run_" + "Z" * 200, "..%2F"])
def test_unknown_or_malformed_run_ids_are_404(http: httpx.Client, run_id: str) -> None:
    for path in (f"{RUNS}/{run_id}", f"{RUNS}/{run_id}/definition"):
        assert_problem(http.get(path), 404, "not-found")
    assert_problem(http.post(f"{RUNS}/{run_id}/cancel"), 404, "not-found")


def test_auth_challenges(url: str) -> None:
    with client(url, token=None) as anonymous:
        missing = anonymous.get(RUNS)
        assert_problem(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == 'Bearer realm="runs"'
        for header in (b"Bearer wrong", b"Bearer", b"bearer  x y", "Bearer \u00e9".encode()):
            invalid = anonymous.get(RUNS, headers={"Authorization": header})  # type: ignore[dict-item]
            assert_problem(invalid, 401, "unauthorized")
            assert invalid.headers["www-authenticate"] == 'Bearer realm="runs", error="invalid_token"'
        basic = anonymous.get(RUNS, headers={"Authorization": "Basic Zm9vOmJhcg=="})
        assert basic.headers["www-authenticate"] == 'Bearer realm="runs"'
        # 401 before 404, 405 and 415; and a 401 startRun creates nothing.
        assert anonymous.get("/no/such/path").status_code == 401
        assert anonymous.delete(RUNS).status_code == 401
        assert anonymous.post(RUNS, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 401
        assert anonymous.post(RUNS, json={"clientId": "anon", "workflow": quick_workflow()}).status_code == 401
    with client(url) as http:
        assert http.get(RUNS, params={"clientId": "anon"}).json()["items"] == []


def test_unknown_paths_and_methods_are_problems(http: httpx.Client) -> None:
    assert_problem(http.get("/nothing/here"), 404, "not-found")
    assert_problem(http.get(RUNS + "/"), 404, "not-found")
    for method, path, allow in (
        ("DELETE", RUNS, "GET, POST"),
        ("PUT", f"{RUNS}/x", "GET"),
        ("GET", f"{RUNS}/x/cancel", "POST"),
    ):
        response = http.request(method, path)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == allow


def test_cancel_queued_running_terminal_and_repeated(url: str) -> None:
    # One worker, busy with a long sleep: the second run stays queued until cancelled.
    with running_server(workers=1) as base, client(base) as http:
        busy = start(http, sleep_workflow(60))
        wait_for_status(http, busy, {"running"})
        queued = start(http)
        assert http.get(f"{RUNS}/{queued}").json()["status"] == "queued"
        ref = http.post(f"{RUNS}/{queued}/cancel")
        assert ref.status_code == 202 and ref.json()["status"] == "cancelled"
        run = http.get(f"{RUNS}/{queued}").json()
        assert run["finishedAt"] and run["cancelRequestedAt"] and run["startedAt"] is None

        ref = http.post(f"{RUNS}/{busy}/cancel")
        assert ref.json()["status"] in {"cancelling", "cancelled"}
        first_request = http.get(f"{RUNS}/{busy}").json()["cancelRequestedAt"]
        assert first_request is not None
        # A sleeping run is cancelled within a second.
        done = wait_for_status(http, busy, {"cancelled"}, timeout=1.0)
        assert done["startedAt"] <= done["finishedAt"]
        again = http.post(f"{RUNS}/{busy}/cancel")
        assert again.status_code == 202 and again.json()["status"] == "cancelled"
        assert http.get(f"{RUNS}/{busy}").json() == done

        finished = start(http)
        before = wait_for_status(http, finished, {"succeeded"})
        ref = http.post(f"{RUNS}/{finished}/cancel")
        assert ref.status_code == 202 and ref.json()["status"] == "succeeded"
        assert http.get(f"{RUNS}/{finished}").json() == before


def test_listing_walk_newest_first_with_filters_and_limits(http: httpx.Client) -> None:
    created = [start(http, client_id="walker") for _ in range(7)]
    wait_for_status(http, created[-1], {"succeeded"})
    seen: list[str] = []
    cursor = None
    limits = iter([3, 1, 2, 5])
    while True:
        params: dict[str, Any] = {"clientId": "walker", "limit": next(limits)}
        if cursor:
            params["cursor"] = cursor
        page = http.get(RUNS, params=params).json()
        schema_validator("/components/schemas/RunList").validate(page)
        again = http.get(RUNS, params=params).json()
        assert again == page  # the same cursor gives the same page
        seen += [r["runId"] for r in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
        assert page["items"], "a non-null cursor is never followed by an empty page"
    assert seen == list(reversed(created))
    exact = http.get(RUNS, params={"clientId": "walker", "limit": 7}).json()
    assert len(exact["items"]) == 7 and exact["nextCursor"] is None
    statuses = {r["status"] for r in http.get(RUNS, params={"status": "succeeded", "limit": 200}).json()["items"]}
    assert statuses == {"succeeded"}


def test_walk_with_runs_created_midway(http: httpx.Client) -> None:
    before = [start(http, client_id="midwalk") for _ in range(4)]
    page = http.get(RUNS, params={"clientId": "midwalk", "limit": 2}).json()
    start(http, client_id="midwalk")  # newer than the walk's position: not part of what follows
    rest = http.get(RUNS, params={"clientId": "midwalk", "limit": 2, "cursor": page["nextCursor"]}).json()
    walked = [r["runId"] for r in page["items"] + rest["items"]]
    assert walked == list(reversed(before)) and rest["nextCursor"] is None


def test_cursor_bound_to_filters_and_tamper_evident(http: httpx.Client) -> None:
    for _ in range(3):
        start(http, client_id="cursors")
    cursor = http.get(RUNS, params={"clientId": "cursors", "limit": 1}).json()["nextCursor"]
    assert_problem(http.get(RUNS, params={"clientId": "other", "cursor": cursor}), 400, "invalid-cursor")
    assert_problem(http.get(RUNS, params={"cursor": cursor}), 400, "invalid-cursor")
    assert_problem(
        http.get(RUNS, params={"clientId": "cursors", "status": "queued", "cursor": cursor}), 400, "invalid-cursor"
    )
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in (cursor[:-3], cursor + "x", flipped, "garbage", "a.b", "..", "\u00e9.x", "x" * 600):
        assert_problem(http.get(RUNS, params={"clientId": "cursors", "cursor": bad}), 400, "invalid-cursor")


@pytest.mark.parametrize(
    "params",
    [{"limit": v} for v in ("0", "201", "-1", "1.5", "abc", "", " 5", "1e2")]
    + [{"status": "done"}, {"status": ""}, {"clientId": ""}, {"clientId": "has space"}, {"clientId": "x" * 65}]
    + [{"cursor": ""}],
)
def test_bad_list_queries_are_400(http: httpx.Client, params: dict[str, str]) -> None:
    response = http.get(RUNS, params=params)
    assert response.status_code == 400
    assert_problem(response, 400, response.json()["type"].rsplit("/", 1)[1])


def test_limit_default_and_bounds(http: httpx.Client) -> None:
    for _ in range(55 - len(http.get(RUNS, params={"limit": 200}).json()["items"])):
        start(http, client_id="filler")
    assert len(http.get(RUNS).json()["items"]) == 50
    assert len(http.get(RUNS, params={"limit": "1"}).json()["items"]) == 1
    assert http.get(RUNS, params={"limit": "200"}).status_code == 200
