"""Hypothesis strategies for request bodies the server under test can run.

The spec says what a valid RunStartRequest looks like; the user's fixtures say which actions the
server can execute (a server MAY reject unknown actions with 400, and MAY check each action's
params). So generated workflows keep the steps of a fixture workflow as they are (actions,
params, dependencies) and vary only what every correct server must accept: the workflow's name
and version, the step ids (renamed consistently with `dependsOn`), step order, the inputs and the
clientId. Never params: a server that validates them per action would rightly answer 400. Strings
are I-JSON (RFC 7493) without NUL, which a server may refuse (PostgreSQL text holds none).
Lengths and patterns come from the spec (`conformance.spec.load_spec()`), not from copies here.

Also here: JSON-equal re-serialisations of a body (other key order, whitespace and escapes).
JSON equality itself lives in conformance.meaning, with every other comparison of meaning. How a
check runs a property over these is conformance/properties.py.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from hypothesis import strategies as st

from conformance.meaning import json_equal
from conformance.spec import load_spec

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = [
    "SAFE_INTEGER",
    "changed_workflows",
    "compact_bytes",
    "different_request",
    "fresh_client_ids",
    "json_objects",
    "json_values",
    "reordered_bytes",
    "reserialisations",
    "run_start_requests",
    "spaced_bytes",
    "with_each",
    "workflow_variants",
]

T = TypeVar("T")

# I-JSON (RFC 7493 §2.2): integers beyond ±(2**53 - 1) are not interoperable, and RFC 8785 refuses them.
SAFE_INTEGER = 2**53 - 1
_WHITESPACE = ["", " ", "\n", "\t", "\r\n", "  "]  # the four JSON whitespace characters (RFC 8259 §2)


@functools.cache
def _schema(name: str) -> Mapping[str, Any]:
    schema: Mapping[str, Any] = load_spec()["components"]["schemas"][name]
    return schema


def is_ijson_character(code: int) -> bool:
    """A code point every correct server must store: a Unicode scalar value (no surrogate) that is
    not a noncharacter (RFC 7493 §2.1) and not NUL (a server may refuse it; PostgreSQL text has none)."""
    if code == 0 or 0xD800 <= code <= 0xDFFF:
        return False
    return not (0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE)


# I-JSON characters, shrinking towards printable ASCII. Built from code points rather than
# st.text(): st.text() first builds a table of Unicode categories (~5 s), and the runner keeps
# Hypothesis' storage in a fresh place each run, so every run paid it.
_CHARACTERS = (
    st.one_of(
        st.integers(0x20, 0x7E),
        st.integers(0x01, 0xD7FF),
        st.integers(0xE000, 0x10FFFD),
    )
    .filter(is_ijson_character)
    .map(chr)
)


@functools.cache
def _text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.lists(_CHARACTERS, min_size=min_size, max_size=max_size).map("".join)


@functools.cache
def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Small I-JSON values: null, booleans, safe integers, finite doubles, Unicode strings, nested."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-SAFE_INTEGER, max_value=SAFE_INTEGER)
        | st.floats(allow_nan=False, allow_infinity=False)
        | _text(0, 12)
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(_text(0, 8), children, max_size=3),
        max_leaves=max_leaves,
    )


@functools.cache
def json_objects(max_size: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_text(0, 8), json_values(), max_size=max_size)


@functools.cache
def _step_ids(count: int) -> st.SearchStrategy[list[str]]:
    pattern = _schema("Step")["properties"]["id"]["pattern"]
    return st.lists(_short_matches(pattern, 12), min_size=count, max_size=count, unique=True)


@functools.cache
def _short_matches(pattern: str, length: int) -> st.SearchStrategy[str]:
    """Strings matching the spec's `pattern`, cut to `length` (and checked again): readable bodies and evidence."""
    compiled = re.compile(pattern)
    return st.from_regex(compiled, fullmatch=True).map(lambda s: s[:length]).filter(lambda s: bool(compiled.search(s)))


def workflow_variants(fixture: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Workflows with the fixture's steps (actions, params, dependencies as they are), under other
    step ids, in another order, with another name and version."""
    return _workflow_variants([dict(step) for step in fixture["steps"]])


@functools.cache
def _workflow_names() -> st.SearchStrategy[str]:
    name_schema = _schema("Workflow")["properties"]["name"]
    return _text(int(name_schema.get("minLength", 1)), min(int(name_schema.get("maxLength", 200)), 24))


# The composites here are defined once, at module level, and take what varies as arguments:
# @st.composite reads a function's source to check that it draws, and defining them inside the
# functions that return them did that for every strategy made (different_request and
# reserialisations are made once per example, through flatmap).
@st.composite
def _workflow_variants(draw: st.DrawFn, steps: list[dict[str, Any]]) -> dict[str, Any]:
    renamed = dict(zip([s["id"] for s in steps], draw(_step_ids(len(steps))), strict=True))
    new_steps: list[dict[str, Any]] = []
    for step in steps:
        new: dict[str, Any] = {"id": renamed[step["id"]], "action": step["action"]}
        if "params" in step:
            new["params"] = step["params"]  # the fixture's params are what makes the action work
        if step.get("dependsOn"):
            new["dependsOn"] = [renamed[dep] for dep in step["dependsOn"]]
        new_steps.append(new)
    workflow: dict[str, Any] = {"name": draw(_workflow_names())}
    if draw(st.booleans()):
        workflow["version"] = draw(_text(0, 8))
    workflow["steps"] = draw(st.permutations(new_steps))
    return workflow


def run_start_requests(
    fixture: Mapping[str, Any], client_ids: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid RunStartRequest bodies whose workflow runs like `fixture` does."""
    if client_ids is None:
        schema = _schema("ClientId")
        client_ids = _short_matches(schema["pattern"], min(int(schema.get("maxLength", 64)), 16))
    return _run_start_requests(client_ids, workflow_variants(fixture))


@st.composite
def _run_start_requests(
    draw: st.DrawFn, client_ids: st.SearchStrategy[str], workflows: st.SearchStrategy[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"clientId": draw(client_ids), "workflow": draw(workflows)}
    if draw(st.booleans()):
        body["inputs"] = draw(json_objects())
    return body


def different_request(body: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A body for the same clientId that is NOT JSON-equal to `body`, and that every server that
    accepted `body` must accept too: its inputs, the workflow's name or version, a step's id
    (and the dependsOn naming it) or the order of the steps changed. Never a step's params.

    Never by dropping `inputs` for `{}`: the two mean the same run, and a server may treat them alike.
    """
    return _different_request(body)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _rename_step(workflow: dict[str, Any], index: int, new_id: str) -> None:
    """Step `index` gets `new_id`, and every dependsOn that named it follows."""
    old = workflow["steps"][index]["id"]
    workflow["steps"][index]["id"] = new_id
    for step in workflow["steps"]:
        if "dependsOn" in step:
            step["dependsOn"] = [new_id if dep == old else dep for dep in step["dependsOn"]]


def _rotate_steps(workflow: dict[str, Any]) -> None:
    """The first step moved to the end: another array, so another workflow (ids are unique)."""
    workflow["steps"] = [*workflow["steps"][1:], workflow["steps"][0]]


@st.composite
def _different_request(draw: st.DrawFn, body: Mapping[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = _copy(body)
    workflow = changed["workflow"]
    kinds = ["inputs", "name", "version", "step id"] + (["step order"] if len(workflow["steps"]) > 1 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "inputs":
        inputs = changed.setdefault("inputs", {})
        inputs["rc-changed"] = draw(json_values(max_leaves=2))
    elif kind == "name":
        workflow["name"] = workflow["name"][:-1] + ("x" if workflow["name"][-1:] != "x" else "y")
    elif kind == "version":
        workflow["version"] = str(workflow.get("version", "")) + "+1"
    elif kind == "step id":
        taken = {step["id"] for step in workflow["steps"]}
        [new_id] = draw(_step_ids(1).filter(lambda ids: ids[0] not in taken))
        _rename_step(workflow, draw(st.integers(0, len(workflow["steps"]) - 1)), new_id)
    else:
        _rotate_steps(workflow)
    if json_equal(changed, body):  # a drawn value equal to the one it replaced
        changed.setdefault("inputs", {})["rc-changed-too"] = [body.get("inputs")]
    return changed


def _unused_step_id(old: str, taken: set[str]) -> str:
    stem = old[:55]  # 55 + "-renamed" + a digit stays within the pattern's 64 characters
    candidates = [f"{stem}-renamed", *(f"{stem}-renamed{n}" for n in range(10))]
    return next(c for c in candidates if c not in taken)


def changed_workflows(workflow: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Workflows that differ from `workflow` in one place each (name, version, a step's id, the
    order of the steps), labelled; each one every server that accepted `workflow` must accept.

    Deterministic, so that every example tries every kind of change: a hash of only some fields
    must not pass because the one drawn change happened to touch a field it covers.
    """
    changes: list[tuple[str, dict[str, Any]]] = []
    renamed: dict[str, Any] = _copy(workflow)
    renamed["name"] = renamed["name"][:-1] + ("x" if renamed["name"][-1:] != "x" else "y")
    changes.append(("another name", renamed))
    versioned: dict[str, Any] = _copy(workflow)
    versioned["version"] = str(versioned.get("version", "")) + "+1"
    changes.append(("another version", versioned))
    relabelled: dict[str, Any] = _copy(workflow)
    # A step no other step depends on (a DAG has one): renaming it changes its id and nothing
    # else, so a hash that leaves ids out cannot see the change through some dependsOn.
    needed = {dep for step in relabelled["steps"] for dep in step.get("dependsOn", [])}
    leaf = next(i for i, step in enumerate(relabelled["steps"]) if step["id"] not in needed)
    old_id = relabelled["steps"][leaf]["id"]
    new_id = _unused_step_id(old_id, {step["id"] for step in relabelled["steps"]})
    _rename_step(relabelled, leaf, new_id)
    changes.append((f"step {old_id!r} renamed {new_id!r}", relabelled))
    if len(workflow["steps"]) > 1:
        reordered: dict[str, Any] = _copy(workflow)
        _rotate_steps(reordered)
        changes.append(("the order of the steps", reordered))
    return changes


def compact_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


def reordered_bytes(value: Any) -> bytes:
    """Every object's keys in reverse order, compact: JSON-equal, other bytes when an object has two keys."""
    return compact_bytes(_reorder(value))


def spaced_bytes(value: Any) -> bytes:
    """Same key order, indented and \\u-escaped: JSON-equal, other bytes."""
    return (json.dumps(value, ensure_ascii=True, indent=2, allow_nan=False) + "\n").encode("utf-8")


def reserialisations(value: Any) -> st.SearchStrategy[bytes]:
    """Bytes that parse to a JSON-equal value: keys permuted, whitespace added, escapes varied."""
    return _reserialisations(value)


@st.composite
def _reserialisations(draw: st.DrawFn, value: Any) -> bytes:
    ascii_only = draw(st.booleans())
    whitespace = st.sampled_from(_WHITESPACE)

    def encode(item: Any) -> str:
        if isinstance(item, dict):
            keys = draw(st.permutations(list(item)))
            members = [
                f"{draw(whitespace)}{json.dumps(k, ensure_ascii=ascii_only)}{draw(whitespace)}:"
                f"{draw(whitespace)}{encode(item[k])}{draw(whitespace)}"
                for k in keys
            ]
            return "{" + (",".join(members) or draw(whitespace)) + "}"
        if isinstance(item, list):
            elements = [f"{draw(whitespace)}{encode(e)}{draw(whitespace)}" for e in item]
            return "[" + (",".join(elements) or draw(whitespace)) + "]"
        return json.dumps(item, ensure_ascii=ascii_only, allow_nan=False)

    return f"{draw(whitespace)}{encode(value)}{draw(whitespace)}".encode()


def fresh_client_ids(ctx: CheckContext, label: str) -> st.SearchStrategy[str]:
    # Drawn anew for each example, replays included: each example counts only its own runs.
    return st.builds(ctx.fresh_client_id, st.just(label))


def with_each(
    bodies: st.SearchStrategy[dict[str, Any]], derive: Callable[[dict[str, Any]], st.SearchStrategy[T]]
) -> st.SearchStrategy[tuple[dict[str, Any], T]]:
    """Each body with a value drawn from what `derive` makes of it (a re-serialisation, a different request)."""
    return bodies.flatmap(lambda body: st.tuples(st.just(body), derive(body)))
