"""Smoke tests of conformance/_compat against the pinned Schemathesis and Hypothesis.

Each private API the suite reaches into is exercised here, fast and without a server, so an upgrade
that moves one fails here by name rather than as a confusing suite error mid-run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import hypothesis.configuration
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from conformance._compat.hypothesis import storage_directory
from conformance._compat.schemathesis import build_operation_test, is_negative, negated_parameters
from conformance.spec import load_spec


def test_hypothesis_storage_moves_and_comes_back(tmp_path: Path) -> None:
    before = hypothesis.configuration.storage_directory("probe", intent_to_write=False).path
    with storage_directory(tmp_path):
        inside = hypothesis.configuration.storage_directory("probe", intent_to_write=False).path
    after = hypothesis.configuration.storage_directory("probe", intent_to_write=False).path
    assert inside == tmp_path / "probe"
    assert after == before


def _list_runs_cases(mode: Any) -> list[Any]:
    raw = copy.deepcopy(load_spec())
    raw["servers"] = [{"url": "http://127.0.0.1:9"}]
    schema = schemathesis.openapi.from_dict(raw)
    schema.config.update(base_url="http://127.0.0.1:9")
    schema.config.generation.update(max_examples=10, database="none", modes=[mode])
    operation = next(
        r.ok() for r in schema.get_all_operations() if r.ok().definition.raw.get("operationId") == "listRuns"
    )
    cases: list[Any] = []

    def collect(case: Any) -> None:
        cases.append(case)

    quiet = settings(database=None, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    build_operation_test(schema.config, operation, collect, quiet)()
    return cases


def test_schemathesis_builds_an_operation_test_and_tells_negative_cases_apart() -> None:
    positive = _list_runs_cases(schemathesis.GenerationMode.POSITIVE)
    negative = _list_runs_cases(schemathesis.GenerationMode.NEGATIVE)
    assert positive and negative
    assert not any(is_negative(case) for case in positive)
    assert all(negated_parameters(case) == [] for case in positive)
    broken = [pair for case in negative if is_negative(case) for pair in negated_parameters(case)]
    assert broken, "no negative case named the parameter it broke"
    # Locations in lower case, as NEGATIVE_PARAMETER_MAP keys them; the security header counts as one.
    known = {("limit", "query"), ("cursor", "query"), ("status", "query"), ("clientId", "query")}
    assert set(broken) <= known | {("Authorization", "header")}, set(broken)
    assert set(broken) & known, "no negative case broke a query parameter"
