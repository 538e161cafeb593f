"""The history checker (CONC-001..012): each rule seen failing, and legal histories that look suspicious.

Hand-made histories pin each rule: a violation must name the rule and exactly the operations that
prove it; a correct server's history that merely looks odd (reads overlapping, a quick run, an
idempotent replay, a walk racing inserts) must give no finding. A property test then feeds the
checker histories of a simulated correct server (tests/support/history_model.py): never a finding; and the
same histories with one anomaly appended: always that anomaly's rule, naming the appended operation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.history_model import correct_history

from conformance import history_checker
from conformance.catalog import catalog
from conformance.history import History, Kind, Observation, Operation, precedes
from conformance.history_checker import (
    KEY_IN_FLIGHT,
    KEY_REUSED,
    RULES,
    Finding,
    check_history,
    evaluations,
    lifecycle_graph,
)
from conformance.meaning import parse_instant as instant

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelling",
    "cancelled",
)
T0 = "2026-01-01T00:00:01Z"


class Build:
    """A history written by hand: times in ms from 0, one line per operation."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def op(self, kind: Kind, client: int, t0: float, t1: float | None, status: int | None, **facts: Any) -> int:
        credential = facts.pop("credential", "primary")
        if t1 is None:
            status, facts["body"], facts["etag"] = None, None, None
        self.ops.append(
            Operation(
                index=len(self.ops),
                client=client,
                credential=credential,
                kind=kind,
                invoked=t0 / 1000,
                completed=None if t1 is None else t1 / 1000,
                status=status,
                **facts,
            )
        )
        return len(self.ops) - 1

    def start(
        self,
        client: int,
        t0: float,
        t1: float | None,
        run_id: str = "57",
        status: str = QUEUED,
        *,
        code: int = 202,
        key: str | None = None,
        fp: str = "A",
        problem: str | None = None,
        client_id: str = "etl",
        credential: str = "primary",
    ) -> int:
        body = {"runId": run_id, "status": status} if code == 202 else {"type": problem, "status": code}
        return self.op(
            "startRun",
            client,
            t0,
            t1,
            code,
            key=key,
            body_fingerprint=fp,
            client_id=client_id,
            body=body,
            credential=credential,
        )

    def get(
        self,
        client: int,
        t0: float,
        t1: float | None,
        run_id: str = "57",
        status: str = QUEUED,
        *,
        code: int = 200,
        cancel: str | None = None,
        finished: str | None = None,
    ) -> int:
        body = run(run_id, status, cancel=cancel, finished=finished) if code == 200 else {"status": code}
        return self.op("getRun", client, t0, t1, code, run_id=run_id, body=body)

    def cancel(self, client: int, t0: float, t1: float | None, run_id: str = "57", status: str = CANCELLING) -> int:
        return self.op("cancelRun", client, t0, t1, 202, run_id=run_id, body={"runId": run_id, "status": status})

    def missing(self, kind: Kind, client: int, t0: float, t1: float | None, run_id: str = "57") -> int:
        return self.op(kind, client, t0, t1, 404, run_id=run_id, body={"status": 404})

    def page(
        self,
        client: int,
        t0: float,
        t1: float | None,
        walk: int,
        page: int,
        items: list[dict[str, Any]],
        *,
        next_cursor: str | None = None,
        query: dict[str, str] | None = None,
        code: int = 200,
    ) -> int:
        query = dict(query or {})
        if page:
            query["cursor"] = f"c{page}"
        body = {"items": items, "nextCursor": next_cursor} if code == 200 else {"status": code}
        return self.op("listRuns", client, t0, t1, code, query=query, walk=walk, page=page, body=body)

    def definition(
        self, client: int, t0: float, t1: float | None, run_id: str = "57", *, etag: str = 'W/"h1"', body: Any = None
    ) -> int:
        body = body if body is not None else {"name": "wf", "steps": [{"id": "s", "action": "noop"}]}
        return self.op("getRunDefinition", client, t0, t1, 200, run_id=run_id, etag=etag, body=body)

    def history(self) -> History:
        return History(self.ops)

    def check(self) -> list[Finding]:
        return check_history(self.history())


def run(
    run_id: str = "57",
    status: str = QUEUED,
    *,
    cancel: str | None = None,
    finished: str | None = None,
    client_id: str = "etl",
) -> dict[str, Any]:
    """A Run as getRun or a listRuns item shows it (only the fields the checker reads, and clientId)."""
    if finished is None and status in {SUCCEEDED, FAILED, CANCELLED}:
        finished = "2026-01-01T00:00:09Z"
    return {
        "runId": run_id,
        "clientId": client_id,
        "status": status,
        "cancelRequestedAt": cancel,
        "finishedAt": finished,
    }


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [(f.requirement_id, f.message) for f in findings]
    return findings[0]


def ids(findings: list[Finding]) -> list[str]:
    return [f.requirement_id for f in findings]


# --- the data model -------------------------------------------------------------------------------------


def test_precedes_is_strict_real_time_order() -> None:
    b = Build()
    first, second, overlapping, lost = b.get(1, 0, 2), b.get(2, 3, 4), b.get(3, 1, 5), b.get(4, 0, None)
    h = b.history()
    assert precedes(h[first], h[second]) and not precedes(h[second], h[first])
    assert not precedes(h[first], h[overlapping]) and not precedes(h[overlapping], h[first])
    assert not any(precedes(h[lost], h[other]) for other in (first, second, overlapping))


def test_the_model_refuses_inconsistent_operations() -> None:
    with pytest.raises(ValueError, match=r"completed .* is before invoked"):
        Operation(0, 1, "primary", "getRun", invoked=2.0, completed=1.0)
    with pytest.raises(ValueError, match="no answer"):
        Operation(0, 1, "primary", "getRun", invoked=2.0, completed=None, status=200)
    with pytest.raises(ValueError, match="kind"):
        Operation(0, 1, "primary", "deleteRun", invoked=2.0, completed=3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"indices must be 0\.\.n-1"):
        History([Operation(1, 1, "primary", "getRun", invoked=2.0, completed=3.0)])


def test_observations_come_from_every_response_that_shows_a_status() -> None:
    b = Build()
    b.start(1, 0, 1, key="k")  # a replay may repeat the first answer: its window opens at -inf
    b.start(1, 0, 1, "58")
    b.get(1, 2, 3, cancel=T0)
    b.cancel(1, 4, 5)
    b.page(2, 6, 7, walk=1, page=0, items=[run("57"), run("58")], next_cursor="x")
    b.page(2, 8, 9, walk=1, page=1, items=[run("59")])  # a page may come from the walk's snapshot
    b.get(1, 10, None)
    observed = b.history().observations
    assert [(o.run_id, o.op) for o in observed] == [
        ("57", 0),
        ("58", 1),
        ("57", 2),
        ("57", 3),
        ("57", 4),
        ("58", 4),
        ("59", 5),
    ]
    assert observed[0].earliest == float("-inf") and observed[1].earliest == 0.0
    assert observed[2].cancel_shown and observed[2].cancel_requested_at == T0
    assert not observed[3].cancel_shown  # a RunRef shows no timestamps
    assert observed[6].earliest == 0.006 and observed[6].latest == 0.009
    assert b.history().runs()["58"] == (observed[1], observed[5])


@pytest.mark.parametrize(
    "same",
    [
        "2026-01-01T00:00:01Z",
        "2026-01-01t00:00:01z",
        "2026-01-01T00:00:01.000000000Z",
        "2026-01-01T01:00:01+01:00",
        "2025-12-31T18:30:01.0-05:30",
    ],
)
def test_instants_compare_whatever_the_rfc3339_form(same: str) -> None:
    assert instant(same) == instant("2026-01-01T00:00:01Z")
    assert instant(same) != instant("2026-01-01T00:00:01.000000001Z")


@pytest.mark.parametrize(
    "text", ["2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", "yesterday", "2026-01-01T24:00:00Z"]
)
def test_a_malformed_timestamp_is_no_instant(text: str) -> None:
    assert instant(text) is None


def test_the_lifecycle_graph_comes_from_the_spec() -> None:
    reach, terminal = lifecycle_graph()
    assert terminal == {SUCCEEDED, FAILED, CANCELLED}
    assert reach[QUEUED] == {QUEUED, RUNNING, CANCELLING, CANCELLED, FAILED, SUCCEEDED}
    assert reach[RUNNING] == {RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED}
    assert all(reach[status] == {status} for status in terminal)


# --- CONC-001..004: Idempotency-Key --------------------------------------------------------------------


def test_conc_001_two_runs_for_one_key() -> None:
    b = Build()
    first = b.start(1, 0, 1, "57", key="k")
    b.start(2, 2, 3, "57", key="k")
    second = b.start(3, 4, 5, "58", key="k")
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-001", (first, second))
    assert "op #0 (client 1, startRun (Idempotency-Key 'k') → 202, 0.000–1.000 ms) got run 57" in finding.message
    assert "op #2 (client 3, startRun (Idempotency-Key 'k') → 202, 4.000–5.000 ms) got run 58" in finding.message
    assert finding.message.endswith("(CONC-001: one Idempotency-Key, one runId)")


def test_keys_are_scoped_to_the_credential() -> None:
    b = Build()
    b.start(1, 0, 1, "57", key="k", fp="B")
    conflict = b.start(2, 2, 3, key="k", fp="A", credential="other", code=409, problem=KEY_REUSED)
    finding = only(b.check())  # the other credential never used "k": another credential's body is no cause
    assert (finding.requirement_id, finding.operations) == ("CONC-003", (conflict,))
    b = Build()
    b.start(1, 0, 1, "57", key="k")
    b.start(2, 2, 3, "58", key="k", credential="other", fp="B")
    assert b.check() == []


def test_conc_002_another_body_got_202() -> None:
    b = Build()
    first = b.start(1, 0, 1, key="k", fp="A")
    second = b.start(2, 0.5, 3, key="k", fp="B")  # concurrent, yet one of them must be a 409
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-002", (first, second))
    assert KEY_REUSED in finding.message


def test_conc_003_reused_409_for_the_same_body() -> None:
    b = Build()
    first = b.start(1, 0, 1, key="k", fp="A")
    conflict = b.start(2, 2, 3, key="k", fp="A", code=409, problem=KEY_REUSED)
    b.start(3, 3.5, 4, key="k", fp="B", code=409, problem=KEY_REUSED)  # legal: "A" came first
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-003", (conflict, first))
    assert "the key was first used by op #0" in finding.message


def test_conc_003_a_reused_409_to_the_first_of_two_overlapping_requests() -> None:
    # A server that answers the in-flight case with the reused type: the 409'd request came first, so the
    # message must not call the other one the key's first use, and says what the server could have answered.
    b = Build()
    conflict = b.start(1, 0, 20, key="k", fp="A", code=409, problem=KEY_REUSED)
    holder = b.start(2, 5, 50, key="k", fp="A")
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-003", (conflict, holder))
    assert "first used by" not in finding.message
    assert "it was the first request with that key, and the next, op #1" in finding.message
    assert f"or 409 with type {KEY_IN_FLIGHT} while op #1 was in flight" in finding.message


def test_conc_003_reused_409_before_the_other_body_was_sent() -> None:
    b = Build()
    conflict = b.start(1, 0, 1, key="k", fp="A", code=409, problem=KEY_REUSED)
    b.start(2, 2, 3, "57", key="k", fp="B")  # sent after the 409 was answered: it cannot be its cause
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-003", (conflict,))


def test_reused_409_caused_by_an_overlapping_or_unanswered_request_is_legal() -> None:
    b = Build()
    b.start(1, 1, 5, key="k", fp="B", code=409, problem=KEY_REUSED)
    b.start(2, 4, 6, "57", key="k", fp="A")  # sent before the 409 was answered: the server may have seen it first
    b.start(3, 10, None, key="j", fp="A")  # no answer: it may have taken the key
    b.start(1, 12, 13, key="j", fp="B", code=409, problem=KEY_REUSED)
    assert b.check() == []


def test_conc_004_in_flight_409_with_nothing_in_flight() -> None:
    b = Build()
    first = b.start(1, 0, 1, "57", key="k")
    late = b.start(2, 2, 3, key="k", code=409, problem=KEY_IN_FLIGHT)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-004", (late, first))
    assert "was answered before it was sent" in finding.message


def test_in_flight_409_overlapping_the_first_request_is_legal() -> None:
    b = Build()
    b.start(1, 0, 10, "57", key="k")
    b.start(2, 1, 2, key="k", code=409, problem=KEY_IN_FLIGHT)  # inside the first
    b.start(3, 9, 12, key="k", code=409, problem=KEY_IN_FLIGHT)  # overlaps its end
    b.start(1, 20, None, key="j")  # no answer: in flight for ever, as far as anyone knows
    b.start(2, 30, 31, key="j", code=409, problem=KEY_IN_FLIGHT)
    b.start(3, 40, 41, "57", key="k")
    assert b.check() == []


def test_an_in_flight_409_is_not_its_own_cause() -> None:
    b = Build()
    alone = b.start(1, 0, 1, key="k", code=409, problem=KEY_IN_FLIGHT)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-004", (alone,))


# --- CONC-005/006: the lifecycle in real time -------------------------------------------------------------


def test_conc_005_a_status_moves_backwards() -> None:
    b = Build()
    b.start(1, 0, 1)
    earlier = b.get(1, 2, 3, status=RUNNING)
    later = b.get(2, 4, 5, status=QUEUED)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-005", (earlier, later))
    assert finding.message == (
        "run 57: op #1 (client 1, getRun 57 → 200, 2.000–3.000 ms) showed it running and was answered before "
        "op #2 (client 2, getRun 57 → 200, 4.000–5.000 ms) was sent, which showed it queued; expected running or a "
        "status reachable from it (cancelled, cancelling, failed, succeeded): a status never moves backwards "
        "(CONC-005: statuses follow the lifecycle in real time)"
    )


def test_conc_005_names_the_latest_contradicted_read() -> None:
    b = Build()
    b.get(1, 0, 1, status=QUEUED)
    cancelling = b.get(1, 2, 3, status=CANCELLING)
    b.get(2, 1, 2.5, status=QUEUED)
    running = b.get(2, 4, 5, status=RUNNING)  # cancelling never goes back to running
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-005", (cancelling, running))


def test_overlapping_reads_may_show_statuses_backwards_in_completion_order() -> None:
    b = Build()
    b.start(1, 0, 1)
    b.get(1, 2, 10, status=SUCCEEDED)  # answered last, but the server may have read it first...
    b.get(2, 3, 4, status=QUEUED)  # ...and this one afterwards
    b.page(3, 2.5, 9, walk=1, page=0, items=[run(status=RUNNING)], next_cursor="x")
    b.cancel(2, 5, 6, status=CANCELLING)
    b.get(3, 11, 12, status=SUCCEEDED)  # cancelling → succeeded is allowed
    assert b.check() == []


def test_a_quick_run_may_be_finished_in_its_first_202() -> None:
    b = Build()
    b.start(1, 0, 1, status=SUCCEEDED)
    b.get(1, 2, 3, status=SUCCEEDED)
    b.cancel(2, 4, 5, status=SUCCEEDED)  # a terminal run: 202 with its unchanged status
    assert b.check() == []


def test_a_replay_may_repeat_the_first_answer() -> None:
    b = Build()
    b.start(1, 0, 1, key="k", status=QUEUED)
    b.get(1, 2, 3, status=SUCCEEDED)
    b.start(2, 4, 5, key="k", status=QUEUED)  # the stored first answer, sent again
    assert b.check() == []


def test_a_replay_still_counts_as_an_earlier_read() -> None:
    b = Build()
    b.start(1, 0, 1, key="k", status=QUEUED)
    replay = b.start(2, 2, 3, key="k", status=RUNNING)  # whenever it was read, it was running by 3 ms
    back = b.get(1, 4, 5, status=QUEUED)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-005", (replay, back))


def test_a_page_may_show_the_walks_snapshot_but_not_older() -> None:
    b = Build()
    b.start(1, 0, 1)
    b.page(2, 2, 3, walk=1, page=0, items=[], next_cursor="x")
    b.get(1, 3.5, 4, status=RUNNING)  # answered after the walk began...
    b.page(2, 5, 6, walk=1, page=1, items=[run(status=QUEUED)])  # ...so its snapshot may be older
    assert b.check() == []
    b = Build()
    b.start(1, 0, 1)
    read = b.get(1, 1.5, 2, status=RUNNING)  # answered before the walk began
    b.page(2, 3, 4, walk=1, page=0, items=[], next_cursor="x")
    page = b.page(2, 5, 6, walk=1, page=1, items=[run(status=QUEUED)])
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-005", (read, page))


def test_conc_006_a_terminal_status_changes() -> None:
    b = Build()
    done = b.get(1, 0, 1, status=SUCCEEDED)
    again = b.get(2, 2, 3, status=RUNNING)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-006", (done, again))
    assert "a terminal status never changes" in finding.message


def test_conc_006_two_terminal_statuses_whatever_the_order() -> None:
    b = Build()
    b.start(1, 0, 1)
    one = b.get(1, 2, 10, status=SUCCEEDED)
    other = b.page(2, 3, 9, walk=1, page=0, items=[run(status=FAILED)], next_cursor="x")  # overlapping
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-006", (one, other))


def test_conc_006_two_terminal_statuses_in_real_time_order_are_told_as_a_change() -> None:
    # A cancel that overwrote a finished run: the overlapping pair proves it, but a read that followed the
    # succeeded one and showed cancelled shows the change itself, and is the evidence a reader follows.
    b = Build()
    b.start(1, 0, 1)
    cancel = b.cancel(1, 2, 40, status=CANCELLED)
    done = b.get(2, 10, 12, status=SUCCEEDED)
    after = b.get(3, 50, 52, status=CANCELLED)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-006", (done, after))
    assert "showed it succeeded and was answered before op #3" in finding.message
    assert "which showed it cancelled" in finding.message
    assert f"op #{cancel} " not in finding.message


def test_an_unknown_status_is_left_to_the_schema_checks() -> None:
    b = Build()
    b.get(1, 0, 1, status=SUCCEEDED)
    b.get(1, 2, 3, status="paused")
    assert b.check() == []


# --- CONC-007/008: timestamps that never change ------------------------------------------------------------


def test_conc_007_cancel_requested_at_changes() -> None:
    b = Build()
    first = b.get(1, 0, 1, status=CANCELLING, cancel="2026-01-01T00:00:01Z")
    b.get(2, 0, 1, status=CANCELLING, cancel="2026-01-01T01:00:01+01:00")  # the same instant
    second = b.get(1, 2, 3, status=CANCELLED, cancel="2026-01-01T00:00:02Z")
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-007", (first, second))


def test_conc_007_two_values_whatever_the_order() -> None:
    b = Build()
    first = b.get(1, 0, 10, status=CANCELLING, cancel="2026-01-01T00:00:01Z")
    second = b.get(2, 1, 9, status=CANCELLING, cancel="2026-01-01T00:00:01.5Z")
    assert (only(b.check()).requirement_id, only(b.check()).operations) == ("CONC-007", (first, second))


def test_conc_007_cancel_requested_at_cleared() -> None:
    b = Build()
    b.get(2, 0, 0.5, status=QUEUED)  # null before the cancel: fine
    shown = b.get(1, 1, 2, status=CANCELLING, cancel=T0)
    b.get(3, 1.5, 3, status=CANCELLING)  # overlapping: may have been read first
    cleared = b.get(2, 4, 5, status=CANCELLING)
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-007", (shown, cleared))
    assert "showed it null" in finding.message


def test_one_instant_in_every_rfc3339_form_is_one_value() -> None:
    b = Build()
    forms = [
        "2026-01-01T00:00:01Z",
        "2026-01-01t00:00:01.000z",
        "2026-01-01T01:00:01+01:00",
        "2025-12-31T18:30:01-05:30",
    ]
    for n, form in enumerate(forms):
        b.get(n, 2 * n, 2 * n + 1, status=CANCELLED, cancel=form, finished=forms[-1 - n])
    assert b.check() == []


def test_conc_008_finished_at_changes() -> None:
    b = Build()
    first = b.get(1, 0, 1, status=FAILED, finished="2026-01-01T00:00:05Z")
    b.get(1, 2, 3, status=FAILED, finished="2026-01-01T00:00:05.000+00:00")
    later = b.page(
        2, 4, 5, walk=1, page=0, items=[run(status=FAILED, finished="2026-01-01T00:00:06Z")], next_cursor="x"
    )
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-008", (first, later))


# --- CONC-009: a shown run is visible --------------------------------------------------------------------


def test_conc_009_a_started_run_answers_404() -> None:
    b = Build()
    started = b.start(1, 0, 1)
    gone = b.missing("getRunDefinition", 2, 2, 3)
    b.missing("cancelRun", 3, 4, 5)  # one finding per run
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-009", (started, gone))
    assert finding.message.startswith(
        "run 57: op #0 (client 1, startRun → 202, 0.000–1.000 ms) showed the run and was answered before op #1 "
        "(client 2, getRunDefinition 57 → 404, 2.000–3.000 ms) was sent, which got 404"
    )


def test_conc_009_a_run_shown_by_a_listing_answers_404() -> None:
    b = Build()
    listed = b.page(1, 0, 1, walk=1, page=0, items=[run("ext-1")], next_cursor="x")
    gone = b.missing("getRun", 2, 2, 3, "ext-1")
    assert (only(b.check()).requirement_id, only(b.check()).operations) == ("CONC-009", (listed, gone))


def test_404_while_the_start_is_in_flight_or_unanswered_is_legal() -> None:
    b = Build()
    b.missing("getRun", 2, 0.5, 0.8)  # sent before the 202 arrived: the run may not exist yet
    b.start(1, 0, 1)
    b.start(1, 2, None, "58")  # no answer: the checker never learns 58 exists
    b.missing("getRun", 2, 3, 4, "58")
    b.missing("getRun", 2, 5, 6, "0")  # a runId nobody was shown
    assert b.check() == []


# --- CONC-010/011: walks ----------------------------------------------------------------------------------


def test_conc_010_a_walk_returns_a_run_twice() -> None:
    b = Build()
    first = b.page(1, 0, 1, walk=1, page=0, items=[run("57"), run("56")], next_cursor="x")
    again = b.page(1, 2, 3, walk=1, page=1, items=[run("56"), run("55")], next_cursor="y")
    finding = only(b.check())  # judged though the walk is not finished
    assert (finding.requirement_id, finding.operations) == ("CONC-010", (first, again))
    assert "both returned run 56" in finding.message


def test_conc_010_a_page_returns_a_run_twice() -> None:
    b = Build()
    page = b.page(1, 0, 1, walk=1, page=0, items=[run("57"), run("57")], next_cursor="x")
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-010", (page,))


def test_a_retried_page_is_not_a_duplicate() -> None:
    b = Build()
    b.page(1, 0, 1, walk=1, page=0, items=[run("57")], next_cursor="x")
    b.page(1, 2, 3, walk=1, page=1, items=[run("56")], next_cursor="y")
    b.page(1, 4, 5, walk=1, page=1, items=[run("56")], next_cursor="y")  # two answers for one page: not judged
    assert b.check() == []


def test_conc_011_a_walk_misses_a_run_started_before_it() -> None:
    b = Build()
    started = b.start(1, 0, 1, "57")
    b.start(1, 2, 3, "58", client_id="other")  # not this walk's clientId
    first = b.page(2, 4, 5, walk=1, page=0, items=[run("59")], next_cursor="x", query={"clientId": "etl"})
    last = b.page(2, 6, 7, walk=1, page=1, items=[], query={"clientId": "etl"})
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-011", (started, first, last))
    assert "never returned run 57, though op #0" in finding.message and "listRuns?clientId=etl" in finding.message


def test_a_walk_may_miss_runs_created_during_it() -> None:
    b = Build()
    b.start(1, 0, 1, "57")
    b.page(2, 0.5, 2, walk=1, page=0, items=[], next_cursor="x")  # began before 57's 202 arrived
    b.start(1, 2, 3, "58")
    b.page(2, 4, 5, walk=1, page=1, items=[])
    assert b.check() == []


def test_conc_011_a_terminal_status_filter() -> None:
    b = Build()
    b.start(1, 0, 1, "57")
    shown = b.get(1, 2, 3, "57", status=SUCCEEDED)
    b.start(1, 0, 1, "58")
    b.get(1, 2, 3, "58", status=RUNNING)  # not certainly succeeded when the walk began
    b.start(1, 0, 1, "59")
    b.get(1, 3, 6, "59", status=SUCCEEDED)  # succeeded only during the walk
    page = b.page(2, 4, 5, walk=1, page=0, items=[], query={"status": SUCCEEDED})
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-011", (shown, page))
    assert "had shown it succeeded, a terminal status, which it keeps," in finding.message


def test_a_walk_filtered_by_a_status_a_run_may_leave_demands_nothing() -> None:
    b = Build()
    b.start(1, 0, 1, "57")
    b.get(1, 2, 3, "57", status=RUNNING)
    b.page(2, 4, 5, walk=1, page=0, items=[], query={"status": RUNNING})
    assert b.check() == []


def test_an_unfinished_or_failed_walk_is_not_judged_for_completeness() -> None:
    b = Build()
    b.start(1, 0, 1, "57")
    b.page(2, 2, 3, walk=1, page=0, items=[], next_cursor="x")  # never followed
    b.page(2, 4, 5, walk=2, page=0, items=[], next_cursor="x")
    b.page(2, 6, 7, walk=2, page=1, items=[], code=500)
    b.page(2, 8, 9, walk=2, page=1, items=[])  # a retry after a 500
    b.page(3, 4, 5, walk=3, page=0, items=[], next_cursor="x")
    b.page(3, 6, None, walk=3, page=1, items=[])
    b.page(3, 8, 9, walk=3, page=1, items=[])  # a retry after no answer
    b.page(2, 10, 11, walk=4, page=1, items=[])  # its first page is not in the history
    assert b.check() == []


# --- CONC-012: the definition snapshot -------------------------------------------------------------------


def test_conc_012_the_etag_changes() -> None:
    b = Build()
    first = b.definition(1, 0, 1, etag='W/"h1"')
    b.op("getRunDefinition", 2, 2, 3, 304, run_id="57", etag='W/"h1"', if_none_match='W/"h1"')
    other = b.definition(2, 4, 5, etag='W/"h2"')
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-012", (first, other))


def test_conc_012_names_whose_etag_a_wrong_one_is() -> None:
    # A server that mixed up concurrent definition requests: one answer carried another run's ETag.
    b = Build()
    b.op("getRun", 1, 0, 1, 200, run_id="57", body={**run("57"), "definitionHash": "h1"})
    b.op("getRun", 1, 1, 2, 200, run_id="58", body={**run("58"), "definitionHash": "h2"})
    wrong = b.definition(1, 10, 20, "57", etag='W/"h2"')
    fetching = b.definition(2, 12, 18, "58", etag='W/"h2"')
    right = b.definition(3, 30, 31, "57", etag='W/"h1"')
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-012", (wrong, right))
    assert f"op #{right}'s is the run's own definitionHash, as op #0 showed" in finding.message
    assert f"op #{wrong}'s is not this run's definitionHash but run 58's, whose definition op #{fetching}" in (
        finding.message
    )


def test_conc_012_the_workflow_changes() -> None:
    b = Build()
    first = b.definition(1, 0, 1, body={"name": "wf", "n": 2})
    other = b.definition(2, 4, 5, body={"name": "wf", "n": True})
    finding = only(b.check())
    assert (finding.requirement_id, finding.operations) == ("CONC-012", (first, other))


def test_json_equal_definitions_are_equal() -> None:
    from decimal import Decimal

    b = Build()
    b.definition(1, 0, 1, body={"name": "wf", "params": {"n": 1, "big": Decimal("1e308"), "x": [1.5]}})
    b.definition(
        2, 2, 3, body={"params": {"x": [Decimal("1.50")], "big": Decimal("1E+308"), "n": Decimal("1.0")}, "name": "wf"}
    )
    assert b.check() == []


# --- findings stay few ---------------------------------------------------------------------------------------


def test_one_finding_per_rule_and_run_with_two_or_three_operations() -> None:
    b = Build()
    for n in range(50):
        b.get(n % 3, 2 * n, 2 * n + 1, status=RUNNING if n % 2 else QUEUED)
    finding = only(b.check())
    assert finding.requirement_id == "CONC-005" and len(finding.operations) == 2


def test_every_rule_has_a_test_that_sees_it_fail() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for rule in RULES:
        assert f"def test_{rule.lower().replace('-', '_')}_" in source, rule


# --- a simulated correct server, and one anomaly ---------------------------------------------------------

histories = st.builds(
    correct_history,
    seed=st.integers(0, 2**32),
    operations=st.integers(10, 150),
    clients=st.integers(1, 5),
    snapshot_walks=st.booleans(),
)


@settings(max_examples=60)
@given(histories)
def test_a_correct_servers_histories_give_no_finding(history: History) -> None:
    findings = check_history(history)
    assert findings == [], findings[0].message


def _consistent_run(history: History, run_id: str, observations: tuple[Observation, ...]) -> dict[str, Any]:
    """A Run any later read of this run could show, given what every earlier response showed."""
    reach, terminal = lifecycle_graph()
    possible = set(reach)
    for obs in observations:
        possible &= reach.get(obs.status, set(reach))
    assert possible, "a correct history"
    status = sorted(possible, key=lambda s: (s not in terminal, s))[0]
    finished = next((o.finished_at for o in observations if o.status in terminal and o.finished_at), None)
    cancel = next((o.cancel_requested_at for o in observations if o.cancel_requested_at), None)
    return run(run_id, status, cancel=cancel, finished=finished if status in terminal else None)


Made = tuple[str, dict[str, Any]] | None  # (the rule it breaks, the facts of the appended operation)
Anomaly = Callable[[History, random.Random], Made]
Change = Callable[[dict[str, Any], tuple[Observation, ...]], str | None]


def _read_of(history: History, rng: random.Random, change: Change) -> Made:
    """A getRun of some run, consistent with the history but for what `change` alters (None: cannot here)."""
    runs = list(history.runs().items())
    rng.shuffle(runs)
    for run_id, observations in runs:
        body = _consistent_run(history, run_id, observations)
        rule = change(body, observations)
        if rule is not None:
            return rule, {"kind": "getRun", "status": 200, "run_id": run_id, "body": body}
    return None


def _backwards(body: dict[str, Any], observations: tuple[Observation, ...]) -> str | None:
    _, terminal = lifecycle_graph()
    seen = {obs.status for obs in observations} - {QUEUED}
    if not seen:
        return None
    body.update(status=QUEUED, finishedAt=None)
    return "CONC-006" if seen & terminal else "CONC-005"


def _cancel_changed(body: dict[str, Any], observations: tuple[Observation, ...]) -> str | None:
    if not any(obs.cancel_requested_at for obs in observations):
        return None
    body["cancelRequestedAt"] = "2030-01-01T00:00:00Z"
    return "CONC-007"


def _cancel_cleared(body: dict[str, Any], observations: tuple[Observation, ...]) -> str | None:
    if not any(obs.cancel_requested_at for obs in observations):
        return None
    body["cancelRequestedAt"] = None
    return "CONC-007"


def _finish_changed(body: dict[str, Any], observations: tuple[Observation, ...]) -> str | None:
    _, terminal = lifecycle_graph()
    if not any(obs.finished_at and obs.status in terminal for obs in observations):
        return None
    body["finishedAt"] = "2030-01-01T00:00:00Z"
    return "CONC-008"


def _keyed(history: History, rng: random.Random, make: Callable[[Operation], Made]) -> Made:
    keyed = [op for op in history.operations if op.kind == "startRun" and op.key and op.status == 202]
    return make(rng.choice(keyed)) if keyed else None


def _fresh_key(problem: str, rule: str) -> Anomaly:
    def make(history: History, rng: random.Random) -> Made:
        facts = {
            "kind": "startRun",
            "status": 409,
            "key": "fresh-key",
            "body_fingerprint": "F",
            "body": {"type": problem},
        }
        return rule, facts

    return make


def _missing(history: History, rng: random.Random) -> Made:
    shown = sorted(history.runs())
    if not shown:
        return None
    kind = rng.choice(["getRun", "getRunDefinition", "cancelRun"])
    return "CONC-009", {"kind": kind, "status": 404, "run_id": rng.choice(shown), "body": {"status": 404}}


def _duplicate(history: History, rng: random.Random) -> Made:
    runs = history.runs()
    if not runs:
        return None
    run_id = rng.choice(sorted(runs))
    item = _consistent_run(history, run_id, runs[run_id])
    body = {"items": [item, item], "nextCursor": "more"}  # not followed: only the duplicate is judged
    return "CONC-010", {"kind": "listRuns", "status": 200, "walk": 10**6, "page": 0, "body": body}


def _miss(history: History, rng: random.Random) -> Made:
    started = [op.client_id for op in history.operations if op.kind == "startRun" and op.status == 202 and op.client_id]
    if not started:
        return None
    query = {"clientId": rng.choice(started)}
    body = {"items": [], "nextCursor": None}
    return "CONC-011", {"kind": "listRuns", "status": 200, "walk": 10**6, "page": 0, "query": query, "body": body}


def _new_etag(history: History, rng: random.Random) -> Made:
    read = [op for op in history.operations if op.kind == "getRunDefinition" and op.status == 200]
    if not read:
        return None
    op = rng.choice(read)
    facts = {"kind": "getRunDefinition", "status": 200, "run_id": op.run_id, "etag": 'W/"changed"', "body": op.body}
    return "CONC-012", facts


ANOMALIES: dict[str, Anomaly] = {
    "a status moves backwards": lambda h, rng: _read_of(h, rng, _backwards),
    "cancelRequestedAt changes": lambda h, rng: _read_of(h, rng, _cancel_changed),
    "cancelRequestedAt is cleared": lambda h, rng: _read_of(h, rng, _cancel_cleared),
    "finishedAt changes": lambda h, rng: _read_of(h, rng, _finish_changed),
    "a key gets a second run": lambda h, rng: _keyed(
        h, rng, lambda op: ("CONC-001", {**_start_facts(op), "body": {"runId": "new-run", "status": QUEUED}})
    ),
    "a key takes another body": lambda h, rng: _keyed(
        h, rng, lambda op: ("CONC-002", {**_start_facts(op), "body_fingerprint": "other", "body": op.body})
    ),
    "a reused 409 without cause": _fresh_key(KEY_REUSED, "CONC-003"),
    "an in-flight 409 without cause": _fresh_key(KEY_IN_FLIGHT, "CONC-004"),
    "a shown run answers 404": _missing,
    "a walk repeats a run": _duplicate,
    "a walk misses a run": _miss,
    "a definition's ETag changes": _new_etag,
}


def _start_facts(op: Operation) -> dict[str, Any]:
    return {
        "kind": "startRun",
        "status": 202,
        "key": op.key,
        "body_fingerprint": op.body_fingerprint,
        "client_id": op.client_id,
        "credential": op.credential,
    }


@settings(max_examples=60)
@given(histories, st.sampled_from(sorted(ANOMALIES)), st.randoms(use_true_random=False))
def test_one_appended_anomaly_is_caught_and_named(history: History, name: str, rng: random.Random) -> None:
    made = ANOMALIES[name](history, rng)
    if made is None:
        return  # nothing in this history to contradict
    rule, facts = made
    end = max(t for op in history.operations for t in (op.invoked, op.completed) if t is not None)
    facts.setdefault("credential", "primary")
    appended = Operation(index=len(history), client=99, invoked=end + 1, completed=end + 2, **facts)
    findings = check_history(History([*history.operations, appended]))
    assert rule in ids(findings), (name, [f.message for f in findings])
    for finding in findings:  # the history was correct: every finding comes from the anomaly
        assert appended.index in finding.operations, finding.message
        assert 1 <= len(finding.operations) <= 3


def test_the_model_makes_every_kind_of_observation() -> None:
    history = correct_history(seed=7, operations=400)
    kinds = {(op.kind, op.status) for op in history.operations}
    assert {("startRun", 202), ("startRun", 409), ("getRun", 200), ("getRun", 404), ("listRuns", 200)} <= kinds
    assert {("cancelRun", 202), ("getRunDefinition", 200), ("getRunDefinition", 304)} <= kinds
    assert any(op.completed is None for op in history.operations)
    assert any(len(ops) > 1 for ops in history.walks.values())
    statuses = {obs.status for obs in history.observations}
    assert statuses == set(lifecycle_graph()[0])
    assert replace(history[0], exchange="ignored") == history[0]  # evidence never changes what an operation is
    assert len(set(history.operations)) == len(history)  # hashable, dict fields and all


def test_the_cyclic_collector_is_left_as_it_was() -> None:
    import gc

    history = correct_history(seed=3, operations=50)
    assert gc.isenabled()
    check_history(history)
    assert gc.isenabled()
    gc.disable()
    try:
        check_history(history)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- what one instance of a rule is (the catalog's instance lines) ---------------------------------------


def test_every_rule_says_what_one_instance_is() -> None:
    defined = {rid for rid, req in catalog().items() if req.area == "concurrency" and req.instance}
    assert defined == set(RULES)
    assert all(f"- {rid}:" in (history_checker.__doc__ or "") for rid in RULES)  # and the checker says it too


def test_a_lone_202_for_a_key_is_no_instance_of_one_run_or_one_body_per_key() -> None:
    b = Build()
    b.start(1, 0, 1, "57", key="k")
    b.start(1, 2, 3, "57", key="k", fp="B", code=409, problem=KEY_REUSED)  # another body: it could have got 202
    counts = evaluations(b.history())
    assert counts["CONC-001"] == 0, counts  # one 202: no second runId to differ
    assert counts["CONC-002"] == 1, counts  # the 409'd other body is the one instance
    b.start(2, 4, 5, "57", key="k")
    assert evaluations(b.history())["CONC-001"] == 2


def test_one_read_of_a_run_is_no_instance_of_its_terminal_status_or_cancel_stamp_staying() -> None:
    b = Build()
    b.start(1, 0, 1, "57")
    b.get(1, 2, 3, "57", status=CANCELLED, cancel=T0)
    counts = evaluations(b.history())
    assert counts["CONC-006"] == 0 and counts["CONC-007"] == 0, counts
    b.get(2, 4, 5, "57", status=CANCELLED, cancel=T0)
    counts = evaluations(b.history())
    assert counts["CONC-006"] == 2 and counts["CONC-007"] == 2, counts


def test_a_walk_that_could_miss_nothing_is_no_instance_of_completeness() -> None:
    b = Build()
    b.page(2, 0, 1, walk=1, page=0, items=[], query={"clientId": "etl"})  # nothing existed before it began
    assert evaluations(b.history())["CONC-011"] == 0
    b.start(1, 2, 3, "57")
    b.page(2, 4, 5, walk=2, page=0, items=[run("57")], query={"clientId": "etl"})
    assert evaluations(b.history())["CONC-011"] == 1


def test_unanswered_operations_are_never_instances() -> None:
    b = Build()
    b.start(1, 0, 1, "57", key="k")
    b.start(1, 2, None, key="k")
    b.get(1, 3, None, "57")
    b.get(1, 4, None, "57")
    b.definition(1, 5, None, "57")
    b.definition(1, 6, None, "57")
    b.page(2, 7, None, walk=1, page=0, items=[])
    counts = evaluations(b.history())
    assert counts == {"CONC-003": 1, "CONC-004": 1}, counts  # the one answered keyed start, nothing else
