"""What a run exercised: every response the spec documents, observed or not, and the spec's headers.

Counted from every exchange the checks made (the Schemathesis phase and the concurrent workload
included): per operation and status code, how many answers came back; per header the spec defines,
how many responses carried it and how many assertions judged it (the evaluations of the
requirements whose statement names it). Responses the spec does not document are listed too.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from typing import Any

from conformance.fingerprints import operation_of
from conformance.results import Coverage, Exchange, HeaderCoverage, RequirementResult, ResponseCoverage
from conformance.spec import load_spec

__all__ = ["coverage_of", "documented_responses"]


@functools.cache
def documented_responses() -> tuple[tuple[str, str], ...]:
    """(operationId, status) of every response the spec documents, in the spec's order."""
    found: list[tuple[str, str]] = []
    for methods in load_spec()["paths"].values():
        for operation in methods.values():
            if isinstance(operation, dict) and "operationId" in operation:
                found += [(operation["operationId"], str(status)) for status in operation.get("responses", {})]
    return tuple(found)


@functools.cache
def spec_headers() -> tuple[str, ...]:
    """Every response header the spec defines, wherever: on a response, in components."""
    names: dict[str, None] = {}

    def walk(node: Any, in_headers: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if in_headers:
                    names[str(key)] = None
                walk(value, key == "headers" and isinstance(value, dict))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    spec = load_spec()
    walk(spec["paths"])
    walk(spec.get("components", {}).get("responses", {}))
    for name in spec.get("components", {}).get("headers", {}):
        names[str(name)] = None
    return tuple(names)


def coverage_of(exchanges: Iterable[Exchange], rows: Iterable[RequirementResult]) -> Coverage:
    observed: Counter[tuple[str, str]] = Counter()
    seen: Counter[str] = Counter()
    headers = spec_headers()
    lowered = {name.lower(): name for name in headers}
    for exchange in exchanges:
        if exchange.status is None:
            continue
        observed[(operation_of(exchange), str(exchange.status))] += 1
        for name in exchange.response_headers:
            if name.lower() in lowered:
                seen[lowered[name.lower()]] += 1
    documented = documented_responses()
    responses = [ResponseCoverage(op, status, True, observed[(op, status)]) for op, status in documented]
    responses += [
        ResponseCoverage(op, status, False, count)
        for (op, status), count in sorted(observed.items())
        if (op, status) not in set(documented)
    ]
    rows = list(rows)
    evaluations = {row.id: row.evaluations for row in rows if row.status.value != "not_selected"}
    checked = {name: sum(row.evaluations for row in rows if name in row.statement) for name in headers}
    return Coverage(
        responses=responses,
        headers=[HeaderCoverage(name, seen[name], checked[name]) for name in headers],
        requirements=evaluations,
    )
