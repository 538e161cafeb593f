"""LIFE-001 and LIFE-002 from traffic: one client's reads of a run in turn (conformance/observe_lifecycle.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.observe import observe
from conformance.results import RunReport, Status

RUN = "run_01JDQ4Y7V9K2M3N4P5Q6R7S8T9"
CREATED, STARTED, FINISHED = "2026-12-06T11:59:00Z", "2026-12-06T11:59:01Z", "2026-12-06T11:59:02Z"


def _run(status: str, **stamps: str | None) -> dict[str, Any]:
    terminal = status in ("succeeded", "failed", "cancelled")
    run: dict[str, Any] = {
        "runId": RUN,
        "clientId": "c",
        "status": status,
        "definitionHash": "sha256:" + "0" * 64,
        "inputs": {},
        "createdAt": CREATED,
        "startedAt": None if status == "queued" else STARTED,
        "finishedAt": FINISHED if terminal else None,
        "cancelRequestedAt": None,
    }
    return run | stamps


def _read(time: str, run: dict[str, Any], client: str = "a", listed: bool = False) -> dict[str, Any]:
    return {
        "time": time,
        "duration_ms": 5,
        "method": "GET",
        "path": "/api/v1/runs?clientId=c" if listed else f"/api/v1/runs/{RUN}",
        "status": 200,
        "client": client,
        "request_headers": {"Authorization": "Bearer life-token"},
        "response_headers": {"Content-Type": "application/json"},
        "response_body": json.dumps({"items": [run], "nextCursor": None} if listed else run),
    }


def _rows(tmp_path: Path, name: str, lines: list[dict[str, Any]]) -> dict[str, tuple[Status, int, str]]:
    path = tmp_path / f"{name}.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report, _ = observe([path], tmp_path / name)
    return _by_id(report)


def _by_id(report: RunReport) -> dict[str, tuple[Status, int, str]]:
    return {r.id: (r.status, r.evaluations, r.message) for r in report.requirements}


def test_a_backward_move_one_client_saw_breaks_life_001(tmp_path: Path) -> None:
    rows = _rows(
        tmp_path,
        "back",
        [_read("2026-12-06T12:00:00Z", _run("running")), _read("2026-12-06T12:00:03Z", _run("queued"), listed=True)],
    )
    assert rows["LIFE-001"][0] is Status.FAILED, rows["LIFE-001"]
    assert "running" in rows["LIFE-001"][2] and "queued" in rows["LIFE-001"][2], rows["LIFE-001"]
    assert rows["LIFE-002"][0] is Status.NOT_RUN  # nothing terminal was seen


def test_allowed_moves_pass_and_reads_that_may_overlap_are_no_instance(tmp_path: Path) -> None:
    ok = _rows(
        tmp_path,
        "ok",
        [
            _read("2026-12-06T12:00:00Z", _run("queued")),  # anything may follow queued: no instance
            _read("2026-12-06T12:00:03Z", _run("running")),
            _read("2026-12-06T12:00:06Z", _run("succeeded"), listed=True),
        ],
    )
    assert ok["LIFE-001"][:2] == (Status.PASSED, 1), ok["LIFE-001"]  # succeeded after running
    # In one whole second the two reads may have gone either way: no order, no instance.
    same = _rows(
        tmp_path,
        "same",
        [_read("2026-12-06T12:00:00Z", _run("running")), _read("2026-12-06T12:00:00Z", _run("queued"))],
    )
    assert same["LIFE-001"][0] is Status.NOT_RUN, same["LIFE-001"]


def test_two_clients_reads_are_conc_005_s_not_life_001_s(tmp_path: Path) -> None:
    rows = _rows(
        tmp_path,
        "two",
        [_read("2026-12-06T12:00:00Z", _run("running")), _read("2026-12-06T12:00:03Z", _run("queued"), client="b")],
    )
    assert rows["CONC-005"][0] is Status.FAILED and rows["LIFE-001"][0] is Status.NOT_RUN, rows["LIFE-001"]


def test_a_terminal_run_that_changes_status_or_a_timestamp_breaks_life_002(tmp_path: Path) -> None:
    def life_002(name: str, later: dict[str, Any]) -> tuple[Status, int, str]:
        lines = [_read("2026-12-06T12:00:00Z", _run("succeeded")), _read("2026-12-06T12:00:03Z", later)]
        return _rows(tmp_path, name, lines)["LIFE-002"]

    assert life_002("same", _run("succeeded", finishedAt="2026-12-06T11:59:02.000+00:00"))[:2] == (Status.PASSED, 1)
    for name, later, said in [
        ("status", _run("cancelled"), "cancelled"),
        ("created", _run("succeeded", createdAt="2026-12-06T11:58:00Z"), "createdAt"),
        ("started", _run("succeeded", startedAt="2026-12-06T11:59:01.500Z"), "startedAt"),
        ("cancel", _run("succeeded", cancelRequestedAt="2026-12-06T12:00:01Z"), "cancelRequestedAt"),
    ]:
        status, _, message = life_002(name, later)
        assert status is Status.FAILED and said in message, (name, message)


def test_a_started_at_that_changes_between_one_client_s_reads_breaks_life_004(tmp_path: Path) -> None:
    def life_004(name: str, later: dict[str, Any]) -> tuple[Status, int, str]:
        lines = [_read("2026-12-06T12:00:00Z", _run("running")), _read("2026-12-06T12:00:03Z", later)]
        return _rows(tmp_path, name, lines)["LIFE-004"]

    assert life_004("kept", _run("succeeded"))[0] is Status.PASSED
    status, _, message = life_004("restamped", _run("succeeded", startedAt="2026-12-06T11:59:01.500Z"))
    assert status is Status.FAILED and "startedAt" in message, message
    # Overlapping reads may be either way round, but startedAt only ever goes from null to one value.
    same = [_read("2026-12-06T12:00:00Z", _run("running")), _read("2026-12-06T12:00:00Z", _run("queued"))]
    assert _rows(tmp_path, "same", same)["LIFE-004"][0] is Status.PASSED


def test_a_finished_run_gone_from_the_client_that_saw_it_finished_breaks_life_006(tmp_path: Path) -> None:
    gone = {
        **_read("2026-12-06T12:00:03Z", _run("succeeded")),
        "status": 404,
        "response_headers": {"Content-Type": "application/problem+json"},
        "response_body": json.dumps({"type": "about:blank", "title": "Not Found", "status": 404}),
    }
    rows = _rows(tmp_path, "purged", [_read("2026-12-06T12:00:00Z", _run("succeeded")), gone])
    assert rows["LIFE-006"][:2] == (Status.FAILED, 1), rows["LIFE-006"]
    kept = _rows(
        tmp_path,
        "kept",
        [_read("2026-12-06T12:00:00Z", _run("succeeded")), _read("2026-12-06T12:00:03Z", _run("succeeded"))],
    )
    assert kept["LIFE-006"][:2] == (Status.PASSED, 1), kept["LIFE-006"]
    # Seen running only, or by another client, or in the same whole second: no instance.
    live = _rows(tmp_path, "live", [_read("2026-12-06T12:00:00Z", _run("running")), gone])
    other = _rows(tmp_path, "other", [_read("2026-12-06T12:00:00Z", _run("succeeded"), client="b"), gone])
    same = _rows(tmp_path, "same", [_read("2026-12-06T12:00:03Z", _run("succeeded")), gone])
    for rows in (live, other, same):
        assert rows["LIFE-006"][:2] == (Status.NOT_RUN, 0), rows["LIFE-006"]
