"""The lifecycle checks: each passes the reference server and fails on the bug it targets.

Also the fixtures rules: the default fixtures drive noop, sleep and fail; a --fixtures file
replaces them; a check whose fixture the file lacks is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.check_module_contract import CheckModuleContract
from support.check_runs import assert_passed, explain, open_session, run_named_check

from conformance.fixtures import Fixtures
from conformance.outcomes import Outcome
from conformance.registry import registered_checks
from conformance.session import Session

MODULE = "conformance.checks.lifecycle"
CHECKS = sorted(c.name for c in registered_checks() if c.func.__module__ == MODULE)

FAULT_CASES: list[tuple[str, str, set[str]]] = [
    ("stale_list_status", "lifecycle_histories", {"LIFE-001"}),
    ("cancel_flips_terminal", "lifecycle_histories", {"LIFE-002"}),
    ("stale_list_status", "quick_run_succeeds", {"LIFE-002"}),
    ("failed_without_finished_at", "failing_run_fails", {"LIFE-003"}),
    ("failed_without_finished_at", "lifecycle_histories", {"LIFE-003"}),
    ("started_at_rewritten", "lifecycle_histories", {"LIFE-004"}),
    ("failures_swallowed", "failing_run_fails", {"LIFE-005"}),
    ("runs_never_start", "quick_run_succeeds", {"LIFE-005"}),
    ("runs_never_start", "failing_run_fails", {"LIFE-005"}),
]


@pytest.fixture(scope="module")
def reference_session(reference_url: str) -> Iterator[Session]:
    with open_session(reference_url) as session:
        yield session


class TestLifecycleChecks(CheckModuleContract):
    CHECKS = CHECKS
    FAULT_CASES = FAULT_CASES
    FAULT_TIMEOUT = 1.0


def test_the_default_fixtures_use_noop_sleep_and_fail() -> None:
    fixtures = Fixtures.default()
    actions = {name: {s["action"] for s in fixtures.workflow(name)["steps"]} for name in Fixtures.NAMES}
    assert actions == {"quick": {"noop"}, "long": {"sleep"}, "failing": {"fail"}}


def test_a_fixtures_file_replaces_the_defaults(
    reference_url: str, make_session: Callable[..., Session], tmp_path: Path
) -> None:
    # Other workflows (here: the reference's actions under other names and shapes) drive the same checks.
    path = tmp_path / "fixtures.yaml"
    path.write_text(
        "quick: {name: mine-quick, steps: [{id: only, action: noop}]}\n"
        "failing: {name: mine-failing, steps: [{id: ok, action: noop}, {id: bad, action: fail, dependsOn: [ok]}]}\n"
        "long: {name: mine-long, steps: [{id: nap, action: sleep, params: {seconds: 900}}]}\n",
        encoding="utf-8",
    )
    session = make_session(reference_url, fixtures=Fixtures.from_file(path))
    for name in CHECKS:
        assert_passed(run_named_check(name, session))


def test_a_check_whose_fixture_is_missing_is_skipped_with_the_reason(
    reference_url: str, make_session: Callable[..., Session], tmp_path: Path
) -> None:
    path = tmp_path / "only-quick.yaml"
    path.write_text("quick: {name: q, steps: [{id: a, action: noop}]}\n", encoding="utf-8")
    session = make_session(reference_url, fixtures=Fixtures.from_file(path))
    run = run_named_check("failing_run_fails", session)
    assert set(run.named_statuses().values()) == {Outcome.SKIPPED}, explain(run)
    assert "'failing'" in run.message and str(path) in run.message and "--fixtures" in run.message, run.message
    # lifecycle_histories uses the failing and long fixtures when given, and goes on without them.
    assert_passed(run_named_check("lifecycle_histories", session))


def test_a_fixture_the_server_refuses_skips_with_its_answer(
    reference_url: str, make_session: Callable[..., Session], tmp_path: Path
) -> None:
    path = tmp_path / "foreign.yaml"
    path.write_text("quick: {name: q, steps: [{id: a, action: http_get}]}\n", encoding="utf-8")
    run = run_named_check("quick_run_succeeds", make_session(reference_url, fixtures=Fixtures.from_file(path)))
    assert set(run.named_statuses().values()) == {Outcome.SKIPPED}, explain(run)
    assert "400" in run.message and "--fixtures" in run.message, run.message
