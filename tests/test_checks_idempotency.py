"""The idempotency checks: each passes the reference server and fails on the bug it targets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send
from support.check_runs import assert_caught, assert_passed, run_named_check
from support.servers import build, serve
from support.tokens import TOKENS

from conformance.checks.idempotency import _overlapped
from conformance.fixtures import Fixtures
from conformance.meaning import json_equal
from conformance.outcomes import Outcome
from conformance.registry import registered_checks
from conformance.session import Session
from conformance.spec import schema_validator
from conformance.strategies import (
    changed_workflows,
    compact_bytes,
    different_request,
    is_ijson_character,
    reordered_bytes,
    reserialisations,
    run_start_requests,
    spaced_bytes,
)
from reference_impl.app import create_app
from reference_impl.idempotency import IdempotencyPolicy
from reference_impl.serve import serve_in_thread

MODULES = ("conformance.checks.idempotency", "conformance.checks.idempotency_keys")
CHECKS = sorted(c.name for c in registered_checks() if c.func.__module__ in MODULES)

# fault -> (the check that must catch it, the requirements it must report failed)
FAULT_CASES: dict[str, tuple[str, set[str]]] = {
    "key_ignored": ("same_key_same_body_replays", {"IDEM-001", "IDEM-002"}),
    "any_body_replays": ("same_key_other_body_conflicts", {"IDEM-003"}),
    "fingerprint_ignores_inputs": ("same_key_other_body_conflicts", {"IDEM-003"}),
    "run_created_on_conflict": ("same_key_other_body_conflicts", {"IDEM-004"}),
    "bodies_compared_as_serialised": ("json_equal_bodies_are_the_same", {"IDEM-005"}),
    "racy_key_cache": ("concurrent_same_key_makes_one_run", {"IDEM-006"}),
    "keys_shared_across_tokens": ("keys_are_scoped_to_the_credential", {"IDEM-007"}),
    "invalid_keys_accepted": ("invalid_keys_are_rejected", {"IDEM-008"}),
    "rejected_requests_burn_keys": ("rejected_requests_keep_their_key", {"IDEM-009"}),
    "keyless_requests_share_a_key": ("no_key_means_a_new_run", {"IDEM-010"}),
}


@pytest.mark.parametrize("name", CHECKS)
def test_check_passes_the_reference_server(name: str, reference_url: str, make_session: Callable[..., Session]) -> None:
    assert_passed(run_named_check(name, make_session(reference_url)))


@pytest.mark.parametrize("fault", sorted(FAULT_CASES))
def test_check_fails_on_the_bug_it_targets(fault: str, make_session: Callable[..., Session]) -> None:
    name, targets = FAULT_CASES[fault]
    with serve(fault) as url:
        run = run_named_check(name, make_session(url))
    assert_caught(run, targets, cites_id=False)


def test_a_property_failure_carries_its_falsifying_example(make_session: Callable[..., Session]) -> None:
    with serve("any_body_replays") as url:
        run = run_named_check("same_key_other_body_conflicts", make_session(url))
    example = run.evidence["IDEM-003"][0].falsifying_example
    # Hypothesis's report ("Failing test case: conflict(...)") and the bodies themselves, as JSON.
    assert example and "conflict(" in example and 'pair = [{"clientId"' in example, example


# Faults of the self-check's catalog (tests/support/faults.py) a check of this module targets.
SELFCHECK_CASES: dict[str, tuple[str, set[str]]] = {
    "idem-keys-case-folded": ("keys_are_compared_exactly", {"IDEM-011"}),
    "idem-keys-unquoted": ("keys_are_compared_exactly", {"IDEM-011"}),
    "idem-invalid-keys-accepted": ("keys_are_compared_exactly", {"IDEM-008"}),
    "idem-key-cut-to-64": ("keys_are_compared_exactly", {"IDEM-011"}),  # only two keys of 255 show it
    "idem-key-max-254": ("invalid_keys_are_rejected", {"IDEM-008"}),
}


@pytest.mark.parametrize("fault", sorted(SELFCHECK_CASES))
def test_check_fails_on_the_self_check_fault_it_targets(fault: str, make_session: Callable[..., Session]) -> None:
    name, targets = SELFCHECK_CASES[fault]
    with serve(fault) as url:
        run = run_named_check(name, make_session(url))
    assert_caught(run, targets, cites_id=False)


@pytest.mark.parametrize(
    ("spans", "overlapped"),
    [
        ([], False),
        ([(0.0, 1.0)], False),
        ([(0.0, 1.0), (1.0, 2.0), (2.5, 3.0)], False),  # one after another: IDEM-006's premise did not happen
        ([(0.0, 2.0), (1.0, 3.0)], True),
        ([(6.0, 7.0), (0.0, 5.0), (1.0, 2.0)], True),  # nested, and out of order
    ],
)
def test_requests_overlap_when_one_starts_before_another_ends(
    spans: list[tuple[float, float]], overlapped: bool
) -> None:
    assert _overlapped(spans) is overlapped


def test_every_check_and_requirement_is_seen_failing() -> None:
    cases = [*FAULT_CASES.values(), *SELFCHECK_CASES.values()]
    checks = {name for name, _ in cases}
    assert checks == set(CHECKS)
    targeted = set().union(*(targets for _, targets in cases))
    assert targeted == {f"IDEM-{n:03d}" for n in range(1, 12)}


def test_no_false_alarm_on_rewritten_responses(make_session: Callable[..., Session]) -> None:
    """Reordered keys, extra fields, other whitespace and escapes in responses: all within the contract."""
    with serve("rewritten_responses") as url:
        session = make_session(url)
        for name in CHECKS:
            assert_passed(run_named_check(name, session))


def test_no_false_alarm_on_in_flight_conflicts(make_session: Callable[..., Session]) -> None:
    """A server that answers 409 idempotency-key-in-flight during a race keeps IDEM-006."""
    app = build("in_flight_conflicts")
    with serve(app) as url:
        session = make_session(url)
        for name in ("concurrent_same_key_makes_one_run", "same_key_same_body_replays"):
            assert_passed(run_named_check(name, session))
    assert app.state.api.__dict__.get("conflicts", 0) > 0  # the race really met the in-flight answer


def test_checks_skip_with_a_reason_without_a_second_token(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    run = run_named_check("keys_are_scoped_to_the_credential", make_session(reference_url, other_token=None))
    assert set(run.named_statuses().values()) == {Outcome.SKIPPED}
    assert "--other-token" in run.message


QUICK = Fixtures.default().workflow("quick")
BODIES = run_start_requests(QUICK)


@settings(max_examples=60, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_generated_bodies_are_valid_run_start_requests(body: dict[str, Any]) -> None:
    assert list(schema_validator("/components/schemas/RunStartRequest").iter_errors(body)) == []
    ids = [step["id"] for step in body["workflow"]["steps"]]
    assert len(set(ids)) == len(ids)
    assert all(set(step.get("dependsOn", [])) <= set(ids) for step in body["workflow"]["steps"])
    assert sorted(step["action"] for step in body["workflow"]["steps"]) == ["noop", "noop"]


@settings(max_examples=60, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=BODIES.flatmap(lambda b: st.tuples(st.just(b), reserialisations(b))))
def test_re_serialisations_are_json_equal(case: tuple[dict[str, Any], bytes]) -> None:
    body, raw = case
    for variant in (raw, reordered_bytes(body), spaced_bytes(body)):
        assert json_equal(json.loads(variant), body)
    assert reordered_bytes(body) != compact_bytes(body)  # the body always has two keys to swap


@settings(max_examples=30, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=BODIES.flatmap(lambda b: st.tuples(st.just(b), different_request(b))))
def test_different_requests_are_not_json_equal_and_keep_the_client(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    body, changed = case
    assert not json_equal(body, changed)
    assert changed["clientId"] == body["clientId"]
    assert list(schema_validator("/components/schemas/RunStartRequest").iter_errors(changed)) == []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _step_contents(workflow: dict[str, Any]) -> list[str]:
    """What a step is apart from its id and position: its action and params, as JSON."""
    return sorted(json.dumps([step["action"], step.get("params")], sort_keys=True) for step in workflow["steps"])


LONG = Fixtures.default().workflow("long")


@settings(max_examples=80, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES | run_start_requests(LONG))
def test_generated_bodies_are_ones_every_correct_server_must_accept(body: dict[str, Any]) -> None:
    """I-JSON strings without NUL (a server may refuse the rest), and the fixture's steps with their
    params exactly as the fixture has them (a server may check params per action)."""
    assert all(is_ijson_character(ord(char)) for text in _strings(body) for char in text)
    fixture = QUICK if len(body["workflow"]["steps"]) == 2 else LONG
    assert _step_contents(body["workflow"]) == _step_contents(fixture)


@settings(max_examples=60, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=BODIES.flatmap(lambda b: st.tuples(st.just(b), different_request(b))))
def test_different_requests_never_touch_params(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    body, changed = case
    assert _step_contents(changed["workflow"]) == _step_contents(body["workflow"])


@settings(max_examples=30, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_changed_workflows_differ_in_name_version_step_ids_and_order_only(body: dict[str, Any]) -> None:
    changes = changed_workflows(body["workflow"])
    assert [label.split()[0] for label, _ in changes] == ["another", "another", "step", "the"]
    for label, workflow in changes:
        assert not json_equal(workflow, body["workflow"]), label
        assert list(schema_validator("/components/schemas/Workflow").iter_errors(workflow)) == [], label
        assert _step_contents(workflow) == _step_contents(body["workflow"]), label
        ids = {step["id"] for step in workflow["steps"]}
        assert all(set(step.get("dependsOn", [])) <= ids for step in workflow["steps"]), label


class _StepOrderBlindFingerprint(IdempotencyPolicy):
    """Fingerprints the body with the steps sorted by id: a reordered workflow looks the same."""

    def fingerprint(self, body: Any) -> str:
        steps = sorted(body["workflow"]["steps"], key=lambda step: step["id"])
        return super().fingerprint({**body, "workflow": {**body["workflow"], "steps": steps}})


class _StepIdBlindFingerprint(IdempotencyPolicy):
    """Fingerprints the body with each step's id left out (dependsOn kept)."""

    def fingerprint(self, body: Any) -> str:
        steps = [{k: v for k, v in step.items() if k != "id"} for step in body["workflow"]["steps"]]
        return super().fingerprint({**body, "workflow": {**body["workflow"], "steps": steps}})


@pytest.mark.parametrize("policy", [_StepOrderBlindFingerprint, _StepIdBlindFingerprint], ids=lambda p: p.__name__)
def test_a_fingerprint_blind_to_part_of_the_steps_is_caught(
    policy: type[IdempotencyPolicy], make_session: Callable[..., Session]
) -> None:
    """Params are no longer varied (a server may validate them), but step ids and order are."""
    with serve_in_thread(create_app(TOKENS, idempotency=policy())) as url:
        run = run_named_check("same_key_other_body_conflicts", make_session(url))
    assert_caught(run, {"IDEM-003"}, cites_id=False)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"a": 1, "b": [True]}, {"b": [True], "a": 1.0}, True),
        (True, 1, False),
        (0, False, False),
        (None, {}, False),
        ([1, 2], [2, 1], False),
        ("é", "e\u0301", False),
    ],
)
def test_json_equality(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal


class _DropsTextPlainStarts:
    """Drops the connection mid-answer on a startRun sent as text/plain: an answer that never completes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        if scope["type"] == "http" and scope["method"] == "POST" and headers.get(b"content-type") == b"text/plain":
            await send({"type": "http.response.start", "status": 415, "headers": [(b"content-length", b"100")]})
            raise ConnectionAbortedError("dropped mid-answer")
        await self.app(scope, receive, send)


def test_a_dropped_connection_is_no_rejection(make_session: Callable[..., Session]) -> None:
    # Before issue 18 the check took the dropped exchange for a 415 and passed IDEM-009 and ERR-001.
    with serve_in_thread(_DropsTextPlainStarts(create_app(list(TOKENS)))) as url:
        run = run_named_check("rejected_requests_keep_their_key", make_session(url))
    assert run.outcome("ERR-001") is Outcome.FAILED, run.outcomes
    assert "Content-Type text/plain got no answer" in run.evidence["ERR-001"][0].message
    assert run.outcome("IDEM-009") is Outcome.SKIPPED, run.outcomes
    assert run.outcomes["IDEM-009"].reason.startswith("no answer to judge"), run.outcomes
