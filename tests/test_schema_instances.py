"""conformance/schema_instances.py: which requirement an invalid request is an instance of, judged on the wire.

No server: each request is built as requests would send it, and the verdict is read off the Instance.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.fixtures import Fixtures
from conformance.schema_instances import Instance, WireRequest, invalid_request_instance

TOKEN = "t0ken"
RUNS = "http://127.0.0.1:9/api/v1/runs"
STEPS = [step for name in ("quick", "long", "failing") for step in Fixtures.default().workflow(name)["steps"]]
GOOD_BODY: dict[str, Any] = {"clientId": "rc-x", "workflow": Fixtures.default().workflow("quick")}


def _start(body: Any, *, key: str | None = None, token: str = TOKEN, content_type: str = "application/json",
           raw: bytes | None = None, method: str = "POST") -> Instance | None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if key is not None:
        headers["Idempotency-Key"] = key
    content = raw if raw is not None else json.dumps(body).encode()
    return invalid_request_instance("startRun", "post", WireRequest(method, RUNS, headers, content), TOKEN, STEPS)


def _list(query: str, token: str = TOKEN) -> Instance | None:
    request = WireRequest("GET", f"{RUNS}?{query}", {"Authorization": f"Bearer {token}"}, None)
    return invalid_request_instance("listRuns", "get", request, TOKEN, STEPS)


def _wrong_step_type() -> dict[str, Any]:
    body = json.loads(json.dumps(GOOD_BODY))
    body["workflow"]["steps"][0]["id"] = 7
    return body


def test_a_body_that_violates_run_start_request_is_err_004_and_demands_400() -> None:
    found = _start(_wrong_step_type())
    assert found is not None and list(found.invalid) == ["ERR-004"] and found.demanded == 400
    assert found.clean  # nothing else in the request could earn a 400
    assert "steps/0/id" in found.invalid["ERR-004"]


def test_a_valid_request_is_no_instance() -> None:
    assert _start(GOOD_BODY) is None
    assert _start(GOOD_BODY, key="abc-123") is None


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("another token: 401 may win", {"token": "other"}),
        ("another media type: 415 may win", {"content_type": "text/plain"}),
        ("a media type with parameters", {"content_type": "application/json; charset=latin-1"}),
        ("another method: 405 may win", {"method": "PUT"}),
        ("a body over 1 MiB: 413 may win", {"raw": b'{"clientId": "' + b"x" * (1024 * 1024) + b'"}'}),
    ],
)
def test_no_instance_where_something_else_decides_the_answer(what: str, kwargs: dict[str, Any]) -> None:
    assert _start(_wrong_step_type(), **kwargs) is None, what


def test_with_a_key_an_invalid_body_may_meet_the_key_check_first() -> None:
    found = _start(_wrong_step_type(), key="abc-123")
    assert found is not None and found.excused == frozenset({409}) and found.clean


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "caf\u00e9"])
def test_an_invalid_key_is_idem_008(key: str) -> None:
    found = _start(GOOD_BODY, key=key)
    assert found is not None and list(found.invalid) == ["IDEM-008"] and found.demanded == 400
    assert found.clean  # the fixture's own workflow: the 400 can only be for the key
    assert found.excused == frozenset()


def test_an_invalid_key_with_a_body_the_server_may_refuse_is_no_evidence() -> None:
    body = json.loads(json.dumps(GOOD_BODY))
    body["workflow"]["steps"][0]["action"] = "teleport"  # "A server MAY also answer 400 for an action ..."
    found = _start(body, key="")
    assert found is not None and list(found.invalid) == ["IDEM-008"] and not found.clean
    not_json = _start(None, key="", raw=b"\x00")
    assert not_json is not None and list(not_json.invalid) == ["IDEM-008"] and not not_json.clean


def test_two_invalid_parts_fail_both_but_prove_neither() -> None:
    found = _start(_wrong_step_type(), key="")
    assert found is not None and set(found.invalid) == {"ERR-004", "IDEM-008"} and not found.clean


@pytest.mark.parametrize(
    ("query", "rid"),
    [
        ("limit=0", "PAGE-003"),
        ("limit=201", "PAGE-003"),
        ("limit=-4", "PAGE-003"),
        ("limit=abc", "PAGE-003"),
        ("limit=2.5", "PAGE-003"),
        ("status=Succeeded", "PAGE-010"),
        ("status=", "PAGE-010"),
        ("clientId=has%20space", "PAGE-010"),
        ("clientId=abc%0A", "PAGE-010"),
        ("cursor=", "PAGE-007"),
    ],
)
def test_an_invalid_list_parameter_is_its_requirement(query: str, rid: str) -> None:
    found = _list(query)
    assert found is not None and list(found.invalid) == [rid] and found.clean and found.demanded == 400


@pytest.mark.parametrize(
    "query",
    [
        "limit=5",
        "limit=200&status=queued&clientId=a.b_c",
        "limit=007",  # 7 to most parsers
        "limit=5.0",
        "limit=",
        "cursor=opaque",  # schema-valid; a 400 for one it never issued is the server's right, not ours to demand
        "limit=0&limit=5",  # sent twice: which one counts is the server's business
        "limit=0",  # with another token (below)
    ],
)
def test_no_list_instance_where_the_contract_does_not_decide(query: str) -> None:
    token = "other" if query == "limit=0" else TOKEN
    assert _list(query, token=token) is None


def test_a_400_beside_a_cursor_or_an_unknown_parameter_proves_nothing() -> None:
    for query in ("limit=0&cursor=opaque", "limit=0&extra=1"):
        found = _list(query)
        assert found is not None and list(found.invalid) == ["PAGE-003"] and not found.clean, query


@pytest.mark.parametrize("operation", ["getRun", "getRunDefinition", "cancelRun"])
def test_no_run_id_is_malformed_by_the_contract(operation: str) -> None:
    # RunId is any string: a generated one is an unknown run at most, and may exist ("1", "2", ...).
    method = "post" if operation == "cancelRun" else "get"
    request = WireRequest(method.upper(), f"{RUNS}/1", {"Authorization": f"Bearer {TOKEN}", "If-None-Match": ""}, None)
    assert invalid_request_instance(operation, method, request, TOKEN, STEPS) is None
