"""PAGE-004 and CANCEL-004 judged from traffic (conformance/observe_walks.py, observe_cancels.py).

Most recordings are a few hand-made NDJSON lines with millisecond times, so that which answer
arrived before which request was sent is what the test says; the edge cases are the premises a
recording cannot prove, which must give no finding. The last tests observe the suite's own recorded
runs: against the reference server (judged, and clean) and against the self-check's faults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.servers import fault
from support.tokens import TOKENS
from support.traffic import record

from conformance.observe import observe
from conformance.results import Status

RUN, NEWER, NEWEST = "run-old", "run-new", "run-newest"
WORKFLOW = {"name": "w", "steps": [{"id": "a", "action": "noop"}]}


def _line(
    method: str, path: str, status: int, body: Any, at: float, *, token: str = "walker", sent: Any = None
) -> dict[str, Any]:
    """One exchange sent `at` seconds after noon, answered 5 ms later."""
    seconds, millis = divmod(round(at * 1000), 1000)
    minutes, seconds = divmod(seconds, 60)
    line: dict[str, Any] = {
        "time": f"2026-12-06T12:{minutes:02d}:{seconds:02d}.{millis:03d}Z",
        "duration_ms": 5,
        "method": method,
        "path": path,
        "status": status,
        "request_headers": {"Authorization": f"Bearer {token}"},
        "response_headers": {"Content-Type": "application/problem+json" if status >= 400 else "application/json"},
        "response_body": json.dumps(body),
    }
    if sent is not None:
        line["request_body"] = json.dumps(sent)
    return line


def _run(run_id: str, created: str, status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {
        "runId": run_id,
        "clientId": "a",
        "status": status,
        "definitionHash": "sha256:" + "0" * 64,
        "inputs": {},
        "createdAt": created,
        "startedAt": created,
        "finishedAt": created if status in ("succeeded", "failed", "cancelled") else None,
        "cancelRequestedAt": None,
    } | fields


def _rows(tmp_path: Path, name: str, lines: list[dict[str, Any]]) -> dict[str, tuple[Status, int]]:
    path = tmp_path / f"{name}.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report, _ = observe([path], tmp_path / name)
    return {row.id: (row.status, row.evaluations) for row in report.requirements}


def _page(query: str, runs: list[dict[str, Any]], next_cursor: str | None, at: float, **kw: Any) -> dict[str, Any]:
    return _line("GET", f"/api/v1/runs?{query}", 200, {"items": runs, "nextCursor": next_cursor}, at, **kw)


# --- PAGE-004: a cursor, and nothing after it -------------------------------------------------------------


def test_a_cursor_that_leads_to_an_empty_page_is_caught(tmp_path: Path) -> None:
    two = [_run(NEWEST, "2026-12-06T11:00:02Z"), _run(NEWER, "2026-12-06T11:00:01Z")]
    after = [_run(RUN, "2026-12-06T11:00:00Z")]

    def walk(query: str, rest: list[dict[str, Any]], name: str) -> tuple[Status, int]:
        lines = [_page(f"{query}limit=2", two, "c1", 1.0), _page(f"{query}limit=2&cursor=c1", rest, None, 2.0)]
        return _rows(tmp_path, name, lines)["PAGE-004"]

    assert walk("clientId=a&", [], "empty") == (Status.FAILED, 1)
    assert walk("clientId=a&", after, "more") == (Status.PASSED, 1)
    # Under a status filter, the runs after the first page may have left it (a run that was running ended).
    assert walk("status=running&", [], "filtered")[0] is Status.NOT_RUN


def test_an_empty_page_under_a_limit_the_contract_refuses_is_no_instance(tmp_path: Path) -> None:
    two = [_run(NEWEST, "2026-12-06T11:00:02Z"), _run(NEWER, "2026-12-06T11:00:01Z")]
    lines = [_page("limit=2", two, "c1", 1.0), _page("limit=0&cursor=c1", [], None, 2.0)]
    assert _rows(tmp_path, "limit0", lines)["PAGE-004"][0] is Status.NOT_RUN  # PAGE-003's business


def test_a_walk_whose_filter_was_sent_twice_is_not_judged(tmp_path: Path) -> None:
    # Which clientId the server filtered by is unknown, so which runs follow its pages is unknown too.
    started = _line("POST", "/api/v1/runs", 202, {"runId": RUN, "status": "queued"}, 0.0,
                    sent={"clientId": "a", "workflow": WORKFLOW})  # fmt: skip
    shown = _line("GET", f"/api/v1/runs/{RUN}", 200, _run(RUN, "2026-12-06T11:00:00Z"), 0.1)
    two = [_run(NEWEST, "2026-12-06T11:00:02Z"), _run(NEWER, "2026-12-06T11:00:01Z")]
    lines = [started, shown, _page("clientId=b&clientId=a&limit=2", two, None, 1.0)]
    assert _rows(tmp_path, "twice", lines)["PAGE-004"][0] is Status.NOT_RUN


# --- PAGE-004: null, and a run after it -------------------------------------------------------------------


def _proven_then_walked(
    tmp_path: Path,
    name: str,
    *,
    shown_at: float = 0.0,
    shown_to: str = "walker",
    created: str = "2026-12-06T11:00:00Z",
    next_cursor: str | None = None,
    page: list[dict[str, Any]] | None = None,
) -> tuple[Status, int]:
    """Run RUN started and then shown (createdAt `created`) at `shown_at`; a walk of clientId a at 1 s whose
    only page holds two newer runs and says `next_cursor`."""
    started = _line("POST", "/api/v1/runs", 202, {"runId": RUN, "status": "queued"}, shown_at, token=shown_to,
                    sent={"clientId": "a", "workflow": WORKFLOW})  # fmt: skip
    shown = _line("GET", f"/api/v1/runs/{RUN}", 200, _run(RUN, created), shown_at + 0.1, token=shown_to)
    two = [_run(NEWEST, "2026-12-06T11:00:02Z"), _run(NEWER, "2026-12-06T11:00:01Z")]
    listed = _page("clientId=a&limit=2", two if page is None else page, next_cursor, 1.0)
    return _rows(tmp_path, name, [started, shown, listed])["PAGE-004"]


def test_a_null_cursor_before_a_run_proven_to_follow_is_caught(tmp_path: Path) -> None:
    assert _proven_then_walked(tmp_path, "null") == (Status.FAILED, 1)
    assert _proven_then_walked(tmp_path, "cursor", next_cursor="c1") == (Status.PASSED, 1)
    # An empty first page: every run follows the start of a walk.
    assert _proven_then_walked(tmp_path, "empty", page=[]) == (Status.FAILED, 1)


def test_a_run_the_walk_cannot_be_held_to_is_no_instance(tmp_path: Path) -> None:
    # Shown to another credential: a server may show each credential its own runs.
    assert _proven_then_walked(tmp_path, "other", shown_to="someone-else")[0] is Status.NOT_RUN
    # Shown only after the walk began (the page was sent at 1 s): it may have been created during the walk.
    assert _proven_then_walked(tmp_path, "later", shown_at=1.0)[0] is Status.NOT_RUN
    # As old as the page's last run: where the tie-break puts it is the server's.
    assert _proven_then_walked(tmp_path, "equal", created="2026-12-06T12:00:01+01:00")[0] is Status.NOT_RUN


def test_a_run_older_than_an_empty_pages_predecessor_follows_it(tmp_path: Path) -> None:
    started = _line("POST", "/api/v1/runs", 202, {"runId": RUN, "status": "queued"}, 0.0,
                    sent={"clientId": "a", "workflow": WORKFLOW})  # fmt: skip
    shown = _line("GET", f"/api/v1/runs/{RUN}", 200, _run(RUN, "2026-12-06T11:00:00Z"), 0.1)
    two = [_run(NEWEST, "2026-12-06T11:00:02Z"), _run(NEWER, "2026-12-06T11:00:01Z")]
    lines = [started, shown, _page("limit=2", two, "c1", 1.0), _page("limit=2&cursor=c1", [], None, 2.0)]
    # Both pages are instances. RUN follows the first, so its cursor was right: the empty page that ended the
    # walk before RUN is the one that broke PAGE-004, and the finding names it, not the first.
    assert _rows(tmp_path, "predecessor", lines)["PAGE-004"] == (Status.FAILED, 2)
    report, _ = observe([tmp_path / "predecessor.ndjson"], tmp_path / "again")
    message = next(row for row in report.requirements if row.id == "PAGE-004").evidence[0].message
    assert "(walk 0, page 1) → 200, " in message and "answered nextCursor null, but run run-old" in message
    assert "gave nextCursor" not in message


def test_an_empty_page_that_lost_a_run_is_not_blamed_on_the_cursor_before_it(tmp_path: Path) -> None:
    started = _line("POST", "/api/v1/runs", 202, {"runId": RUN, "status": "queued"}, 0.0,
                    sent={"clientId": "a", "workflow": WORKFLOW})  # fmt: skip
    shown = _line("GET", f"/api/v1/runs/{RUN}", 200, _run(RUN, "2026-12-06T11:00:00Z"), 0.1)
    two = [_run(NEWEST, "2026-12-06T11:00:02Z"), _run(NEWER, "2026-12-06T11:00:01Z")]
    lines = [started, shown, _page("limit=2", two, "c1", 1.0), _page("limit=2&cursor=c1", [], "c2", 2.0)]
    # RUN follows the first page, so its cursor was right; the empty page lost RUN (PAGE-006's) but still gives
    # a cursor, which is right too: where a walk ends, nothing was said wrongly.
    assert _rows(tmp_path, "lost", lines)["PAGE-004"] == (Status.PASSED, 2)


# --- CANCEL-004 -------------------------------------------------------------------------------------------


def _cancelled_after_finish(
    tmp_path: Path,
    name: str,
    answer: tuple[int, Any],
    *,
    cancel_at: float = 1.0,
    read_by: str = "walker",
    after: dict[str, Any] | None = None,
) -> tuple[Status, int]:
    """getRun showed RUN succeeded at 0 s; a cancel of it at `cancel_at` got `answer`; `after` read at 2 s."""
    finished = _run(RUN, "2026-12-06T11:00:00Z")
    lines = [
        _line("GET", f"/api/v1/runs/{RUN}", 200, finished, 0.0, token=read_by),
        _line("POST", f"/api/v1/runs/{RUN}/cancel", answer[0], answer[1], cancel_at),
    ]
    if after is not None:
        lines.append(_line("GET", f"/api/v1/runs/{RUN}", 200, after, 2.0))
    return _rows(tmp_path, name, lines)["CANCEL-004"]


def test_a_cancel_of_a_finished_run_that_answers_or_changes_otherwise_is_caught(tmp_path: Path) -> None:
    kept = (202, {"runId": RUN, "status": "succeeded"})
    assert _cancelled_after_finish(tmp_path, "kept", kept) == (Status.PASSED, 1)
    assert _cancelled_after_finish(tmp_path, "flipped", (202, {"runId": RUN, "status": "cancelled"}))[0] is (
        Status.FAILED
    )
    problem = {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "finished"}
    assert _cancelled_after_finish(tmp_path, "409", (409, problem))[0] is Status.FAILED
    # The answer kept the status, but the cancel stamped the finished run, and a later read shows it.
    stamped = _run(RUN, "2026-12-06T11:00:00Z", cancelRequestedAt="2026-12-06T12:00:01Z")
    assert _cancelled_after_finish(tmp_path, "stamped", kept, after=stamped)[0] is Status.FAILED
    # The same instants in another form are no change.
    same = _run(RUN, "2026-12-06T11:00:00.000+00:00")
    assert _cancelled_after_finish(tmp_path, "same", kept, after=same) == (Status.PASSED, 1)


def test_a_cancel_not_proven_to_follow_the_finish_is_no_instance(tmp_path: Path) -> None:
    flipped = (202, {"runId": RUN, "status": "cancelled"})
    # Sent 2 ms into the read: the run may have finished while the cancel was handled (CANCEL-002's case).
    assert _cancelled_after_finish(tmp_path, "overlap", flipped, cancel_at=0.002)[0] is Status.NOT_RUN
    # Shown finished to another credential: its run IDs may name other runs.
    assert _cancelled_after_finish(tmp_path, "other", flipped, read_by="someone-else")[0] is Status.NOT_RUN
    # Changes no cancel makes (a status going back, finishedAt rewritten) are CONC-005..008's, not the cancel's.
    kept = (202, {"runId": RUN, "status": "succeeded"})
    for name, after in [
        ("back", _run(RUN, "2026-12-06T11:00:00Z", status="queued")),
        ("rewritten", _run(RUN, "2026-12-06T11:00:00Z", finishedAt="2026-12-06T11:00:01Z")),
    ]:
        assert _cancelled_after_finish(tmp_path, name, kept, after=after) == (Status.PASSED, 1)
    # A 404 is CONC-009's, a 401 AUTH's, a 503 ERR-001's.
    for status in (404, 401, 503):
        problem = {"type": "about:blank", "title": "x", "status": status}
        assert _cancelled_after_finish(tmp_path, f"s{status}", (status, problem))[0] is Status.NOT_RUN


# --- the suite's recordings -------------------------------------------------------------------------------


def test_the_reference_servers_recording_holds_instances_of_both_and_no_violation(tmp_path: Path) -> None:
    report, _ = observe([record(None, tmp_path / "run")], tmp_path / "observe")
    rows = {row.id: row for row in report.requirements}
    for rid in ("PAGE-004", "CANCEL-004"):
        assert rows[rid].status is Status.PASSED and rows[rid].evaluations > 0, (rid, rows[rid].message)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cancel-finished-flips", "CANCEL-004"),  # a finished run's cancel answers cancelled
        ("page-cursor-on-full-last-page", "PAGE-004"),  # a full last page gives a cursor to an empty page
    ],
)
def test_a_recorded_fault_is_found_on_its_id(name: str, expected: str, tmp_path: Path) -> None:
    item = fault(name)
    recording = record(item.build(TOKENS), tmp_path / "run", *item.select)
    report, _ = observe([recording], tmp_path / "observe")
    row = next(row for row in report.requirements if row.id == expected)
    assert row.status is Status.FAILED, (name, row.message)
    assert f"{recording}, line " in row.evidence[0].message and row.evidence[0].exchanges
