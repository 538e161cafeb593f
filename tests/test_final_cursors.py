"""PAGE-011 in the final reads: the earliest pages an issued cursor led to, asked for again at the end.

Which pages count is unit-tested on exchanges written by hand (conformance/final_reads.py,
`cursor_pages_of`); the reads run against the faults only they catch (tests/support/faults_final.py,
the expiry shortened here so a test takes a second) and against the reference server and the
correct variants whose cursors differ most, which must pass. Across a restart: tests/test_disruption.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import faults_final
from support.check_runs import assert_caught, assert_passed, explain, open_session, run_named_check
from support.harness import quick_args, run_suite
from support.servers import fault, serve, variant
from support.tokens import TOKENS

from conformance.execution import CheckRun, run_check
from conformance.final_reads import cursor_pages_of, final_reads_check, ledger_of
from conformance.outcomes import Outcome
from conformance.results import Exchange
from reference_impl.app import create_app

BASE = "http://127.0.0.1:1/api/v1/runs"


def _exchange(method: str, url: str, status: int | None, body: str | None, answer: str | None) -> Exchange:
    headers = {"Authorization": "Bearer [redacted]", "Content-Type": "application/json"}
    return Exchange(method, url, headers, body, status, {}, answer, 1.0, curl=f"curl -H 'Bearer $RUNS_TOKEN' {url}")


def start(client_id: str, run_id: str, status: int | None = 202) -> Exchange:
    body = json.dumps({"clientId": client_id, "workflow": {"name": "w", "steps": [{"id": "a", "action": "noop"}]}})
    answer = json.dumps({"runId": run_id, "status": "queued"}) if status == 202 else None
    return _exchange("POST", BASE, status, body, answer)


def page(query: str, run_ids: list[str], following: str | None) -> Exchange:
    answer = json.dumps({"items": [{"runId": r, "status": "queued"} for r in run_ids], "nextCursor": following})
    return _exchange("GET", f"{BASE}?{query}", 200, None, answer)


def walk(client_id: str, *, status: str = "") -> list[Exchange]:
    """Two pages of one run each: the second is the one cursor X led to."""
    extra = f"&status={status}" if status else ""
    first = page(f"clientId={client_id}&limit=1{extra}", ["r2"], "X")
    return [first, page(f"clientId={client_id}&limit=1&cursor=X{extra}", ["r1"], None)]


def test_a_page_counts_when_its_cursor_was_issued_after_every_start_of_its_clientId() -> None:
    (found,) = cursor_pages_of([[start("c1", "r1"), start("c1", "r2"), *walk("c1")]])
    assert (found.client_id, found.run_ids, dict(found.query)["cursor"]) == ("c1", ("r1",), "X")


@pytest.mark.parametrize(
    "checks",
    [
        [[start("c1", "r1"), walk("c1")[0], start("c1", "r3"), walk("c1")[1]]],  # a start after the cursor
        [[start("c1", "r1"), *walk("c1")], [start("c1", "r3")]],  # a start in a check beside it: no order
        [[start("c1", "r1"), start("c1", "", status=None), *walk("c1")]],  # no answer: it may yet take effect
        [[start("c1", "r1"), start("c1", "", status=500), *walk("c1")], [start("c1", "", status=500)]],
        [[start("c1", "r1"), *walk("c1", status="succeeded")]],  # runs leave a status filter as they move
        [[start("c1", "r1"), walk("c1")[1]]],  # a cursor the server never answered (made up or edited)
        [[start("c1", "r1"), walk("c1")[0]], [walk("c1")[1]]],  # issued in another check
    ],
    ids=[
        *("start-after", "start-beside", "start-unanswered", "start-500-beside"),
        *("status-filter", "not-issued", "issued-elsewhere"),
    ],
)
def test_a_page_something_could_have_changed_is_not_judged(checks: list[list[Exchange]]) -> None:
    assert cursor_pages_of(checks) == []


def test_a_refused_start_changes_nothing() -> None:
    assert len(cursor_pages_of([[start("c1", "r1"), *walk("c1")], [start("c1", "", status=400)]])) == 1


# --- against servers -------------------------------------------------------------------------------
def walk_then_read_back(url: str, *, between: Callable[[], None] = lambda: None) -> tuple[CheckRun, CheckRun]:
    """page_sizes (walks of fresh clientIds, with cursors), then the final reads of what it established."""
    with open_session(url, profile="quick") as session:
        walked = run_named_check("page_sizes", session)
        between()
        ledger = ledger_of(walked.exchanges)
        ledger.cursors = cursor_pages_of([walked.exchanges])
        check = final_reads_check(ledger, ["PAGE-011"])
        assert check is not None and ledger.cursors, explain(walked)
        return walked, run_check(check, session)


@pytest.mark.parametrize("server", ["reference", "lenient-cursors", "other-encodings", "sequential-run-ids"])
def test_a_correct_server_gives_the_same_page_again(server: str) -> None:
    app: Any = create_app(list(TOKENS)) if server == "reference" else variant(server).build(TOKENS)
    with serve(app) as url:
        walked, read = walk_then_read_back(url)
    assert_passed(walked)
    assert_passed(read)
    assert read.outcomes["PAGE-011"].evaluations == 5  # the quick profile's budget


class FrozenClock:
    """The expiring fault's clock, stopped: a cursor ages only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    clock = FrozenClock()
    monkeypatch.setattr(faults_final, "cursor_clock", clock)
    return clock


def test_a_cursor_that_expires_passes_the_walks_and_is_caught_later(frozen_clock: FrozenClock) -> None:
    def age() -> None:
        frozen_clock.now += faults_final.CURSOR_TTL_S + 1

    with serve(faults_final.cursor_expires_in_seconds(TOKENS)) as url:
        at_once = walk_then_read_back(url)
        later = walk_then_read_back(url, between=age)
    assert_passed(at_once[0])
    assert_passed(at_once[1])
    assert_passed(later[0])
    assert_caught(later[1], {"PAGE-011"})
    assert "400: does the cursor expire" in later[1].evidence["PAGE-011"][0].message


def test_a_single_use_cursor_is_caught_at_once() -> None:
    with serve(faults_final.cursors_single_use(TOKENS)) as url:
        walked, read = walk_then_read_back(url)
    assert walked.outcomes["PAGE-002"].outcome is Outcome.PASSED, explain(walked)
    assert_caught(read, {"PAGE-011"})


@pytest.mark.slow
def test_only_the_final_reads_catch_a_cursor_that_expires() -> None:
    # The whole quick suite (about 15 s): PAGE-011 is its only failure and the final reads its only
    # evidence, so every check passes this server (they follow a cursor at once).
    item = fault("cursor-expires-in-seconds")
    suite = run_suite(item.build(TOKENS), *quick_args((), *item.cli_args))
    assert suite.report is not None, suite.explain()
    failed = {req["id"]: req for req in suite.report["requirements"] if req["status"] == "failed"}
    assert set(failed) == {"PAGE-011"}, suite.explain()
    checks = {evidence["check"] for evidence in failed["PAGE-011"].get("evidence") or []}
    assert checks == {"final_reads"}, suite.explain()
