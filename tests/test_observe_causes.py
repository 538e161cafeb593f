"""A 409 whose cause the traffic does not hold (CONC-003, CONC-004) is judged only where the cause cannot be missing.

A key-reused 409's cause is another body sent with the key at any time before, perhaps before the
recording began; an in-flight 409's is a request with the key meanwhile, perhaps one that went around
the recorder (another gateway node). Observe judges them only with --complete-recording (the traffic
holds every request the server got, from its start), and never on a key used with a body the
recording lacks (that use may be the cause).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.cli import main
from conformance.observe import observe
from conformance.results import RunReport, Status
from conformance.spec import KEY_IN_FLIGHT, KEY_REUSED

BODY = {"clientId": "a", "workflow": {"name": "w", "steps": [{"id": "s", "action": "noop"}]}}
ANOTHER = {**BODY, "clientId": "b"}


def _start(time: str, body: dict[str, Any] | None, *, status: int = 202, problem: str = "") -> dict[str, Any]:
    line: dict[str, Any] = {
        "time": time,
        "duration_ms": 5,
        "method": "POST",
        "path": "/api/v1/runs",
        "status": status,
        "request_headers": {"Authorization": "Bearer cause-token", "Idempotency-Key": "k-1"},
        "response_headers": {"Content-Type": "application/json"},
        "response_body": json.dumps({"runId": "run-1", "status": "queued"}),
    }
    if body is not None:
        line["request_body"] = json.dumps(body)
    if status == 409:
        line["response_headers"] = {"Content-Type": "application/problem+json"}
        line["response_body"] = json.dumps({"type": problem, "title": "conflict", "status": 409})
    return line


def _observed(tmp_path: Path, name: str, lines: list[dict[str, Any]], *, complete: bool) -> RunReport:
    path = tmp_path / f"{name}.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report, _ = observe([path], tmp_path / name, complete=complete)
    return report


def _row(report: RunReport, rid: str) -> tuple[Status, int]:
    row = next(r for r in report.requirements if r.id == rid)
    return row.status, row.evaluations


def test_a_key_reused_409_with_no_cause_in_the_traffic_is_judged_only_on_a_complete_recording(tmp_path: Path) -> None:
    # The first request the recording holds with this key got "key reused": its cause may predate the recording.
    lines = [_start("2026-12-07T10:00:00Z", BODY, status=409, problem=KEY_REUSED)]
    assert _row(_observed(tmp_path, "partial", lines, complete=False), "CONC-003") == (Status.NOT_RUN, 0)
    assert _row(_observed(tmp_path, "whole", lines, complete=True), "CONC-003") == (Status.FAILED, 1)


def test_an_in_flight_409_with_nothing_overlapping_in_the_traffic_is_judged_only_on_a_complete_recording(
    tmp_path: Path,
) -> None:
    # A request with this key may have reached the server around the recorder (another gateway node).
    lines = [
        _start("2026-12-07T10:00:00Z", BODY),
        _start("2026-12-07T10:00:05Z", BODY, status=409, problem=KEY_IN_FLIGHT),
    ]
    assert _row(_observed(tmp_path, "partial", lines, complete=False), "CONC-004") == (Status.NOT_RUN, 0)
    assert _row(_observed(tmp_path, "whole", lines, complete=True), "CONC-004") == (Status.FAILED, 2)


def test_a_use_of_the_key_whose_body_the_recording_lacks_may_be_the_cause(tmp_path: Path) -> None:
    # Even on a complete recording: the bodiless use may have carried another body (key reused) or still
    # been in flight at the server (an in-flight 409 overlapping it is the contract's answer).
    reused = [
        _start("2026-12-07T10:00:00Z", None),
        _start("2026-12-07T10:00:05Z", BODY, status=409, problem=KEY_REUSED),
    ]
    assert _row(_observed(tmp_path, "reused", reused, complete=True), "CONC-003")[0] is Status.NOT_RUN
    overlapping = {**_start("2026-12-07T10:00:00Z", None), "duration_ms": 10_000}
    in_flight = [overlapping, _start("2026-12-07T10:00:05Z", BODY, status=409, problem=KEY_IN_FLIGHT)]
    assert _row(_observed(tmp_path, "in-flight", in_flight, complete=True), "CONC-004")[0] is Status.NOT_RUN


def test_the_command_line_says_the_recording_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    path.write_text(json.dumps(_start("2026-12-07T10:00:00Z", BODY, status=409, problem=KEY_REUSED)) + "\n")
    out = ["--report-dir", str(tmp_path / "r")]
    assert main(["observe", str(path), *out]) == 0
    assert main(["observe", str(path), "--complete-recording", *out]) == 1
