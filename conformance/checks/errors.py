"""Bad input gets a clear 4xx Problem, never a 5xx (ERR-001..011), with hand-written requests.

The Schemathesis phase (checks/schema.py) fuzzes the same rules; these checks send the cases
the catalog names, so each rule is verified even at the smallest budget.
"""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any
from urllib.parse import quote

from conformance.check_helpers import show
from conformance.client import ApiResponse
from conformance.context import RUNS, CheckContext
from conformance.near_misses import near_run_ids
from conformance.registry import check

PROBLEM = "application/problem+json"
ONE_MIB = 1024 * 1024


def _problem_ok(ctx: CheckContext, what: str, response: ApiResponse) -> None:
    """ERR-002 for any 4xx: a Problem whose status equals the HTTP status; ERR-001 for any 5xx."""
    status = response.status_code
    ctx.expect("ERR-001", status < 500, f"{what} answered {status}", on=response)
    if not 400 <= status < 500:
        return
    body = response.json_or_none()
    ctx.expect(
        "ERR-002",
        response.media_type == PROBLEM,
        f"{what}: the {status} has Content-Type {response.media_type or 'none'!r}, not {PROBLEM}",
        on=response,
    )
    ctx.expect(
        "ERR-002",
        isinstance(body, dict)
        and body.get("status") == status
        and isinstance(body.get("type"), str)
        and isinstance(body.get("title"), str),
        f"{what}: the {status} body is not a Problem with type, title and status {status}",
        on=response,
    )


def _expect_status(ctx: CheckContext, rid: str, what: str, response: ApiResponse, expected: int) -> None:
    ctx.expect(
        rid, response.status_code == expected, f"{what} answered {response.status_code}, not {expected}", on=response
    )
    _problem_ok(ctx, what, response)


def _valid_body(ctx: CheckContext) -> dict[str, Any]:
    return {"clientId": ctx.fresh_client_id("err"), "workflow": ctx.fixtures.workflow("quick")}


@check("ERR-002", "ERR-001")
def every_4xx_is_a_problem(ctx: CheckContext) -> None:
    """A sample of 4xx answers of every operation: Problems whose status equals the HTTP status."""
    unknown = next(iter(ctx.unknown_run_ids()), f"run_rc_{secrets.token_hex(8)}")
    samples = [
        ("getRun of an unknown run", ctx.get_run(unknown)),
        ("getRunDefinition of an unknown run", ctx.get_definition(unknown)),
        ("cancelRun of an unknown run", ctx.cancel_run(unknown)),
        ("listRuns with limit=0", ctx.list_runs(limit=0)),
        ("startRun with an empty object", ctx.client.post(RUNS, json_body={})),
        ("listRuns without a token", ctx.anonymous.get(RUNS)),
    ]
    # A resembling unknown ID another check's start took since it was drawn (sequential IDs): no 4xx to judge.
    taken = ctx.taken_meanwhile(unknown) if not all(400 <= r.status_code < 500 for _, r in samples[:3]) else False
    for what, response in samples[3:] if taken else samples:
        ctx.expect(
            "ERR-002",
            400 <= response.status_code < 500,
            f"{what} answered {response.status_code}, not a 4xx",
            on=response,
        )
        _problem_ok(ctx, what, response)


@check("ERR-003", "ERR-002", "ERR-001")
def malformed_json_gets_400(ctx: CheckContext) -> None:
    """Bodies that are not well-formed JSON: 400 Problems."""
    good = json.dumps(_valid_body(ctx))
    for what, content in (
        ("a truncated JSON body", good[:-3].encode()),
        ("a body of plain words", b"this is not json"),
        ("a trailing comma", good[:-1].encode() + b",}"),
        ("invalid UTF-8", b'{"clientId": "\xff\xfe"}'),
        ("an empty body", b""),
    ):
        _expect_status(
            ctx,
            "ERR-003",
            f"startRun with {what}",
            ctx.post_run(content, content_type="application/json").response,
            400,
        )


@check("ERR-004", "ERR-001")
def schema_violations_get_400(ctx: CheckContext) -> None:
    """Bodies that break RunStartRequest (missing, mistyped, out of range, unknown fields): 400."""
    base = _valid_body(ctx)
    cases: list[tuple[str, Any]] = []

    def variant(what: str, change: Any) -> None:
        body = copy.deepcopy(base)
        change(body)
        cases.append((what, body))

    variant("no clientId", lambda b: b.pop("clientId"))
    variant("no workflow", lambda b: b.pop("workflow"))
    variant("a numeric clientId", lambda b: b.update(clientId=42))
    variant("a clientId of 65 characters", lambda b: b.update(clientId="c" * 65))
    variant("a clientId with a space", lambda b: b.update(clientId="has space"))
    variant("an unknown top-level field", lambda b: b.update(extra=True))
    variant("an unknown workflow field", lambda b: b["workflow"].update(extra=True))
    variant("an unknown step field", lambda b: b["workflow"]["steps"][0].update(extra=True))
    variant("no steps", lambda b: b["workflow"].update(steps=[]))
    variant("101 steps", lambda b: b["workflow"].update(steps=[{"id": f"s{i}", "action": "noop"} for i in range(101)]))
    variant("a step id with a slash", lambda b: b["workflow"]["steps"][0].update(id="a/b"))
    variant("an empty workflow name", lambda b: b["workflow"].update(name=""))
    variant("inputs that are a list", lambda b: b.update(inputs=[1, 2]))
    cases.append(("a JSON array", [base]))
    cases.append(("a JSON string", "run"))
    for what, body in cases:
        _expect_status(ctx, "ERR-004", f"startRun with {what}", ctx.client.post(RUNS, json_body=body), 400)


def _workflow(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "rc-bad-workflow", "steps": steps}


@check("ERR-005", "ERR-001")
def duplicate_step_ids_get_400(ctx: CheckContext) -> None:
    """A workflow with two steps of one id: 400."""
    steps: list[dict[str, Any]] = [{"id": "a", "action": "noop"}, {"id": "a", "action": "noop"}]
    response = ctx.start_run(_workflow(steps), client_id=ctx.fresh_client_id("err")).response
    _expect_status(ctx, "ERR-005", "startRun with duplicate step ids", response, 400)


@check("ERR-006", "ERR-001")
def unknown_dependency_gets_400(ctx: CheckContext) -> None:
    """A workflow whose dependsOn names a step it does not have: 400."""
    steps: list[dict[str, Any]] = [
        {"id": "a", "action": "noop"},
        {"id": "b", "action": "noop", "dependsOn": ["nope"]},
    ]
    response = ctx.start_run(_workflow(steps), client_id=ctx.fresh_client_id("err")).response
    _expect_status(ctx, "ERR-006", "startRun with dependsOn naming an unknown step", response, 400)


@check("ERR-007", "ERR-001")
def cyclic_dependencies_get_400(ctx: CheckContext) -> None:
    """A workflow whose dependencies form a cycle, a self-dependency included: 400."""
    cycles: dict[str, list[dict[str, Any]]] = {
        "a self-dependency": [{"id": "a", "action": "noop", "dependsOn": ["a"]}],
        "a two-step cycle": [
            {"id": "a", "action": "noop", "dependsOn": ["b"]},
            {"id": "b", "action": "noop", "dependsOn": ["a"]},
        ],
        "a three-step cycle": [
            {"id": "a", "action": "noop", "dependsOn": ["c"]},
            {"id": "b", "action": "noop", "dependsOn": ["a"]},
            {"id": "c", "action": "noop", "dependsOn": ["b"]},
        ],
    }
    for what, steps in cycles.items():
        response = ctx.start_run(_workflow(steps), client_id=ctx.fresh_client_id("err")).response
        _expect_status(ctx, "ERR-007", f"startRun with {what}", response, 400)


def _body_of(ctx: CheckContext, size: int) -> bytes:
    """A valid startRun body of exactly `size` bytes.

    Padded with JSON whitespace before the closing brace, so a server that accepts it stores an
    ordinary run: 1 MiB of padding in `inputs` would come back in every listing of the runs.
    """
    content = json.dumps(_valid_body(ctx), separators=(",", ":")).encode()
    return content[:-1] + b" " * (size - len(content)) + b"}"


@check("ERR-008", "ERR-001", needs=["fixture:quick"])
def oversized_body_gets_413(ctx: CheckContext) -> None:
    """A valid body one byte over 1 MiB gets 413; one of exactly 1 MiB, and one just under, get 202.

    The limit is on bytes over the wire, and "over 1 MiB" starts at 1,048,577: a limit off by one
    (or one of 1,000,000 bytes) turns away requests the contract accepts.
    """
    sizes = (
        (ONE_MIB - 1, "one byte under 1 MiB", 202),
        (ONE_MIB, "exactly 1 MiB", 202),
        (ONE_MIB + 1, "one byte over 1 MiB", 413),
    )
    for size, label, expected in sizes:
        content = _body_of(ctx, size)
        response = ctx.post_run(content, content_type="application/json").response
        what = f"startRun with a valid body of {size:,} bytes ({label})"
        if expected == 413:
            _expect_status(ctx, "ERR-008", what, response, 413)
            continue
        ctx.expect(
            "ERR-008",
            response.status_code == 202,
            f"{what} answered {show(response)}; only a body larger than 1 MiB "
            "(1,048,576 bytes) gets 413, and this one is a valid request (ERR-008)",
            on=response,
        )
        _problem_ok(ctx, what, response)


@check("ERR-009", "ERR-001")
def non_json_content_type_gets_415(ctx: CheckContext) -> None:
    """A valid JSON body sent as text/plain or form data: 415."""
    content = json.dumps(_valid_body(ctx)).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = ctx.post_run(content, content_type=content_type).response
        _expect_status(ctx, "ERR-009", f"startRun sent as {content_type}", response, 415)


MALFORMED_IDS = {
    "an unknown runId": f"run_rc_{secrets.token_hex(8)}",
    "a runId of 300 characters": "r" * 300,
    "a runId with spaces": "not%20a%20run",
    "a runId with a dot": "..run",
    "a runId of non-ASCII letters": "%C3%A9t%C3%A9",
    "a runId of quotes and braces": "%22%7B%7D%22",
}


@check("ERR-010", "ERR-002", "ERR-001")
def unknown_or_malformed_run_ids_get_404(ctx: CheckContext) -> None:
    """getRun, getRunDefinition and cancelRun of unknown and malformed runIds: 404 Problems."""
    for what, run_id in MALFORMED_IDS.items():
        for op, method, path in (
            ("getRun", "GET", f"{RUNS}/{run_id}"),
            ("getRunDefinition", "GET", f"{RUNS}/{run_id}/definition"),
            ("cancelRun", "POST", f"{RUNS}/{run_id}/cancel"),
        ):
            response = ctx.client.request(method, path)
            _expect_status(ctx, "ERR-010", f"{op} of {what}", response, 404)


@check("ERR-010", "ERR-001", needs=["fixture:quick"])
def near_miss_run_ids_get_404(ctx: CheckContext) -> None:
    """getRun and getRunDefinition of IDs one edit away from a real runId: 404, never that run.

    A prefix, a suffix or the ID with a character appended names another run or none: the answer
    is 404, or a 200 whose runId is exactly the ID asked for (sequential IDs make "5" a prefix of
    "57", and run 5 exists). The ID in other case may be the same run (an ID column may compare
    case-insensitively, as UUIDs do) or 404. cancelRun is not probed: a near miss can be someone
    else's run.
    """
    started = ctx.start_run(client_id=ctx.fresh_client_id("nearid"))
    if started.run_id is None:
        raise ctx.refused("startRun of the quick fixture", started.response, "give a quick fixture with --fixtures")
    run_id = started.run_id
    probes = [(label, value, {value}) for label, value in near_run_ids(run_id).items()]
    other_case = run_id.swapcase()
    if other_case != run_id:
        probes.append(("it in other case", other_case, {other_case, run_id}))
    for label, value, allowed in probes:
        what = f"{value!r} ({label} of the run {run_id!r})"
        got = ctx.get_run(quote(value, safe=""))
        data = got.json_or_none() if got.status_code == 200 else None
        found = data.get("runId") if isinstance(data, dict) else None
        same = " (or, in other case, the same run)" if len(allowed) > 1 else ""
        ctx.expect(
            "ERR-010",
            got.status_code == 404 or (got.status_code == 200 and found in allowed),
            f"getRun of {what} answered {show(got)}; an ID that no run has is an unknown runId and gets 404, and a "
            f"200 must be the run with exactly that ID{same}, so look runs up by the whole ID, not by a prefix, a "
            "parsed part or a truncation (ERR-010)",
            on=got,
        )
        exists = got.status_code == 200 and found in allowed
        definition = ctx.get_definition(quote(value, safe=""))
        ctx.expect(
            "ERR-010",
            definition.status_code == 404 or (definition.status_code == 200 and exists),
            f"getRunDefinition of {what} answered {show(definition)}, while getRun of it answered "
            f"{got.status_code}; an ID that no run has gets 404 (ERR-010)",
            on=[got, definition],
        )


@check("ERR-011", "ERR-001")
def undeclared_methods_get_405(ctx: CheckContext) -> None:
    """Methods the spec does not declare on a documented path: 405 with an Allow header."""
    run_id = ctx.start_run().run_id or f"run_rc_{secrets.token_hex(8)}"
    declared = {
        RUNS: {"GET", "POST"},
        f"{RUNS}/{run_id}": {"GET"},
        f"{RUNS}/{run_id}/definition": {"GET"},
        f"{RUNS}/{run_id}/cancel": {"POST"},
    }
    for path, methods in declared.items():
        for method in ("PUT", "DELETE", "PATCH", "POST", "GET"):
            if method in methods:
                continue
            response = ctx.client.request(method, path)
            template = path.replace(run_id, "{runId}")
            what = f"{method} {template}"
            ctx.expect(
                "ERR-011", response.status_code == 405, f"{what} answered {response.status_code}, not 405", on=response
            )
            ctx.expect("ERR-001", response.status_code < 500, f"{what} answered {response.status_code}", on=response)
            if response.status_code == 405:
                allow = {m.strip().upper() for m in response.headers.get("allow", "").split(",") if m.strip()}
                ctx.expect(
                    "ERR-011",
                    methods <= allow,
                    f"{what}: 405 with Allow {response.headers.get('allow')!r}, which lacks {sorted(methods - allow)}",
                    on=response,
                )
