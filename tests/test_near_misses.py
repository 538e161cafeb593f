"""Near misses: every comparison the spec implies has probes, the doc says what they are, and they are
what they claim (never a value a correct server must take as the original, nor one it must not).

docs/near-misses.md is generated; `RUNS_UPDATE_SNAPSHOTS=1 pytest tests/test_near_misses.py` rewrites it.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import pytest
from support.tooling import keep_generated

from conformance.comparisons import PROBES, implied_comparisons, probe_values, probes_of, refused_values
from conformance.near_miss_doc import DOC, render
from conformance.near_misses import (
    malformed_credentials,
    matching_tag_lists,
    near_entity_tags,
    near_tokens,
    scheme_cases,
)
from conformance.registry import registered_checks
from conformance.spec import load_spec, parameter_pointer, schema_validator
from reference_impl.etags import EtagPolicy

ROOT = Path(__file__).resolve().parent.parent
TAG = 'W/"sha256:5f0c8a4b0c0d5e8b2f1d1c4b2a9e8f7d6c5b4a39281706f5e4d3c2b1a0918273"'


def test_every_comparison_the_spec_implies_has_probes() -> None:
    keys = {comparison.key for comparison in implied_comparisons()}
    # The ones the issue names must be among them, or the derivation lost its way.
    assert {"header Authorization", "header If-None-Match", "path runId", "query clientId", "body clientId"} <= keys
    unprobed = sorted(keys - set(probes_of()))
    assert not unprobed, f"comparisons the spec implies that no check sends near misses of: {unprobed}"
    assert {probe.comparison for probe in PROBES} <= keys, "a probe set names a comparison the spec does not imply"


def test_a_parameter_added_to_the_spec_is_a_comparison_without_probes() -> None:
    spec: dict[str, Any] = copy.deepcopy(load_spec())
    spec["paths"]["/api/v1/runs"]["get"]["parameters"].append(
        {"name": "label", "in": "query", "schema": {"type": "string"}}
    )
    spec["paths"]["/api/v1/runs"]["get"]["parameters"].append(
        {"name": "offset", "in": "query", "schema": {"type": "integer"}}
    )
    keys = {comparison.key for comparison in implied_comparisons(spec)}
    assert "query label" in keys and "query label" not in probes_of()
    assert "query offset" not in keys  # a number: its near misses are its bounds


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.comparison}-{p.requirement}-{p.generate or 'by-hand'}")
def test_each_probe_set_is_sent_by_its_check_on_its_requirement(probe: Any) -> None:
    module, _, function = probe.sender.partition(":")
    checks = [c for c in registered_checks() if c.func.__module__ == f"conformance.checks.{module}"]
    found = [c for c in checks if c.name == function]
    assert found, f"{probe.sender}: no such check"
    assert probe.requirement in found[0].requirements, (probe.sender, found[0].requirements)
    check_module = inspect.getmodule(found[0].func)
    assert check_module is not None
    source = inspect.getsource(check_module)
    if probe.generate:
        # The doc shows these values only if the check really draws its near misses from this function.
        assert f"{probe.generate}(" in source, f"{probe.sender}'s module does not call near_misses.{probe.generate}"
    else:
        assert probe.by_hand, probe


def test_no_near_miss_is_listed_by_hand() -> None:
    # Every probe is generated (from the spec or the value the check holds); one that truly cannot be
    # would say why in its by_hand.
    assert [probe for probe in PROBES if probe.by_hand or not probe.generate] == []


def test_a_status_added_to_the_spec_enum_gets_its_probes() -> None:
    spec: dict[str, Any] = copy.deepcopy(load_spec())
    spec["components"]["schemas"]["RunStatus"]["enum"].append("paused")
    made = refused_values("listRuns", "query", "status", document=spec)
    added = {label: value for label, value in made.items() if label.startswith("'paused'")}
    assert {"PAUSED", "Paused", "pause", "pausedx", " paused", "paused "} <= set(added.values()), added
    assert "paused" not in made.values() and not set(spec["components"]["schemas"]["RunStatus"]["enum"]) & set(
        made.values()
    )
    # And through the comparison, as the doc and the check see it: no code names the statuses.
    status = next(c for c in implied_comparisons(spec) if c.key == "query status")
    probe = next(p for p in probes_of()["query status"] if p.requirement == "PAGE-010")
    assert set(added.values()) <= set(probe_values(probe, status, spec).values())


@pytest.mark.parametrize("name", ["status", "clientId"])
def test_every_refused_value_is_invalid_by_the_spec_validator(name: str) -> None:
    # Never cry wolf: a value sent for a 400 must be one the spec's own schema refuses.
    pointer = parameter_pointer("listRuns", "query", name)
    assert pointer is not None
    validator = schema_validator(pointer)
    made = refused_values("listRuns", "query", name, None if name == "status" else "rc-badfilter-1a2b3c")
    assert len(made) >= (60 if name == "status" else 5), made
    for label, value in made.items():
        assert not validator.is_valid(value), (label, value)


def test_the_scheme_varies_in_case_the_token_never() -> None:
    token = "rc-Token-1"
    # The scheme's case forms: the same scheme (RFC 9110 §11.1), none the spelling the client sends.
    assert set(scheme_cases("Bearer").values()) == {"bearer", "BEARER", "bEARER"}
    # The token's near misses: each another token, sent under the scheme exactly as the client spells it.
    for label, value in near_tokens(token).items():
        assert value != token and value.lower() != "bearer", label
    for label, raw in malformed_credentials(token).items():
        assert raw.startswith(b"Bearer"), label


def test_every_list_form_matches_and_every_near_tag_does_not_by_the_reference_parser() -> None:
    # The reference server is RFC 9110's reading: a probe it disagrees with would cry wolf.
    policy = EtagPolicy()
    for label, value in matching_tag_lists(TAG).items():
        assert policy.none_match(value, TAG), label
    for label, raw in near_entity_tags(TAG).items():
        assert not policy.none_match(raw.decode("latin-1"), TAG), label


def test_the_doc_shows_every_comparison_and_its_probes() -> None:
    page = render()
    for comparison in implied_comparisons():
        assert f"## {comparison.key}" in page
        for probe in probes_of()[comparison.key]:
            for label in probe_values(probe, comparison):
                assert f"| {label} |" in page, (comparison.key, label)
    assert "**No probes**" not in page


def test_the_near_miss_doc_is_generated_from_the_code() -> None:
    keep_generated(DOC, render(), "code", "tests/test_near_misses.py")
