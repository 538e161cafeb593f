"""The OpenAPI document: where it lives, what it says, and validators compiled from it.

Both the suite and the reference server read the contract through this module, so neither keeps
a second copy of its schemas in code.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# libyaml when the wheel has it: six times faster on the spec, same data.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "KEY_IN_FLIGHT",
    "KEY_REUSED",
    "PROBLEM_BASE",
    "json_pointer",
    "lifecycle",
    "load_spec",
    "operation_of",
    "parameter_pointer",
    "pattern_matches",
    "required_header_problems",
    "required_response_headers",
    "run_fields",
    "run_statuses",
    "schema_validator",
    "spec_path",
    "spec_sha256",
    "spec_version",
    "terminal_statuses",
]

PROBLEM_BASE = "https://scheduler.example.com/problems/"
# The two 409s of startRun the spec tells apart by their Problem type.
KEY_REUSED = PROBLEM_BASE + "idempotency-key-reused"
KEY_IN_FLIGHT = PROBLEM_BASE + "idempotency-key-in-flight"
_SPEC_URI = "urn:runs-conformance:openapi"


def spec_path() -> Path:
    """Where the spec is read from: the copy inside the installed package, else the source tree."""
    packaged = resources.files("conformance") / "_spec" / "runs.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    # A source checkout or an editable install: the single source of truth at the repo root.
    return Path(__file__).resolve().parent.parent / "openapi" / "runs.yaml"


@functools.cache
def _spec_bytes() -> bytes:
    return spec_path().read_bytes()


@functools.cache
def load_spec() -> dict[str, Any]:
    """The parsed spec. Cached: treat it as read-only."""
    document = yaml.load(_spec_bytes(), Loader=_YAML_LOADER)
    if not isinstance(document, dict):
        raise RuntimeError(f"{spec_path()} is not an OpenAPI document")
    return document


def spec_sha256() -> str:
    return hashlib.sha256(_spec_bytes()).hexdigest()


def spec_version() -> str:
    return str(load_spec()["info"]["version"])


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = DRAFT202012.create_resource(load_spec())
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    return registry


@functools.cache
def _python_pattern(pattern: str) -> re.Pattern[str]:
    """An ECMA-262 pattern for Python's re: `$` means the very end, not "before a final newline"."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def pattern_matches(pattern: str, value: str) -> bool:
    """Whether `value` matches the spec's (ECMA-262) `pattern`, as the schema validators read it."""
    return bool(_python_pattern(pattern).search(value))


def _pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not _python_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# The spec's patterns are ECMA-262 (JSON Schema §6.4); Python's `$` would let "abc\n" match "^[a-z]+$".
_Validator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _pattern}
)


@functools.cache
def schema_validator(pointer: str) -> jsonschema.protocols.Validator:
    """A validator for the schema at a JSON pointer into the spec, e.g. ``/components/schemas/Run``.

    Formats are checked (date-time, uri-reference), as the contract requires of responses.
    """
    validator: jsonschema.protocols.Validator = _Validator(
        {"$ref": f"{_SPEC_URI}#{pointer}"},
        registry=_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    return validator


@functools.cache
def lifecycle() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """(status -> the statuses it may move to, the terminal statuses): RunStatus' x-transitions, x-terminal."""
    status = load_spec()["components"]["schemas"]["RunStatus"]
    moves = {name: frozenset(nexts) for name, nexts in status["x-transitions"].items()}
    return moves, frozenset(status["x-terminal"])


@functools.cache
def run_statuses() -> tuple[str, ...]:
    """Every status a run may have (RunStatus' enum), in the spec's order."""
    return tuple(load_spec()["components"]["schemas"]["RunStatus"]["enum"])


def terminal_statuses() -> frozenset[str]:
    return lifecycle()[1]


@functools.cache
def run_fields() -> tuple[str, ...]:
    """The fields of a Run the contract defines (the Run schema's properties), in the spec's order."""
    return tuple(load_spec()["components"]["schemas"]["Run"]["properties"])


@functools.cache
def operation_of(operation_id: str) -> tuple[str, str]:
    """(path, method) of an operation, e.g. ("/api/v1/runs", "post") for startRun."""
    for path, item in load_spec()["paths"].items():
        for method, definition in item.items():
            if isinstance(definition, dict) and definition.get("operationId") == operation_id:
                return path, method
    raise KeyError(f"the spec has no operation {operation_id}")


def json_pointer(*parts: str) -> str:
    """The JSON pointer (RFC 6901) of the spec's node at `parts`, each escaped."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _resolved(node: Any) -> Any:
    """A node with its local $ref followed (the spec's references are all within the document)."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = load_spec()
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


@functools.cache
def parameter_pointer(operation_id: str, location: str, name: str) -> str | None:
    """The JSON pointer of a parameter's schema (for `schema_validator`), or None when it has no such parameter."""
    path, method = operation_of(operation_id)
    parameters = load_spec()["paths"][path][method].get("parameters", [])
    for index, parameter in enumerate(parameters):
        found = _resolved(parameter)
        if found.get("in") == location and str(found.get("name", "")).lower() == name.lower():
            if "$ref" in parameter:
                return f"{parameter['$ref'][1:]}/schema"
            return json_pointer("paths", path, method, "parameters", str(index), "schema")
    return None


@functools.cache
def required_response_headers(operation_id: str, status: int) -> tuple[str, ...]:
    """The headers the spec marks required on this operation's answer with this status (SCHEMA-004's instances)."""
    return tuple(name for name, _ in _required_headers(operation_id, status))


@functools.cache
def _required_headers(operation_id: str, status: int) -> tuple[tuple[str, str], ...]:
    """(name, JSON pointer of its schema) of each header required on this answer, through the spec's $refs
    (a 401 is a shared response, a header may be a shared one)."""
    path, method = operation_of(operation_id)
    pointer = json_pointer("paths", path, method, "responses", str(status))
    response = load_spec()["paths"][path][method].get("responses", {}).get(str(status))
    if isinstance(response, dict) and "$ref" in response:
        pointer = response["$ref"][1:]
    headers = _resolved(response).get("headers", {}) if isinstance(response, dict) else {}
    found = []
    for name, header in headers.items():
        if _resolved(header).get("required"):
            at = header["$ref"][1:] if "$ref" in header else pointer + json_pointer("headers", name)
            found.append((name, at + "/schema"))
    return tuple(found)


def required_header_problems(operation_id: str, status: int, header: Callable[[str], str | None]) -> list[str]:
    """What is wrong with the headers the spec marks required on this answer ([] when nothing is): each
    missing, or with a value its schema refuses. `header(name)` is the answer's field value, or None.

    One judgement for a run's checks and for observed traffic, so that both hold a server to the same
    thing. The whitespace around a field value is not part of it (RFC 9110 §5.5).
    """
    problems = []
    for name, schema in _required_headers(operation_id, status):
        value = header(name)
        if value is None:
            problems.append(f"no {name} header")
            continue
        error = _header_error(schema, value.strip(" \t"))
        if error is not None:
            problems.append(f"{name}: {value!r}, which does not match its schema: {error}")
    return problems


# Traffic repeats a few values (one ETag per definition, one challenge), and building a validator costs.
@functools.lru_cache(maxsize=4096)
def _header_error(pointer: str, value: str) -> str | None:
    error = next(iter(schema_validator(pointer).iter_errors(value)), None)
    return None if error is None else str(error.message)
