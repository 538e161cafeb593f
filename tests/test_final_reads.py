"""Final reads (conformance/final_reads.py): what the run established is read back at its end.

The ledger is read from recorded exchanges, so its rules are unit-tested on exchanges written by
hand; the reads themselves run against the faults that only they catch (tests/support/
faults_final.py, their delays shortened here so each test takes a second, not the run's length)
and against the reference server and the correct variants whose form differs most (timestamps,
run IDs, extra and changing fields), which must pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import faults_final
from support.check_runs import assert_caught, assert_passed, explain, open_session
from support.harness import quick_args, run_suite
from support.servers import fault, serve, variant
from support.tokens import TOKENS

from conformance.client import RECORDED_BODY_LIMIT
from conformance.context import CheckContext
from conformance.execution import CheckRun, run_check
from conformance.final_reads import REQUIREMENTS, earliest_first, final_reads_check, ledger_of
from conformance.outcomes import Outcome
from conformance.redaction import REDACTED
from conformance.results import Exchange
from reference_impl.app import create_app

BASE = "http://127.0.0.1:1/api/v1/runs"
WORKFLOW = {"name": "w", "steps": [{"id": "a", "action": "noop"}]}


def exchange(
    method: str,
    url: str,
    status: int | None,
    *,
    body: str | None = None,
    answer: str | None = None,
    headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    other: bool = False,
) -> Exchange:
    sent = {"Authorization": f"Bearer {REDACTED}", **(headers or {})}
    var = "RUNS_OTHER_TOKEN" if other else "RUNS_TOKEN"
    return Exchange(method, url, sent, body, status, response_headers or {}, answer, 1.0,
                    curl=f'curl -H "Authorization: Bearer ${var}" {url}')  # fmt: skip


def start(key: str | None, run_id: str, *, status: int = 202, body: str | None = None, other: bool = False) -> Exchange:
    sent = body or '{"clientId": "c1", "workflow": {"name": "w", "steps": [{"id": "a", "action": "noop"}]}}'
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    answer = f'{{"runId": "{run_id}", "status": "queued"}}' if status == 202 else None
    return exchange("POST", BASE, status, body=sent, answer=answer, headers=headers, other=other)


def test_a_key_is_bound_by_its_first_202_per_credential() -> None:
    ledger = ledger_of(
        [
            start("k1", "r1"),
            start("k1", "r1"),  # a replay: the same binding, once
            start("k1", "r9", other=True),  # the other credential's own key (IDEM-007)
            start("k2", "r2", status=409),  # refused: binds nothing
            exchange("POST", BASE, None, body="{}", headers={"Idempotency-Key": "k3"}),  # no answer: no fact
            start(None, "r4"),  # no key: a run and a clientId, no binding
        ]
    )
    assert [(k.credential, k.key, k.run_id) for k in ledger.keys] == [("main", "k1", "r1"), ("other", "k1", "r9")]
    assert ledger.client_ids == {("main", "c1"): ["r1", "r4"], ("other", "c1"): ["r9"]}


def test_bodies_the_record_does_not_hold_whole_bind_no_key() -> None:
    long = '{"clientId": "c1", "inputs": {"x": "' + "y" * RECORDED_BODY_LIMIT + '"}}'
    cut = long[:RECORDED_BODY_LIMIT] + "… [40 more characters]"
    redacted = f'{{"clientId": "c1", "workflow": {{"name": "{REDACTED}", "steps": []}}}}'
    anonymous = exchange("POST", BASE, 202, body="{}", answer='{"runId": "r3"}', headers={"Idempotency-Key": "k3"})
    anonymous.request_headers.pop("Authorization")
    ledger = ledger_of([start("k1", "r1", body=cut), start("k2", "r2", body=redacted), anonymous])
    assert ledger.keys == []


def test_runs_kept_are_those_seen_terminal_or_cancel_requested() -> None:
    def run(run_id: str, status: str, requested: str | None = None) -> Exchange:
        answer = json.dumps({"runId": run_id, "status": status, "cancelRequestedAt": requested})
        return exchange("GET", f"{BASE}/{run_id}", 200, answer=answer)

    ledger = ledger_of(
        [
            run("r1", "running"),  # may still move: nothing to hold it to
            run("r2", "cancelling", "2026-12-06T10:00:00Z"),
            run("r2", "cancelled", "2026-12-06T10:00:00Z"),  # the terminal observation wins
            run("r3", "succeeded"),
            run("r3", "failed"),  # a terminal change is the monitor's finding; the first terminal one stays
        ]
    )
    assert {seen.run_id: seen.run["status"] for seen in ledger.runs} == {"r2": "cancelled", "r3": "succeeded"}


def test_a_run_seen_only_in_a_listing_is_not_known_readable_by_its_id() -> None:
    page = json.dumps({"items": [{"runId": "r1", "status": "succeeded"}], "nextCursor": None})
    ledger = ledger_of([exchange("GET", f"{BASE}?clientId=c1", 200, answer=page)])
    assert [(seen.run_id, seen.read) for seen in ledger.runs] == [("r1", False)]  # a 404 then may be scoping


def test_a_definition_is_held_to_its_etag_and_the_workflow_submitted() -> None:
    body = '{"clientId": "c1", "workflow": {"name": "w", "steps": [{"id": "a", "action": "noop"}]}}'
    read = exchange("GET", f"{BASE}/r1/definition", 200, answer='{"name": "other"}', response_headers={"ETag": 'W/"x"'})
    ledger = ledger_of([start("k1", "r1", body=body), read])
    assert [(d.run_id, d.etag, d.workflow) for d in ledger.definitions] == [("r1", 'W/"x"', WORKFLOW)]


def test_a_bounded_sample_always_holds_the_earliest() -> None:
    items = list(range(100))
    sample = earliest_first(items, 10)
    assert sample[:5] == [0, 1, 2, 3, 4] and len(sample) == 10 and len(set(sample)) == 10
    assert max(sample) >= 90  # the rest spread to the end of the run
    assert earliest_first(items, None) == items and earliest_first(items[:3], 10) == [0, 1, 2]


def test_nothing_established_or_nothing_selected_is_no_check() -> None:
    assert final_reads_check(ledger_of([]), REQUIREMENTS) is None
    assert final_reads_check(ledger_of([start("k1", "r1")]), ["AUTH-001"]) is None
    only = final_reads_check(ledger_of([start("k1", "r1")]), ["IDEM-001", "AUTH-001"])
    assert only is not None and only.requirements == ("IDEM-001",)


# --- against servers -------------------------------------------------------------------------------
@pytest.fixture
def short_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_final, "KEY_TTL_S", 0.3)
    monkeypatch.setattr(faults_final, "REWRITE_AFTER_S", 0.3)
    monkeypatch.setattr(faults_final, "PURGE_AFTER_S", 0.3)


def establish_and_read_back(url: str, *, keys: int = 6, pause: float = 0.0) -> CheckRun:
    """What a run does, in small: keyed starts, terminal runs, a cancel, definitions; then the final reads."""
    with open_session(url, profile="thorough") as session:
        setup = CheckContext(session, "setup")
        client_id = setup.fresh_client_id("final")
        for number in range(keys):
            started = setup.start_run(client_id=client_id, key=f"rc-final-{client_id}-{number}")
            assert started.run_id is not None, started.response.content
            assert setup.wait_terminal(started.run_id) is not None
            assert setup.get_definition(started.run_id).status_code == 200
        long = setup.start_run(session.fixtures.workflow("long"), client_id=client_id)
        assert long.run_id is not None
        setup.cancel_run(long.run_id)
        assert setup.wait_terminal(long.run_id) is not None
        time.sleep(pause)
        check = final_reads_check(ledger_of(setup.recorder.exchanges), REQUIREMENTS)
        assert check is not None
        return run_check(check, session)


def evaluated(run: CheckRun) -> dict[str, int]:
    return {rid: found.evaluations for rid, found in run.outcomes.items() if rid in REQUIREMENTS}


@pytest.mark.parametrize("server", ["reference", "other-timestamp-forms", "sequential-run-ids", "volatile-fields"])
def test_a_correct_server_passes_the_final_reads(server: str) -> None:
    app: Any = create_app(list(TOKENS)) if server == "reference" else variant(server).build(TOKENS)
    with serve(app) as url:
        run = establish_and_read_back(url)
    assert_passed(run)
    counts = evaluated(run)
    assert counts["IDEM-001"] == counts["IDEM-003"] == 6, explain(run)
    assert counts["LIFE-002"] == counts["LIFE-006"] == 7, counts
    assert counts["CANCEL-005"] == 1 and counts["PAGE-006"] == 1, counts
    assert counts["ETAG-001"] == counts["ETAG-004"] == 6, counts


@pytest.fixture
def bounded_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(faults_final, "KEY_CACHE", 3)
    yield


@pytest.mark.usefixtures("bounded_cache")
def test_a_bounded_key_cache_is_caught_on_the_earliest_keys() -> None:
    with serve(faults_final.bounded_key_cache(TOKENS)) as url:
        run = establish_and_read_back(url)
    assert_caught(run, {"IDEM-001", "IDEM-003"})
    assert run.outcomes["LIFE-002"].outcome is Outcome.PASSED  # only what the bug breaks


@pytest.mark.usefixtures("short_delays")
def test_keys_that_expire_are_caught() -> None:
    with serve(faults_final.keys_expire_in_seconds(TOKENS)) as url:
        run = establish_and_read_back(url, pause=0.4)
    assert_caught(run, {"IDEM-001", "IDEM-003"})


@pytest.mark.usefixtures("short_delays")
def test_a_terminal_run_rewritten_later_is_caught() -> None:
    with serve(faults_final.terminal_run_rewritten(TOKENS)) as url:
        run = establish_and_read_back(url, pause=0.4)
    assert_caught(run, {"LIFE-002"})
    assert run.outcomes["IDEM-001"].outcome is Outcome.PASSED


@pytest.mark.usefixtures("short_delays")
def test_a_run_purged_after_it_ends_is_caught_as_gone_not_as_changed() -> None:
    with serve(faults_final.runs_purged_after_ending(TOKENS)) as url:
        run = establish_and_read_back(url, pause=0.4)
    assert_caught(run, {"LIFE-006"})
    # A run that is gone is no observation of a changed one: LIFE-002 and CANCEL-005 are not judged on it.
    for rid in ("LIFE-002", "CANCEL-005"):
        found = run.outcomes.get(rid)
        assert found is None or found.outcome is not Outcome.FAILED, explain(run)


def test_a_run_purged_later_is_not_caught_before_its_delay() -> None:
    # The same server read back at once (the delay is 5 s): every run is there, as every check sees it.
    with serve(faults_final.runs_purged_after_ending(TOKENS)) as url:
        run = establish_and_read_back(url)
    assert_passed(run)
    assert evaluated(run)["LIFE-006"] == 7


@pytest.mark.slow
def test_only_the_final_reads_catch_a_run_purged_after_it_ends() -> None:
    # The whole quick suite (about 15 s): every failure's evidence is the final reads', so without
    # them the run would pass; LIFE-006 is among the failures.
    item = fault("runs-purged-after-ending")
    suite = run_suite(item.build(TOKENS), *quick_args((), *item.cli_args))
    assert suite.report is not None, suite.explain()
    failed = {req["id"]: req for req in suite.report["requirements"] if req["status"] == "failed"}
    assert "LIFE-006" in failed, suite.explain()
    checks = {evidence["check"] for req in failed.values() for evidence in req.get("evidence") or []}
    assert checks == {"final_reads"}, {rid: [e["check"] for e in req["evidence"]] for rid, req in failed.items()}


@pytest.mark.usefixtures("short_delays")
def test_final_reads_after_waits_so_a_short_lived_promise_lapses() -> None:
    # Keys forgotten 0.3 s after their first use: with the final reads 0.5 s after the checks, every key
    # the checks used is older than that, however quickly they ran, so the replays find them gone.
    run = run_suite(
        faults_final.keys_expire_in_seconds(TOKENS), *quick_args(("IDEM-001",), "--final-reads-after", "0.5")
    )
    assert "final reads: waiting 0.5 s first (--final-reads-after)" in run.stderr + run.stdout, run.explain()
    assert run.status("IDEM-001") == "failed", run.explain()
    finals = [e for r in run.report["requirements"] if r["id"] == "IDEM-001" for e in r["evidence"]]  # type: ignore[index]
    assert finals and all(e["check"] == "final_reads" for e in finals), run.explain()
