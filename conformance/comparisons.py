"""The comparisons the contract implies, derived from openapi/runs.yaml, and the near misses that probe each.

A server compares what a client sends with what it holds: the bearer token with its credentials,
a path's runId with its runs, a query filter or a body field with stored values, a header with a
key or an entity tag. Each such comparison is one a loose server can get wrong on a value one edit
away, so each needs near misses. `implied_comparisons` reads them from the spec (its security
schemes, every operation's parameters, and the body fields a query parameter filters on), so a
parameter added to the spec is a comparison without probes until a check sends some;
`PROBES` says which check sends which near misses of each, judged on which requirement.

The near misses are generated, never listed in a check: of the values the check holds (its token,
clientIds, the cursor a server gave it) by conformance/near_misses.py, and of what the spec
allows by `refused_values`, which reads the parameter's schema (every value of an enum, a
pattern's characters, a maxLength) and keeps only what that schema refuses. A status added to
RunStatus' enum is probed with no code changed.

Not comparisons: an integer parameter (`limit`) is compared as a number, and its near misses are
its bounds; a body field no request names again (the workflow, the inputs) is stored, not compared
(the idempotency fingerprint compares whole bodies, JSON-equal: IDEM-002's strategies).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance import near_misses
from conformance.spec import load_spec, pattern_matches

__all__ = [
    "BEARER",
    "PROBES",
    "Comparison",
    "ProbeSet",
    "implied_comparisons",
    "probe_values",
    "probes_of",
    "refused_values",
    "schema_accepts",
]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# How RFC 9110 has a header of its own compared; any other string is compared exactly.
_HTTP_HEADERS = {
    "if-none-match": ("entity-tag list", "by weak comparison with each listed tag, or `*` (RFC 9110 §13.1.2, §5.6.1)"),
}
_EXAMPLE_TOKEN = "rc-example-token"  # the spec shows no token: the bearer scheme's tokens are the server's
BEARER = "Bearer"  # the scheme as RFC 6750 §2.1 spells it, and as the suite's client sends it


@dataclass(frozen=True)
class Comparison:
    """One value a server compares: where it is sent, on which operations, of what kind, and how compared."""

    key: str  # "<location> <name>", e.g. "query status"
    operations: tuple[str, ...]
    kind: str
    rule: str
    example: str  # the spec's example of the value, to show the probes on

    @property
    def location(self) -> str:
        return self.key.split(" ", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(" ", 1)[1]


@dataclass(frozen=True)
class ProbeSet:
    """Near misses of one comparison that one check sends, and the requirement its answers are judged on.

    `generate` names the function the check calls: one of conformance/near_misses.py, or
    `refused_values` here (the spec's schema of the value decides); `by_hand` says what the check
    lists by hand (nothing today), and why it cannot be derived; `expected` is the answer the
    contract gives them.
    """

    comparison: str
    requirement: str
    sender: str  # "module:function" of the check
    expected: str
    generate: str = ""  # the name of a function of conformance/near_misses.py, or "refused_values"
    by_hand: str = ""


def _resolved(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _example(document: Mapping[str, Any], name: str, parameter: Mapping[str, Any], schema: Any) -> str:
    """The spec's example of the value: its own, its schema's, else the value of a same-named field in an example."""
    for holder in (parameter, schema, _resolved(document, schema)):
        if isinstance(holder, Mapping):
            if "example" in holder:
                return str(holder["example"])
            if holder.get("examples"):
                return str(holder["examples"][0])
            if holder.get("enum"):
                return str(holder["enum"][0])
    for component in document.get("components", {}).get("schemas", {}).values():
        for example in component.get("examples", []) if isinstance(component, Mapping) else []:
            if isinstance(example, Mapping) and isinstance(example.get(name), str):
                return str(example[name])
    return f"rc-example-{name}"  # no example in the spec (an opaque cursor): a stand-in to show probes on


def _kind(document: Mapping[str, Any], location: str, name: str, schema: Any) -> tuple[str, str]:
    if location == "header" and name.lower() in _HTTP_HEADERS:
        return _HTTP_HEADERS[name.lower()]
    resolved = _resolved(document, schema)
    if isinstance(resolved, Mapping) and "enum" in resolved:
        return "enum", "exactly, one of the enum's values (case-sensitive)"
    if isinstance(resolved, Mapping) and "pattern" in resolved:
        return "pattern string", f"exactly (case-sensitive), within `{resolved['pattern']}`"
    return "opaque string", "exactly"


def _operations(document: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (str(operation["operationId"]), operation)
        for item in document.get("paths", {}).values()
        for method, operation in item.items()
        if method in _METHODS and isinstance(operation, Mapping)
    ]


def implied_comparisons(document: Mapping[str, Any] | None = None) -> tuple[Comparison, ...]:
    """Every comparison `document` (the spec, by default) implies, in a stable order."""
    spec = load_spec() if document is None else document
    found: dict[str, dict[str, Any]] = {}

    def add(key: str, operation: str, kind: tuple[str, str], example: str) -> None:
        entry = found.setdefault(key, {"operations": [], "kind": kind, "example": example})
        entry["operations"].append(operation)

    schemes = spec.get("components", {}).get("securitySchemes", {})
    for operation_id, operation in _operations(spec):
        for requirement in operation.get("security", spec.get("security", [])):
            for name in requirement:
                scheme = _resolved(spec, schemes.get(name, {}))
                if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
                    rule = "the scheme name case-insensitively (RFC 9110 §11.1), the token exactly"
                    add("header Authorization", operation_id, ("bearer token", rule), _EXAMPLE_TOKEN)
        filtered_refs: set[str] = set()
        for parameter in operation.get("parameters", []):
            found_parameter = _resolved(spec, parameter)
            schema = found_parameter.get("schema", {})
            if _resolved(spec, schema).get("type") == "integer":
                continue  # compared as a number: its near misses are its bounds
            location, name = str(found_parameter["in"]), str(found_parameter["name"])
            add(
                f"{location} {name}",
                operation_id,
                _kind(spec, location, name, schema),
                _example(spec, name, found_parameter, schema),
            )
            if location == "query" and isinstance(schema.get("$ref"), str):
                filtered_refs.add(schema["$ref"])
        if filtered_refs:
            _body_fields(spec, filtered_refs, add)
    return tuple(
        Comparison(key, tuple(dict.fromkeys(entry["operations"])), entry["kind"][0], entry["kind"][1], entry["example"])
        for key, entry in sorted(found.items())
    )


def _body_fields(
    spec: Mapping[str, Any], refs: set[str], add: Callable[[str, str, tuple[str, str], str], None]
) -> None:
    """Request body fields of the schema a query filter uses: what one request stores, a later one names."""
    for operation_id, operation in _operations(spec):
        body = _resolved(spec, operation.get("requestBody", {}))
        for media in body.get("content", {}).values():
            properties = _resolved(spec, media.get("schema", {})).get("properties", {})
            for name, schema in properties.items():
                if isinstance(schema, Mapping) and schema.get("$ref") in refs:
                    add(
                        f"body {name}",
                        operation_id,
                        _kind(spec, "body", name, schema),
                        _example(spec, name, {}, schema),
                    )


PROBES: tuple[ProbeSet, ...] = (
    ProbeSet("header Authorization", "AUTH-002", "auth:near_miss_tokens_get_401", "401", "near_tokens"),
    ProbeSet(
        "header Authorization", "AUTH-002", "auth:near_miss_tokens_get_401", "401 or 400", "malformed_credentials"
    ),
    ProbeSet("header If-None-Match", "ETAG-005", "etag:if_none_match_is_evaluated", "304", "matching_tag_lists"),
    ProbeSet("header If-None-Match", "ETAG-006", "etag:if_none_match_is_evaluated", "200", "near_entity_tags"),
    ProbeSet(
        "header Idempotency-Key",
        "IDEM-011",
        "idempotency_keys:keys_are_compared_exactly",
        "202, a new run",
        "near_keys",
    ),
    ProbeSet("path runId", "ERR-010", "errors:near_miss_run_ids_get_404", "404", "near_run_ids"),
    ProbeSet("query clientId", "PAGE-009", "pagination_cursors:page_filters", "not listed", "near_client_ids"),
    ProbeSet("body clientId", "PAGE-009", "pagination_cursors:page_filters", "not listed", "near_client_ids"),
    ProbeSet("header Idempotency-Key", "IDEM-008", "idempotency_keys:keys_are_compared_exactly", "400", "look_alike"),
    ProbeSet(
        "header Authorization",
        "AUTH-006",
        "auth:bearer_scheme_in_any_case_accepted",
        "accepted, as with `Bearer` and the same token",
        "scheme_cases",
    ),
    ProbeSet("query clientId", "PAGE-010", "pagination_cursors:bad_filters", "400", "refused_values"),
    ProbeSet("query status", "PAGE-010", "pagination_cursors:bad_filters", "400", "refused_values"),
    ProbeSet("query cursor", "PAGE-007", "pagination_cursors:bad_cursors", "400 or that cursor's page", "near_cursors"),
)


def _parameter_schema(document: Mapping[str, Any], operation_id: str, location: str, name: str) -> Mapping[str, Any]:
    for found_id, operation in _operations(document):
        if found_id != operation_id:
            continue
        for parameter in operation.get("parameters", []):
            found = _resolved(document, parameter)
            if found.get("in") == location and str(found.get("name", "")).lower() == name.lower():
                schema = _resolved(document, found.get("schema", {}))
                return schema if isinstance(schema, Mapping) else {}
    raise KeyError(f"the spec's {operation_id} has no {location} parameter {name}")


def schema_accepts(schema: Mapping[str, Any]) -> Callable[[str], bool]:
    """Whether a string is valid by `schema`'s enum, length bounds and pattern.

    Only these keywords are read; a value refused by none of them counts as accepted, so a value
    called refused is refused by the spec for certain (a keyword read here says so).
    """

    def accepts(value: str) -> bool:
        if "enum" in schema and value not in schema["enum"]:
            return False
        if len(value) < int(schema.get("minLength", 0)):
            return False
        if "maxLength" in schema and len(value) > int(schema["maxLength"]):
            return False
        return "pattern" not in schema or pattern_matches(str(schema["pattern"]), value)

    return accepts


def refused_values(
    operation_id: str,
    location: str,
    name: str,
    value: str | None = None,
    document: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Near misses that the spec's schema of this parameter refuses, labelled: those of `value`, or
    (without one) of every value of its enum, or of the spec's example of it."""
    spec = load_spec() if document is None else document
    schema = _parameter_schema(spec, operation_id, location, name)
    enum = [str(v) for v in schema.get("enum", [])]
    if value is not None:
        values = [value]
    elif enum:
        values = enum
    else:
        values = [_example(spec, name, {}, schema)]
    longest = int(schema["maxLength"]) if "maxLength" in schema else None
    made: dict[str, str] = {}
    for each in values:
        found = near_misses.refused_near_misses(each, schema_accepts(schema), longest=longest, others=enum)
        made.update((label, v) for label, v in found.items() if v not in made.values())
    return made


def probe_values(probe: ProbeSet, comparison: Comparison, document: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The near misses `probe` sends, shown on the spec's example of the value, labelled (bytes shown
    as text); {} when listed by hand.

    `refused_values` reads the spec (`document`, by default the contract); `scheme_cases` varies the
    scheme, not the token; a generator of one value (`look_alike`) gives one near miss.
    """
    if not probe.generate:
        return {}
    made: Mapping[str, str | bytes] | str
    if probe.generate == "refused_values":
        made = refused_values(comparison.operations[0], comparison.location, comparison.name, document=document)
    elif probe.generate == "scheme_cases":
        made = {label: f"{scheme} {comparison.example}" for label, scheme in near_misses.scheme_cases(BEARER).items()}
    else:
        made = getattr(near_misses, probe.generate)(comparison.example)
    if isinstance(made, str):
        made = {"a Unicode look-alike letter": made}
    return {label: v.decode(errors="replace") if isinstance(v, bytes) else v for label, v in made.items()}


@functools.cache
def probes_of() -> dict[str, tuple[ProbeSet, ...]]:
    """PROBES by comparison key."""
    grouped: dict[str, list[ProbeSet]] = {}
    for probe in PROBES:
        grouped.setdefault(probe.comparison, []).append(probe)
    return {key: tuple(value) for key, value in grouped.items()}
