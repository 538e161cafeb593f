"""Running a property (conformance/properties.py): every failing example is recorded, one finding per
fingerprint, at every fan-out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from support.check_runs import assert_caught, assert_passed, run_named_check
from support.faults_stall import replays_broken_by_turns
from support.servers import serve

from conformance.profiles import PROFILES
from conformance.session import Session

CHECK = "same_key_same_body_replays"  # IDEM-001 and IDEM-002, one key per example


@pytest.mark.parametrize("fan_out", [1, 4])
def test_two_defects_in_two_examples_are_both_reported(fan_out: int, make_session: Callable[..., Session]) -> None:
    # Odd keys break IDEM-001, even keys IDEM-002: the first failing example shows only one of them.
    with serve(replays_broken_by_turns()) as url:
        session = make_session(url)
        session.fan_out = fan_out
        run = run_named_check(CHECK, session)
    assert_caught(run, {"IDEM-001", "IDEM-002"}, cites_id=False)
    for rid in ("IDEM-001", "IDEM-002"):
        prints = [item.fingerprint for item in run.evidence[rid]]
        assert len(prints) == len(set(prints)), f"{rid}: one finding per fingerprint, got {prints}"
    # quick draws 5 examples (keys 1..5): keys 1, 3 and 5 break IDEM-001 at the retry, 2 and 4 IDEM-002.
    retry = next(item for item in run.evidence["IDEM-001"] if "a retry of the same body" in item.message)
    assert retry.count == 3 and "(and 2 more examples the same way)" in retry.message, retry
    (listed,) = run.evidence["IDEM-002"]
    assert listed.count == 2, listed
    assert listed.falsifying_example and "body = " in listed.falsifying_example, listed


@pytest.mark.parametrize("fan_out", [1, 4])
def test_the_reference_server_passes_at_every_fan_out(
    fan_out: int, reference_url: str, make_session: Callable[..., Session]
) -> None:
    session = make_session(reference_url)
    session.fan_out = fan_out
    assert_passed(run_named_check(CHECK, session))


def test_under_shrinking_every_failing_call_is_recorded_beside_the_shrunk_one(
    make_session: Callable[..., Session],
) -> None:
    # `thorough` lets Hypothesis run the examples and shrink the first failure; the other defect,
    # met by another failing call on the way, is recorded too. A thorough with quick's budget: shrinking is the point.
    small_thorough = dataclasses.replace(PROFILES["quick"], name="thorough")
    with serve(replays_broken_by_turns()) as url:
        run = run_named_check(CHECK, make_session(url, profile=small_thorough))
    assert_caught(run, {"IDEM-001", "IDEM-002"}, cites_id=False)
    shown = [item.falsifying_example or "" for rid in ("IDEM-001", "IDEM-002") for item in run.evidence[rid]]
    assert any("Falsifying example" in text or "Failing test case" in text for text in shown), shown
