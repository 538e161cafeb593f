"""The cancel checks: each passes the reference server and fails on the bug it targets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.check_module_contract import CheckModuleContract
from support.check_runs import assert_passed, explain, open_session, run_named_check
from support.faults_evidence import cancel_requested_at_never_set
from support.servers import serve, variant
from support.tokens import TOKEN, TOKENS

from conformance.fixtures import Fixtures
from conformance.outcomes import Outcome
from conformance.registry import registered_checks
from conformance.session import Session

MODULE = "conformance.checks.cancel"
CHECKS = sorted(c.name for c in registered_checks() if c.func.__module__ == MODULE)

# (fault, the check that must catch it, the requirements it must report failed)
FAULT_CASES: list[tuple[str, str, set[str]]] = [
    ("cancel_of_unknown_accepted", "cancel_unknown_run", {"CANCEL-001"}),
    ("queued_cancel_forgotten", "cancel_new_run", {"CANCEL-002", "CANCEL-003"}),
    ("queued_cancel_forgotten", "cancel_racing_finish", {"CANCEL-002"}),
    ("cancel_ignored", "cancel_new_run", {"CANCEL-002", "CANCEL-003"}),
    ("cancel_ignored", "cancel_running_run", {"CANCEL-002", "CANCEL-003"}),
    ("cancel_never_stops", "cancel_running_run", {"CANCEL-003"}),
    ("cancel_answers_old_status", "cancel_running_run", {"CANCEL-002"}),
    ("cancel_flips_terminal", "cancel_succeeded_run", {"CANCEL-004", "LIFE-002"}),
    ("cancel_flips_terminal", "cancel_failed_run", {"CANCEL-004", "LIFE-002"}),
    ("cancel_restamps", "cancel_repeatedly", {"CANCEL-005"}),
]


class TestCancelChecks(CheckModuleContract):
    CHECKS = CHECKS
    FAULT_CASES = FAULT_CASES
    FAULT_TIMEOUT = 1.0


def test_a_cancel_of_a_queued_run_is_checked_when_the_server_shows_queued(
    make_session: Callable[..., Session],
) -> None:
    # slow_start keeps runs queued for 0.2 s, so the immediate cancel reaches a queued run, which
    # the reference settles as cancelled at once (never started): the check passes it.
    with serve("slow_start") as url:
        session = make_session(url)
        assert_passed(run_named_check("cancel_new_run", session))
        listing = httpx.get(f"{url}/api/v1/runs", params={"limit": 200}, headers={"Authorization": f"Bearer {TOKEN}"})
    mine = f"{session.client_id}."  # the check's clientIds: session id, the check's tag, its label
    runs = [r for r in listing.json()["items"] if r["clientId"].startswith(mine) and "cancel-new" in r["clientId"]]
    assert [(r["status"], r["startedAt"]) for r in runs] == [("cancelled", None)], runs


def test_checks_without_their_fixture_skip_and_say_so(make_session: Callable[..., Session], tmp_path: Path) -> None:
    path = tmp_path / "fixtures.yaml"
    path.write_text("quick:\n  name: q\n  steps: [{id: a, action: noop}]\n", encoding="utf-8")
    with serve("slow_start") as url:
        session = make_session(url, fixtures=Fixtures.from_file(path))
        for name in ("cancel_new_run", "cancel_running_run", "cancel_repeatedly", "cancel_failed_run"):
            run = run_named_check(name, session)
            assert set(run.named_statuses().values()) == {Outcome.SKIPPED}, explain(run)
            assert "--fixtures" in run.message and str(path) in run.message, run.message
        # The fixture the file does give is used.
        assert_passed(run_named_check("cancel_succeeded_run", session))


@pytest.fixture(scope="module")
def reference_session(reference_url: str) -> Iterator[Session]:
    with open_session(reference_url) as session:
        yield session


def test_a_cancel_request_never_recorded_fails_cancel_005_not_skips_it(
    make_session: Callable[..., Session],
) -> None:
    # Before issue 18 this server passed --select CANCEL-005: the first cancel's runId echo was the
    # one evaluation, then the null cancelRequestedAt made the rest a skip.
    with serve(cancel_requested_at_never_set(TOKENS)) as url:
        run = run_named_check("cancel_repeatedly", make_session(url))
    assert run.outcome("CANCEL-005") is Outcome.FAILED, explain(run)
    assert "cancelRequestedAt null" in run.message, run.message


def test_cancel_002_counts_only_runs_seen_non_terminal(make_session: Callable[..., Session]) -> None:
    # This correct server answers a quick startRun with the run already succeeded: its cancel is
    # a terminal run's (CANCEL-004), no instance of CANCEL-002, which main counted all the same.
    with serve(variant("settled-before-answer").build(TOKENS)) as url:
        run = run_named_check("cancel_racing_finish", make_session(url))
    assert_passed(run)
    assert "CANCEL-002" not in run.outcomes, run.outcomes
    assert run.outcomes["CANCEL-004"].evaluations >= 1
