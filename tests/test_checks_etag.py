"""The definition and ETag checks: each passes the reference server and fails on the bug it targets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from support.check_runs import assert_caught, assert_passed, run_named_check
from support.servers import serve
from support.tokens import TOKENS

from conformance.checks.etag import parse_entity_tag
from conformance.context import CheckContext
from conformance.fixtures import Fixtures
from conformance.near_misses import resembling_run_ids
from conformance.outcomes import Outcome
from conformance.registry import registered_checks
from conformance.session import Session
from conformance.strategies import run_start_requests
from reference_impl.app import create_app
from reference_impl.definitions import definition_hash as definition_hash_of
from reference_impl.serve import serve_in_thread
from reference_impl.store import RUN_ID_PATTERN, RunStore

MODULE = "conformance.checks.etag"
CHECKS = sorted(c.name for c in registered_checks() if c.func.__module__ == MODULE)

# fault -> (the check that must catch it, the requirements it must report failed)
FAULT_CASES: dict[str, tuple[str, set[str]]] = {
    "definition_with_defaults": ("definition_is_the_submitted_workflow", {"ETAG-001"}),
    "definition_hash_of_name_only": ("definition_hash_depends_on_content", {"ETAG-002"}),
    "definition_hash_not_rfc8785": ("definition_hash_is_rfc8785_sha256", {"ETAG-003"}),
    "strong_etag": ("etag_is_the_weak_definition_hash", {"ETAG-004"}),
    "unstable_etag": ("etag_is_the_weak_definition_hash", {"ETAG-004"}),
    "etag_not_from_hash": ("etag_is_the_weak_definition_hash", {"ETAG-004"}),
    "if_none_match_ignored": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "if_none_match_strong_comparison": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "if_none_match_no_lists": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "not_modified_without_etag": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "if_none_match_case_insensitive": ("if_none_match_is_evaluated", {"ETAG-006"}),
    # List syntax (RFC 9110 §5.6.1) parsed loosely: tests/support/faults_nearmiss.py.
    "etag-inm-only-last-tag": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "etag-inm-tabs-kept": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "etag-inm-split-on-comma-space": ("if_none_match_is_evaluated", {"ETAG-005"}),
    "not_modified_before_auth": ("errors_win_over_not_modified", {"ETAG-007"}),
    "not_modified_for_unknown_run": ("errors_win_over_not_modified", {"ETAG-007"}),
}
# The cancel path of ETAG-001 has its own bug: a definition served through a model with defaults
# shows there as well as in the property check.
EXTRA_CASES = [("definition_with_defaults", "definition_survives_cancel", {"ETAG-001"})]


@pytest.mark.parametrize("name", CHECKS)
def test_check_passes_the_reference_server(name: str, reference_url: str, make_session: Callable[..., Session]) -> None:
    assert_passed(run_named_check(name, make_session(reference_url)))


@pytest.mark.parametrize(
    ("fault", "name", "targets"),
    [(fault, name, targets) for fault, (name, targets) in sorted(FAULT_CASES.items())] + EXTRA_CASES,
)
def test_check_fails_on_the_bug_it_targets(
    fault: str, name: str, targets: set[str], make_session: Callable[..., Session]
) -> None:
    with serve(fault) as url:
        run = run_named_check(name, make_session(url))
    assert_caught(run, targets, cites_id=False)


def test_every_check_and_requirement_is_seen_failing() -> None:
    checks = {name for name, _ in FAULT_CASES.values()} | {name for _, name, _ in EXTRA_CASES}
    assert checks == set(CHECKS)
    targeted = set().union(*(targets for _, targets in FAULT_CASES.values()))
    assert targeted == {f"ETAG-{n:03d}" for n in range(1, 8)}


def test_the_rfc8785_check_does_not_fail_a_server_that_merely_hashes_differently_for_etag_002(
    make_session: Callable[..., Session],
) -> None:
    """A content-only hash that is not RFC 8785 breaks the SHOULD (ETAG-003), not the MUST (ETAG-002)."""
    with serve("definition_hash_not_rfc8785") as url:
        assert_passed(run_named_check("definition_hash_depends_on_content", make_session(url)))


def test_no_false_alarm_on_rewritten_responses(make_session: Callable[..., Session]) -> None:
    """Keys reordered, whitespace and escapes changed, extra fields, extra 304 headers: all within the contract."""
    with serve("rewritten_responses") as url:
        session = make_session(url)
        for name in CHECKS:
            assert_passed(run_named_check(name, session))


def test_a_check_needing_a_missing_fixture_is_skipped_with_that_reason(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    quick_only = Fixtures({"quick": Fixtures.default().workflow("quick")}, "my-fixtures.yaml")
    session = make_session(reference_url, fixtures=quick_only)
    run = run_named_check("definition_survives_cancel", session)
    assert set(run.named_statuses().values()) == {Outcome.SKIPPED}
    assert "'long'" in run.message and "my-fixtures.yaml" in run.message and "--fixtures" in run.message
    assert_passed(run_named_check("etag_is_the_weak_definition_hash", session))


def test_fixtures_given_by_the_user_drive_the_checks(reference_url: str, make_session: Callable[..., Session]) -> None:
    """A fixtures file replaces the defaults: the generated workflows keep its steps and params."""
    own = Fixtures(
        {"quick": {"name": "mine", "steps": [{"id": "pause", "action": "sleep", "params": {"seconds": 0}}]}},
        "mine.yaml",
    )
    session = make_session(reference_url, fixtures=own)
    assert_passed(run_named_check("definition_is_the_submitted_workflow", session))

    @settings(max_examples=30, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=run_start_requests(own.workflow("quick")))
    def keeps_the_fixture_steps(body: dict[str, Any]) -> None:
        [step] = body["workflow"]["steps"]
        assert step["action"] == "sleep" and step["params"] == {"seconds": 0}

    keeps_the_fixture_steps()


def test_the_default_fixtures_use_the_reference_actions() -> None:
    actions = {name: {step["action"] for step in Fixtures.default().workflow(name)["steps"]} for name in Fixtures.NAMES}
    assert actions == {"quick": {"noop"}, "long": {"sleep"}, "failing": {"fail"}}


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ('W/"sha256:ab"', (True, "sha256:ab")),
        ('"sha256:ab"', (False, "sha256:ab")),
        ('W/""', (True, "")),
        ('w/"x"', None),  # W/ is case-sensitive
        ("W/x", None),
        ('"a"b"', None),  # DQUOTE is not an etagc
        ('W/"a b"', None),  # nor is a space
        (None, None),
    ],
)
def test_entity_tags_are_parsed_with_the_rfc9110_grammar(value: str | None, parsed: tuple[bool, str] | None) -> None:
    assert parse_entity_tag(value) == parsed


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["default"])
def test_every_idempotency_and_etag_check_passes_under_a_bigger_profile(
    profile: str, reference_url: str, make_session: Callable[..., Session]
) -> None:
    """`thorough` passes too (about 3 minutes, run by hand); `default` is the one users get."""
    session = make_session(reference_url, profile=profile)
    for check in registered_checks():
        if check.func.__module__ in (MODULE, "conformance.checks.idempotency", "conformance.checks.idempotency_keys"):
            assert_passed(run_named_check(check.name, session))


def test_unknown_run_ids_keep_the_servers_shape() -> None:
    ulid = "run_01JDQ4Y7V9K2M3N4P5Q6R7S8T9"
    same_length, longer = resembling_run_ids(ulid)
    assert re.fullmatch(RUN_ID_PATTERN, same_length) and same_length[:-12] == ulid[:-12]
    assert longer.startswith(ulid) and len(longer) == len(ulid) + 8
    uuid4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert uuid4.fullmatch(resembling_run_ids("3f2b8c1e-9d4a-4e7b-a1c2-0d9e8f7a6b5c")[0])
    assert all(candidate.isdigit() for candidate in resembling_run_ids("57"))


def test_unknown_run_ids_are_confirmed_absent_on_a_server_with_sequential_ids(
    make_session: Callable[..., Session],
) -> None:
    """With IDs "1", "2", ... a changed character names another run: such candidates are dropped."""
    with serve("sequential-run-ids") as url:
        session = make_session(url)
        ctx = CheckContext(session, "unknown-ids")
        started = {ctx.start_run().run_id for _ in range(12)}
        for like in ("1", "7", "11"):
            unknown = ctx.unknown_run_ids(like=like)
            assert unknown and not started & set(unknown), (like, unknown)
            assert all(ctx.get_run(run_id).status_code == 404 for run_id in unknown)
            assert any(run_id.isdigit() for run_id in unknown), unknown  # a well-formed one is kept
        assert_passed(run_named_check("errors_win_over_not_modified", session))


class _StepOrderBlindHashStore(RunStore):
    """Hashes the workflow with its steps sorted by id: a reordered workflow gets the same hash."""

    def start_run(self, client_id: str, workflow: Any, inputs: Any, definition_hash: str, claim: Any = None) -> Any:
        steps = sorted(workflow["steps"], key=lambda step: step["id"])
        return super().start_run(client_id, workflow, inputs, definition_hash_of({**workflow, "steps": steps}), claim)


class _StepIdBlindHashStore(RunStore):
    """Hashes the workflow with each step's id left out (dependsOn kept)."""

    def start_run(self, client_id: str, workflow: Any, inputs: Any, definition_hash: str, claim: Any = None) -> Any:
        steps = [{k: v for k, v in step.items() if k != "id"} for step in workflow["steps"]]
        return super().start_run(client_id, workflow, inputs, definition_hash_of({**workflow, "steps": steps}), claim)


@pytest.mark.parametrize("store", [_StepOrderBlindHashStore, _StepIdBlindHashStore], ids=lambda s: s.__name__)
def test_a_hash_blind_to_part_of_the_steps_is_caught(
    store: type[RunStore], make_session: Callable[..., Session]
) -> None:
    """Params are no longer varied (a server may validate them), but step ids and order are."""
    with serve_in_thread(create_app(list(TOKENS), store=store())) as url:
        run = run_named_check("definition_hash_depends_on_content", make_session(url))
    assert_caught(run, {"ETAG-002"}, cites_id=False)
