"""SCHEMA-004 on traffic: the headers the spec marks required are judged on their values too, as a run does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.observe import observe
from conformance.results import RunReport, Status

RUN = "run_01JDQ4Y7V9K2M3N4P5Q6R7S8T9"
HASH = "sha256:" + "5f0c8a4b" * 8
WORKFLOW = {"name": "etl", "steps": [{"id": "a", "action": "noop"}]}


def _row(report: RunReport, rid: str) -> tuple[Status, str]:
    row = next(r for r in report.requirements if r.id == rid)
    return row.status, row.message


def _observed(tmp_path: Path, name: str, lines: list[dict[str, Any]]) -> RunReport:
    path = tmp_path / f"{name}.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report, _ = observe([path], tmp_path / name)
    return report


def _definition(etag: str) -> dict[str, Any]:
    return {
        "time": "2026-12-06T12:00:00Z",
        "duration_ms": 3,
        "method": "GET",
        "path": f"/api/v1/runs/{RUN}/definition",
        "status": 200,
        "request_headers": {"Authorization": "Bearer header-token"},
        "response_headers": {"Content-Type": "application/json", "ETag": etag},
        "response_body": json.dumps(WORKFLOW),
    }


def _unauthorized(challenge: str) -> dict[str, Any]:
    problem = {"type": "about:blank", "title": "Unauthorized", "status": 401}
    return {
        "time": "2026-12-06T12:00:00Z",
        "duration_ms": 3,
        "method": "GET",
        "path": f"/api/v1/runs/{RUN}",
        "status": 401,
        "request_headers": {},
        "response_headers": {"Content-Type": "application/problem+json", "WWW-Authenticate": challenge},
        "response_body": json.dumps(problem),
    }


def test_a_required_header_whose_value_breaks_its_schema_is_a_violation_naming_it(tmp_path: Path) -> None:
    status, message = _row(_observed(tmp_path, "strong", [_definition(f'"{HASH}"')]), "SCHEMA-004")
    assert status is Status.FAILED, message  # a strong ETag where the spec's WeakETag demands W/"..."
    assert "ETag" in message and f'"{HASH}"' in message and "schema" in message, message
    status, message = _row(_observed(tmp_path, "upper", [_definition(f'W/"{HASH.upper()}"')]), "SCHEMA-004")
    assert status is Status.FAILED, message


def test_required_headers_with_values_that_match_their_schemas_pass(tmp_path: Path) -> None:
    # RFC 9110 §5.5: the whitespace around a field value is not part of it.
    report = _observed(tmp_path, "good", [_definition(f' W/"{HASH}"\t'), _unauthorized('Bearer realm="runs"')])
    status, message = _row(report, "SCHEMA-004")
    assert status is Status.PASSED and message.startswith("2 instances"), message


def test_a_401_challenge_is_judged_through_the_spec_s_shared_response(tmp_path: Path) -> None:
    # The 401 is a $ref to components/responses/Unauthorized, whose WWW-Authenticate is required.
    status, message = _row(_observed(tmp_path, "basic", [_unauthorized('Basic realm="runs"')]), "SCHEMA-004")
    assert status is Status.FAILED and "WWW-Authenticate" in message, message
