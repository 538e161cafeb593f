"""The model-based check: passes the reference server, catches bugs no single step shows, and
reports the scenario that found them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from support.check_runs import assert_caught, assert_passed, run_named_check
from support.faults_cancel_page import CORRECT_VARIANTS
from support.servers import serve
from support.tokens import TOKENS

from conformance.checks.model import MODEL_IDS
from conformance.outcomes import Outcome
from conformance.profiles import PROFILES
from conformance.registry import registered_checks
from conformance.session import Session
from reference_impl.app import create_app

NAME = "runs_state_machine"
FAULT_TIMEOUT = 2.0

# fault -> the requirements the machine must report failed (quick profile, derandomized)
FAULT_CASES: dict[str, set[str]] = {
    "boundary_dropped": {"PAGE-006"},
    "boundary_repeated": {"PAGE-006"},
    "oldest_first": {"PAGE-001"},
    "filters_lost_after_first_page": {"PAGE-009"},
    "failed_without_finished_at": {"LIFE-003"},
    "cancel_of_unknown_accepted": {"CANCEL-001"},
}


def test_the_machine_names_the_requirements_it_asserts() -> None:
    (check,) = [c for c in registered_checks() if c.name == NAME]
    assert set(check.requirements) == set(MODEL_IDS)
    assert set().union(*FAULT_CASES.values()) <= set(MODEL_IDS)


def test_the_machine_passes_the_reference_server(reference_url: str, make_session: Callable[..., Session]) -> None:
    assert_passed(run_named_check(NAME, make_session(reference_url)))


@pytest.mark.parametrize("fault", sorted(FAULT_CASES))
def test_the_machine_catches_the_bug(fault: str, make_session: Callable[..., Session]) -> None:
    with serve(fault) as url:
        run = run_named_check(NAME, make_session(url, timeout=FAULT_TIMEOUT))
    assert_caught(run, FAULT_CASES[fault])


def test_a_failure_carries_the_scenario_that_found_it(make_session: Callable[..., Session]) -> None:
    with serve("boundary_dropped") as url:
        run = run_named_check(NAME, make_session(url))
    (evidence,) = run.evidence["PAGE-006"]
    # The steps Hypothesis ran, readable as a script: the runs started, then the walk that lost one.
    example = evidence.falsifying_example or ""
    assert "state = RunsMachine()" in example and "state.listing_is_exact()" in example, evidence


@pytest.mark.parametrize("variant", sorted(CORRECT_VARIANTS))
def test_the_machine_passes_a_correct_variant(variant: str, make_session: Callable[..., Session]) -> None:
    with serve(variant) as url:
        assert_passed(run_named_check(NAME, make_session(url)))


def test_side_by_side_groups_run_more_than_the_simplest_scenario(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    # Far from the server (fan_out > 1) the scenarios run in groups; each must still draw scenarios of
    # its own, not only Hypothesis's simplest one, so the model starts as many runs as one group would.
    started = []
    for fan_out in (1, 3):
        session = make_session(reference_url)
        session.fan_out = fan_out
        run_named_check(NAME, session)
        started.append(len(session.started_runs))
    assert started[1] >= started[0], started


def test_the_machine_is_deterministic_under_derandomize(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    # The same seed runs the same scenarios: the same number of requests, run after run.
    counts = []
    for _ in range(2):
        session = make_session(reference_url)
        run_named_check(NAME, session)
        counts.append(len(session.started_runs))
    assert counts[0] == counts[1], counts


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["default", "thorough"])
def test_every_check_passes_the_reference_server_under_every_profile(
    profile: str, reference_url: str, make_session: Callable[..., Session]
) -> None:
    # The quick profile is covered by each module's test; here the larger budgets, over all four modules.
    modules = {f"conformance.checks.{m}" for m in ("cancel", "lifecycle", "pagination", "pagination_cursors", "model")}
    session = make_session(reference_url, profile=PROFILES[profile])
    for check in registered_checks():
        if check.func.__module__ in modules:
            assert_passed(run_named_check(check.name, session))


def test_starts_are_booked_under_the_rules_they_are_about(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    # A keyless start making a new run is IDEM-010, never PAGE-006 (which is about walks); a fresh
    # key making a new run is IDEM-011, never IDEM-001 (which is about replays).
    run = run_named_check(NAME, make_session(reference_url))
    assert run.outcomes["IDEM-010"].outcome is Outcome.PASSED and run.outcomes["IDEM-010"].evaluations > 0
    assert run.outcomes["IDEM-011"].outcome is Outcome.PASSED and run.outcomes["IDEM-011"].evaluations > 0


def test_runs_created_in_one_instant_are_no_instance_of_newest_first(make_session: Callable[..., Session]) -> None:
    # A clock that never moves: every run shares one createdAt, so no order of them can break PAGE-001.
    frozen = datetime(2026, 1, 1, tzinfo=UTC)
    with serve(create_app(list(TOKENS), clock=lambda: frozen)) as url:
        run = run_named_check(NAME, make_session(url))
    assert run.outcome("PAGE-001") is not Outcome.PASSED, run.outcomes.get("PAGE-001")
    assert run.outcomes["PAGE-006"].outcome is Outcome.PASSED, run.outcomes


@pytest.mark.parametrize("fan_out", [1, 3])
def test_every_failing_group_is_recorded(fan_out: int, make_session: Callable[..., Session]) -> None:
    # Nine scenarios in three groups (one after another, or side by side), each group losing a run at
    # a page edge: one finding of the defect, counting every group that met it, not only the first.
    nine = dataclasses.replace(PROFILES["quick"], stateful_examples=9)
    # Each group runs Hypothesis on a thread of its own: run_check makes their ASTs take turns (issue
    # 18 point 1; without that guard 3 of 5 runs broke with "AST constructor recursion depth mismatch").
    with serve("boundary_dropped") as url:
        session = make_session(url, profile=nine)
        session.fan_out = fan_out
        run = run_named_check(NAME, session)
    (evidence,) = run.evidence["PAGE-006"]
    assert evidence.count == 3 and "(and 2 more examples the same way)" in evidence.message, evidence
    assert "state = RunsMachine()" in (evidence.falsifying_example or ""), evidence
