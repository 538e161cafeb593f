"""Bad input gets a clear Problem, never a 5xx: explicit cases, then Hypothesis over everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.reference_server import RUNS, TOKEN, quick_workflow, running_server

from conformance.spec import PROBLEM_BASE

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    # Real HTTP, so that what uvicorn does with odd bytes is part of what is tested.
    with running_server() as url, httpx.Client(base_url=url, timeout=10.0) as http:
        yield http


@pytest.fixture(scope="module")
def run_id(api: httpx.Client) -> str:
    created: str = api.post(RUNS, json=body(), headers=AUTH).json()["runId"]
    return created


def assert_clear(response: Any, allowed: set[int] | None = None) -> None:
    assert response.status_code < 500, response.text
    if allowed is not None:
        assert response.status_code in allowed, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code
        assert problem["type"].startswith(PROBLEM_BASE)
        assert problem["detail"]


def body(**overrides: Any) -> dict[str, Any]:
    return {"clientId": "bad-input", "workflow": quick_workflow(), **overrides}


STEP = {"id": "a", "action": "noop"}


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"{not json", 400),
        (b'{"clientId": "x", "clientId": "y", "workflow": {}}', 400),
        (b"[]", 400),
        (b"null", 400),
        (json.dumps(body(extra=1)).encode(), 400),
        (json.dumps(body(clientId=5)).encode(), 400),
        (json.dumps(body(clientId="bad id")).encode(), 400),
        (json.dumps(body(inputs=[])).encode(), 400),
        (json.dumps(body(workflow={"name": "x", "steps": [{**STEP, "unknown": True}]})).encode(), 400),
        (json.dumps(body(workflow={"name": "x", "steps": [STEP, STEP]})).encode(), 400),
        (json.dumps(body(workflow={"name": "x", "steps": [{**STEP, "dependsOn": ["zz"]}]})).encode(), 400),
        (json.dumps(body(workflow={"name": "x", "steps": [{**STEP, "dependsOn": ["a"]}]})).encode(), 400),
        (json.dumps(body(workflow={"name": "x", "steps": [{"id": "s", "action": "sleep"}]})).encode(), 400),
        (
            json.dumps(
                body(workflow={"name": "x", "steps": [{"id": "s", "action": "sleep", "params": {"seconds": 3601}}]})
            ).encode(),
            400,
        ),
        (
            json.dumps(
                body(workflow={"name": "x", "steps": [{"id": "s", "action": "sleep", "params": {"seconds": True}}]})
            ).encode(),
            400,
        ),
        (json.dumps(body(workflow={"name": "x", "steps": [{"id": "s", "action": "launch"}]})).encode(), 400),
        (json.dumps(body(inputs={"big": 2**64})).encode(), 400),
        (b'{"clientId":"x","workflow":{"name":"\\ud800","steps":[{"id":"a","action":"noop"}]}}', 400),
        (b'{"clientId":"x","inputs":{"n":1e400},"workflow":{"name":"x","steps":[{"id":"a","action":"noop"}]}}', 400),
        (b"\xef\xbb\xbf{}", 400),
        ("{}".encode("utf-16"), 400),
        (b" " * 1_048_577, 413),
    ],
)
def test_bad_bodies(api: httpx.Client, payload: bytes, status: int) -> None:
    response = api.post(RUNS, content=payload, headers=JSON)
    assert_clear(response, {status})
    if status == 400:
        assert response.json()["type"] == PROBLEM_BASE + "invalid-request"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/xml", "application/json-patch+json", "application/json; charset=latin-1", "json"],
)
def test_non_json_content_types_are_415(api: httpx.Client, content_type: str | None) -> None:
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    response = api.post(RUNS, content=json.dumps(body()).encode(), headers=headers)
    assert_clear(response, {415})


def test_json_with_charset_is_accepted(api: httpx.Client) -> None:
    headers = {**AUTH, "Content-Type": "Application/JSON; charset=UTF-8"}
    assert api.post(RUNS, content=json.dumps(body()).encode(), headers=headers).status_code == 202


def test_exactly_one_mebibyte_is_not_too_large(api: httpx.Client) -> None:
    document = json.dumps(body()).encode()
    padded = document + b" " * (1_048_576 - len(document))
    assert api.post(RUNS, content=padded, headers=JSON).status_code == 202


def test_oversized_body_without_content_length_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    assert_clear(api.post(RUNS, content=chunks(), headers=JSON), {413})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def mutate(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(base))
    target = document
    for part in path[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(path[-1])] = value
    else:
        target[path[-1]] = value
    return document


PATHS = [
    ["clientId"],
    ["inputs"],
    ["extra"],
    ["workflow"],
    ["workflow", "name"],
    ["workflow", "version"],
    ["workflow", "steps"],
    ["workflow", "steps", "0"],
    ["workflow", "steps", "0", "id"],
    ["workflow", "steps", "0", "action"],
    ["workflow", "steps", "0", "params"],
    ["workflow", "steps", "1", "dependsOn"],
    ["workflow", "steps", "1", "dependsOn", "0"],
]

quiet = settings(max_examples=150)


@quiet
@given(path=st.sampled_from(PATHS), value=json_values)
def test_property_mutated_bodies_never_5xx(api: httpx.Client, path: list[str], value: Any) -> None:
    document = mutate(body(), path, value)
    assert_clear(api.post(RUNS, content=json.dumps(document).encode(), headers=JSON), {202, 400})


@quiet
@given(
    raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/json; charset=utf-8", "multipart/form-data"]
    ),
    key=st.none() | st.text(st.characters(max_codepoint=0x7F), max_size=20),
)
def test_property_arbitrary_bodies_and_keys_never_5xx(
    api: httpx.Client, raw: bytes, content_type: str, key: str | None
) -> None:
    headers = {**AUTH, "Content-Type": content_type}
    # HTTP strips a field value's outer whitespace (RFC 9110 §5.5), and httpx refuses to send it.
    if key is not None and key == key.strip() and all(0x20 <= ord(c) < 0x7F for c in key):
        headers["Idempotency-Key"] = key
    assert_clear(api.post(RUNS, content=raw, headers=headers), {202, 400, 409, 415})


query_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@quiet
@given(
    params=st.dictionaries(st.sampled_from(["limit", "cursor", "status", "clientId", "other"]), query_text, max_size=4)
)
def test_property_list_queries_never_5xx(api: httpx.Client, params: dict[str, str]) -> None:
    assert_clear(api.get(RUNS, params=params, headers=AUTH), {200, 400})


@quiet
@given(run_id=query_text.filter(lambda s: s not in ("", ".", "..") and "/" not in s and "?" not in s and "#" not in s))
def test_property_run_ids_never_5xx(api: httpx.Client, run_id: str) -> None:
    from urllib.parse import quote

    segment = quote(run_id, safe="")
    for response in (
        api.get(f"{RUNS}/{segment}", headers=AUTH),
        api.get(f"{RUNS}/{segment}/definition", headers={**AUTH, "If-None-Match": "*"}),
        api.post(f"{RUNS}/{segment}/cancel", headers=AUTH),
    ):
        assert_clear(response, {404})


@quiet
@given(header=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip))
def test_property_if_none_match_never_5xx(api: httpx.Client, run_id: str, header: str) -> None:
    response = api.get(f"{RUNS}/{run_id}/definition", headers={**AUTH, "If-None-Match": header})
    assert_clear(response, {200, 304})
