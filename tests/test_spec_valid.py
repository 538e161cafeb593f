"""openapi/runs.yaml is a valid OpenAPI 3.1 document, lints clean, and agrees with the catalog.

Every check is a function of a spec (and catalog) that is also run against a broken copy, so a
check that can never fail is caught here rather than trusted.

Catalog citations (`citation.spec` in conformance/requirements.yaml) are dotted paths into the
spec. Keys are matched whole and literally, so path keys keep their `/` and `{}`
(`paths./api/v1/runs/{runId}/cancel.post.description`), and no escaping is needed; because the
path is never split blindly on `.`, a key that itself holds a dot would still match. A list is
addressed by index or by its items' `name` (`parameters.limit`), a `$ref` is followed on the way
down, and `*` stands for any one key.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
import yaml
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from support.tooling import node_tool

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "runs.yaml"
CATALOG = ROOT / "conformance" / "requirements.yaml"
REDOCLY_CONFIG = ROOT / "redocly.yaml"

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Warnings that redocly's recommended rules raise on purpose-made choices; anything else printed
# is new and deserves a look.
ACCEPTED_LINT_WARNINGS = {
    ("no-server-example.com", "#/servers/0/url"): "the seed fixes the server as scheduler.example.com",
    ("no-unused-components", "#/components/headers/Location"): "see redocly.yaml",
}
START_RUN_LINK_TARGETS = ("getRun", "getRunDefinition", "cancelRun")

Spec = dict[str, Any]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def spec() -> Spec:
    document = load_yaml(SPEC)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    data = load_yaml(CATALOG)
    assert isinstance(data, dict)
    return data


# --- helpers ------------------------------------------------------------------------------------


def deref(spec: Spec, node: Any) -> Any:
    """``node`` with local ``$ref``s followed (the spec uses no remote ones)."""
    for _ in range(32):
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            return node
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    raise ValueError("a $ref cycle")


def resolve(spec: Spec, path: str) -> list[Any]:
    """Every node a dotted citation path names (see the module docstring); [] when none."""

    def walk(node: Any, rest: str) -> Iterator[Any]:
        if rest == "":
            yield node
            return
        node = deref(spec, node)
        children: list[tuple[str, Any]] = []
        if isinstance(node, Mapping):
            children = [(str(key), value) for key, value in node.items()]
        elif isinstance(node, list):
            for index, item in enumerate(node):
                children.append((str(index), item))
                named = deref(spec, item)
                if isinstance(named, Mapping) and isinstance(named.get("name"), str):
                    children.append((named["name"], item))
        for key, value in children:
            if rest == "*" or rest == key:
                yield value
            elif rest.startswith("*."):
                yield from walk(value, rest[2:])
            elif rest.startswith(key + "."):
                yield from walk(value, rest[len(key) + 1 :])

    return list(walk(spec, path))


def operations(spec: Spec) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation."""
    for path, item in spec.get("paths", {}).items():
        for method, operation in deref(spec, item).items():
            if method in HTTP_METHODS:
                yield path, method, operation


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


# --- the checks, as functions of a spec ----------------------------------------------------------


def spec_validator_errors(spec: Spec) -> list[str]:
    try:
        openapi_spec_validator.validate(spec)
    except OpenAPIValidationError as error:
        return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"]
    return []


def redocly_lint(spec_path: Path) -> dict[str, Any]:
    """Redocly's JSON report for ``spec_path`` under redocly.yaml."""
    proc = subprocess.run(
        [
            str(node_tool("redocly")),
            "lint",
            "--format=json",
            f"--config={REDOCLY_CONFIG}",
            str(spec_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"redocly lint gave no JSON (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return report


def describe_problem(problem: Mapping[str, Any]) -> str:
    location = problem["location"][0] if problem.get("location") else {}
    line = location.get("start", {}).get("line", "?")
    pointer = location.get("pointer", "?")
    return f"{problem['severity']} {problem['ruleId']} at {pointer} (line {line}): {problem['message']}"


def cited_ids(spec: Spec, prefixes: set[str]) -> set[str]:
    """Requirement IDs the spec's text cites: `[ID]`, or a bare ID with a catalog prefix."""
    bracketed = re.compile(r"\[([A-Z]+-\d+)\]")
    bare = re.compile(r"\b(" + "|".join(sorted(map(re.escape, prefixes))) + r")-\d+\b") if prefixes else None
    found: set[str] = set()
    for text in strings(spec):
        found.update(bracketed.findall(text))
        if bare:
            found.update(match.group(0) for match in bare.finditer(text))
    return found


def catalog_problems(spec: Spec, catalog: Mapping[str, Any]) -> list[str]:
    """Where the catalog and the spec disagree: IDs, operationIds, citation paths."""
    entries: list[Mapping[str, Any]] = catalog["requirements"]
    ids = {entry["id"] for entry in entries}
    prefixes = {entry["id"].split("-")[0] for entry in entries}
    operation_ids = {operation.get("operationId") for _, _, operation in operations(spec)}
    problems = [f"the spec cites {cited}, which the catalog lacks" for cited in sorted(cited_ids(spec, prefixes) - ids)]
    for entry in entries:
        for operation_id in entry["operations"]:
            if operation_id not in operation_ids:
                problems.append(f"{entry['id']}: operation {operation_id!r} is not an operationId of the spec")
        cited = entry["citation"]["spec"]
        # A wildcard path must still name something, or it points at a part of the spec that is gone.
        if not resolve(spec, cited):
            problems.append(f"{entry['id']}: citation.spec {cited!r} names nothing in the spec")
    return problems


def _validator(spec: Spec, schema: Any) -> jsonschema.protocols.Validator:
    uri = "urn:runs-conformance:spec-under-test"
    registry: Registry[Any] = Registry().with_resource(uri, DRAFT202012.create_resource(spec))
    # Refs inside the spec are '#/components/...': resolve them against the whole document.
    return jsonschema.Draft202012Validator(
        {"$id": uri + "-wrapper", "allOf": [_rebase(schema, uri)]},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _rebase(schema: Any, uri: str) -> Any:
    if isinstance(schema, Mapping):
        return {
            key: (
                uri + value
                if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _rebase(value, uri)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(item, uri) for item in schema]
    return schema


def _media_examples(media: Mapping[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if "example" in media:
        found.append(("example", media["example"]))
    for name, example in (media.get("examples") or {}).items():
        if isinstance(example, Mapping) and "value" in example:
            found.append((f"examples.{name}", example["value"]))
    return found


def example_problems(spec: Spec) -> list[str]:
    """Missing or invalid examples: every schema, every request body, every success response."""
    problems: list[str] = []
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        examples = schema.get("examples")
        if not (isinstance(examples, list) and examples):
            problems.append(f"components.schemas.{name} has no `examples`")
            continue
        for index, example in enumerate(examples):
            for error in _validator(spec, schema).iter_errors(example):
                problems.append(f"components.schemas.{name}.examples[{index}] is invalid: {error.message}")
    for path, method, operation in operations(spec):
        where = f"{operation.get('operationId', path)} ({method.upper()} {path})"
        bodies: list[tuple[str, Any]] = []
        if "requestBody" in operation:
            bodies.append(("request body", deref(spec, operation["requestBody"])))
        successes = [
            (f"{status} response", deref(spec, response))
            for status, response in operation.get("responses", {}).items()
            if str(status).startswith("2")
        ]
        if not successes:
            problems.append(f"{where} documents no success response")
        for label, body in bodies + successes:
            for media_type, media in (body.get("content") or {}).items():
                examples = _media_examples(media)
                if not examples:
                    problems.append(f"{where}: the {label} ({media_type}) has no example")
                validator = _validator(spec, media.get("schema", {}))
                for example_name, value in examples:
                    for error in validator.iter_errors(value):
                        problems.append(f"{where}: the {label} {example_name} is invalid: {error.message}")
    return problems


def link_problems(spec: Spec) -> list[str]:
    """startRun's 202 links to each operation that takes its runId; every link names a real operation."""
    by_id = {operation.get("operationId"): operation for _, _, operation in operations(spec)}
    problems: list[str] = []
    for path, method, operation in operations(spec):
        for status, response in operation.get("responses", {}).items():
            for name, link in (deref(spec, response).get("links") or {}).items():
                target = by_id.get(link.get("operationId"))
                where = f"{path}.{method}.responses.{status}.links.{name}"
                if target is None:
                    problems.append(f"{where}: no operation {link.get('operationId')!r}")
                    continue
                accepted = {deref(spec, parameter)["name"] for parameter in target.get("parameters", [])}
                for parameter in link.get("parameters", {}):
                    if parameter not in accepted:
                        problems.append(f"{where}: {link['operationId']} takes no parameter {parameter!r}")
    start = next((op for _, _, op in operations(spec) if op.get("operationId") == "startRun"), None)
    if start is None:
        return [*problems, "no startRun operation"]
    links = deref(spec, start.get("responses", {}).get("202", {})).get("links") or {}
    for wanted in START_RUN_LINK_TARGETS:
        if not any(
            link.get("operationId") == wanted and link.get("parameters", {}).get("runId") == "$response.body#/runId"
            for link in links.values()
        ):
            problems.append(f"startRun's 202 has no link to {wanted} passing runId: $response.body#/runId")
    return problems


# --- the real spec ------------------------------------------------------------------------------


def test_openapi_spec_validator_accepts_the_spec(spec: Spec) -> None:
    assert spec_validator_errors(spec) == []


def test_redocly_recommended_rules_report_no_errors() -> None:
    report = redocly_lint(SPEC)
    problems = report["problems"]
    for problem in problems:
        location = problem["location"][0]["pointer"] if problem.get("location") else ""
        reason = ACCEPTED_LINT_WARNINGS.get((problem["ruleId"], location))
        print(describe_problem(problem) + (f" [accepted: {reason}]" if reason else " [NEW]"))
    errors = [describe_problem(problem) for problem in problems if problem["severity"] == "error"]
    assert errors == [], "redocly lint errors:\n" + "\n".join(errors)
    assert report["totals"]["errors"] == 0


def test_catalog_and_spec_agree(spec: Spec, catalog: dict[str, Any]) -> None:
    problems = catalog_problems(spec, catalog)
    assert problems == [], "\n".join(problems)


def test_every_schema_and_operation_has_valid_examples(spec: Spec) -> None:
    problems = example_problems(spec)
    assert problems == [], "\n".join(problems)


def test_links_name_real_operations_and_start_run_links_its_run(spec: Spec) -> None:
    problems = link_problems(spec)
    assert problems == [], "\n".join(problems)


# --- the resolver -------------------------------------------------------------------------------

TINY: Spec = {
    "paths": {
        "/a/{id}": {"get": {"parameters": [{"$ref": "#/components/parameters/Id"}, {"name": "q"}]}},
        "/a": {"post": {"description": "x"}},
    },
    "components": {"parameters": {"Id": {"name": "id", "in": "path"}}, "schemas": {"v1.0": {"type": "string"}}},
}


@pytest.mark.parametrize(
    ("path", "count"),
    [
        ("paths./a.post.description", 1),
        ("paths./a/{id}.get.parameters.id.in", 1),
        ("paths./a/{id}.get.parameters.1", 1),
        ("paths./a/{id}.get.parameters.q", 1),
        ("components.schemas.v1.0.type", 1),
        ("paths.*.*", 2),
        ("paths.*.post.description", 1),
        ("paths./a.get", 0),
        ("paths./a/{id}.post", 0),
        ("paths./a/{runId}.get", 0),
        ("paths./a.post.description.x", 0),
        ("components.schemas.v1", 0),
    ],
)
def test_resolve(path: str, count: int) -> None:
    assert len(resolve(TINY, path)) == count


# --- each check fails on a broken copy -----------------------------------------------------------


def test_spec_validator_fails_on_a_broken_spec(spec: Spec) -> None:
    broken = copy.deepcopy(spec)
    broken["paths"]["/api/v1/runs"]["get"]["responses"] = "none"
    assert spec_validator_errors(broken)


def test_redocly_fails_on_a_broken_spec(tmp_path: Path) -> None:
    text = SPEC.read_text(encoding="utf-8")
    target = "$ref: '#/components/schemas/RunList'"
    assert text.count(target) == 1, "the mutation target moved"
    broken = tmp_path / "runs.yaml"
    broken.write_text(text.replace(target, "$ref: '#/components/schemas/NoSuchSchema'"), encoding="utf-8")
    report = redocly_lint(broken)
    assert report["totals"]["errors"] > 0
    assert "no-unresolved-refs" in {problem["ruleId"] for problem in report["problems"]}


def test_catalog_check_fails_on_each_kind_of_disagreement(spec: Spec, catalog: dict[str, Any]) -> None:
    broken_spec = copy.deepcopy(spec)
    broken_spec["info"]["description"] += " See [NOPE-001] and SCHEMA-999."
    broken_catalog = copy.deepcopy(catalog)
    first = broken_catalog["requirements"][0]
    first["operations"] = [*first["operations"], "deleteRun"]
    first["citation"]["spec"] = "paths./api/v1/runs.delete.description"
    broken_catalog["requirements"][1]["citation"]["spec"] = "paths.*.put"
    assert catalog_problems(broken_spec, broken_catalog) == [
        "the spec cites NOPE-001, which the catalog lacks",
        "the spec cites SCHEMA-999, which the catalog lacks",
        f"{first['id']}: operation 'deleteRun' is not an operationId of the spec",
        f"{first['id']}: citation.spec 'paths./api/v1/runs.delete.description' names nothing in the spec",
        f"{broken_catalog['requirements'][1]['id']}: citation.spec 'paths.*.put' names nothing in the spec",
    ]


def test_example_check_fails_on_missing_and_invalid_examples(spec: Spec) -> None:
    broken = copy.deepcopy(spec)
    del broken["components"]["schemas"]["Step"]["examples"]
    broken["components"]["schemas"]["RunRef"]["examples"] = [{"runId": "r", "status": "paused"}]
    start = broken["paths"]["/api/v1/runs"]["post"]
    del start["requestBody"]["content"]["application/json"]["examples"]
    del broken["paths"]["/api/v1/runs/{runId}"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    problems = example_problems(broken)
    assert "components.schemas.Step has no `examples`" in problems
    assert any(p.startswith("components.schemas.RunRef.examples[0] is invalid: 'paused'") for p in problems)
    assert "startRun (POST /api/v1/runs): the request body (application/json) has no example" in problems
    assert "getRun (GET /api/v1/runs/{runId}): the 200 response (application/json) has no example" in problems


def test_link_check_fails_without_a_start_run_link(spec: Spec) -> None:
    broken = copy.deepcopy(spec)
    links = broken["paths"]["/api/v1/runs"]["post"]["responses"]["202"]["links"]
    del links["CancelRunById"]
    links["GetRunById"]["parameters"] = {"id": "$response.body#/runId"}
    assert link_problems(broken) == [
        "/api/v1/runs.post.responses.202.links.GetRunById: getRun takes no parameter 'id'",
        "startRun's 202 has no link to getRun passing runId: $response.body#/runId",
        "startRun's 202 has no link to cancelRun passing runId: $response.body#/runId",
    ]
