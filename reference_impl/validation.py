"""What a valid request is: the spec's schemas plus the rules JSON Schema cannot state."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from conformance.spec import load_spec, schema_validator

from .actions import Action
from .problems import ProblemError

RUN_START_REQUEST = "/components/schemas/RunStartRequest"

_LIMIT_SCHEMA_POINTER = "/paths/~1api~1v1~1runs/get/parameters"
_INTEGER_LITERAL = re.compile(r"[0-9]{1,4}")


def _where(error: jsonschema.ValidationError) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return ("body" + "".join(parts)) if parts else "body"


Steps = list[Mapping[str, Any]]
WorkflowRule = Callable[[Steps, Mapping[str, Action]], None]


def check_run_start_request(
    body: Mapping[str, Any], actions: Mapping[str, Action], rules: Sequence[WorkflowRule] | None = None
) -> None:
    """400 with the first problem found: schema first, then the workflow's own rules."""
    validator = schema_validator(RUN_START_REQUEST)
    errors = sorted(validator.iter_errors(body), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        first = errors[0]
        raise ProblemError("invalid-request", f"{_where(first)}: {first.message[:300]}")
    check_workflow_rules(body["workflow"], actions, WORKFLOW_RULES if rules is None else rules)


def check_workflow_rules(
    workflow: Mapping[str, Any], actions: Mapping[str, Action], rules: Sequence[WorkflowRule] | None = None
) -> None:
    """The rules JSON Schema cannot state, in order; the first one broken is the 400."""
    for rule in WORKFLOW_RULES if rules is None else rules:
        rule(workflow["steps"], actions)


def unique_step_ids(steps: Steps, actions: Mapping[str, Action]) -> None:
    ids: set[str] = set()
    for index, step in enumerate(steps):
        if step["id"] in ids:
            raise ProblemError("invalid-request", f"workflow.steps[{index}].id: duplicate step id {step['id']!r}")
        ids.add(step["id"])


def known_dependencies(steps: Steps, actions: Mapping[str, Action]) -> None:
    ids = {step["id"] for step in steps}
    for index, step in enumerate(steps):
        for dep_index, dep in enumerate(step.get("dependsOn", [])):
            if dep not in ids:
                raise ProblemError(
                    "invalid-request",
                    f"workflow.steps[{index}].dependsOn[{dep_index}]: no step {dep!r} in this workflow",
                )


def acyclic_dependencies(steps: Steps, actions: Mapping[str, Action]) -> None:
    cycle = find_cycle(steps)
    if cycle:
        raise ProblemError("invalid-request", "workflow.steps: dependsOn forms a cycle: " + " -> ".join(cycle))


def supported_actions(steps: Steps, actions: Mapping[str, Action]) -> None:
    for index, step in enumerate(steps):
        action = actions.get(step["action"])
        if action is None:
            supported = ", ".join(sorted(actions))
            raise ProblemError(
                "invalid-request",
                f"workflow.steps[{index}].action: unsupported action {step['action']!r} (supported: {supported})",
            )
        message = action.check(step.get("params", {}))
        if message:
            raise ProblemError("invalid-request", f"workflow.steps[{index}].{message}")


# In this order, so that a workflow that breaks several rules gets the same 400 as before the split.
WORKFLOW_RULES: tuple[WorkflowRule, ...] = (
    unique_step_ids,
    known_dependencies,
    acyclic_dependencies,
    supported_actions,
)


def find_cycle(steps: list[Mapping[str, Any]]) -> list[str]:
    """One dependency cycle as a path (first id repeated at the end), or [] if there is none."""
    deps = {step["id"]: list(step.get("dependsOn", [])) for step in steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in deps:
        if state.get(root):
            continue
        path: list[str] = []
        # Iterative DFS: 100 steps is the schema's limit, but recursion limits are not a contract.
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, next_child = stack.pop()
            if next_child == 0:
                state[node] = 1
                path.append(node)
            children = deps.get(node, [])
            if next_child < len(children):
                stack.append((node, next_child + 1))
                child = children[next_child]
                if state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return []


def dependency_order(steps: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Steps with every step after its dependencies; ties keep the workflow's own order."""
    remaining = {step["id"]: set(step.get("dependsOn", [])) for step in steps}
    ordered: list[Mapping[str, Any]] = []
    done: set[str] = set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s["id"] not in done and remaining[s["id"]] <= done]
        if not ready:
            raise ValueError("the workflow's dependencies have a cycle")
        ordered.append(ready[0])
        done.add(ready[0]["id"])
    return ordered


@dataclass(frozen=True)
class ListQuery:
    limit: int
    cursor: str | None
    status: str | None
    client_id: str | None


_KNOWN_LIST_PARAMS = frozenset({"limit", "cursor", "status", "clientId"})


def _parameter_schema(name: str) -> Mapping[str, Any]:
    for parameter in load_spec()["paths"]["/api/v1/runs"]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: Mapping[str, Any] = parameter["schema"]
            return schema
    raise KeyError(name)


def parse_list_query(params: list[tuple[str, str]]) -> ListQuery:
    """listRuns' query, each value checked against its parameter schema in the spec."""
    seen: dict[str, str] = {}
    for name, value in params:
        if name in _KNOWN_LIST_PARAMS:
            if name in seen:
                raise ProblemError("invalid-request", f"query parameter {name!r} is given more than once")
            seen[name] = value
    limit_schema = _parameter_schema("limit")
    limit = int(limit_schema.get("default", 50))
    if "limit" in seen:
        raw = seen["limit"]
        # Only a plain integer literal: "1.5", "+3", " 7" and "1e2" are not integers in a query.
        if not _INTEGER_LITERAL.fullmatch(raw):
            raise ProblemError("invalid-request", f"limit must be an integer from 1 to 200, not {raw[:40]!r}")
        limit = int(raw)
        if not limit_schema["minimum"] <= limit <= limit_schema["maximum"]:
            raise ProblemError(
                "invalid-request",
                f"limit must be from {limit_schema['minimum']} to {limit_schema['maximum']}, not {limit}",
            )
    for name in ("status", "clientId"):
        if name in seen:
            validator = schema_validator(f"{_LIMIT_SCHEMA_POINTER}/{_index_of(name)}/schema")
            error = next(iter(validator.iter_errors(seen[name])), None)
            if error is not None:
                raise ProblemError("invalid-request", f"{name}: {error.message[:200]}")
    cursor = seen.get("cursor")
    if cursor is not None and cursor == "":
        raise ProblemError("invalid-cursor", "cursor must not be empty; omit it for the first page")
    return ListQuery(limit=limit, cursor=cursor, status=seen.get("status"), client_id=seen.get("clientId"))


def _index_of(name: str) -> int:
    for index, parameter in enumerate(load_spec()["paths"]["/api/v1/runs"]["get"]["parameters"]):
        if parameter["name"] == name:
            return index
    raise KeyError(name)
