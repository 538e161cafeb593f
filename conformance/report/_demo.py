"""A synthetic run with every status, for the report tests and for looking at the report.

python -m conformance.report._demo DIR    # writes DIR/conformance.{json,html} and DIR/junit.xml
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.catalog import catalog
from conformance.results import Cleanup, Evidence, Exchange, RequirementResult, RunReport, Status, Verdict

__all__ = ["DEMO_STATUSES", "demo_report"]

BASE = "http://127.0.0.1:8080"
# Requirements given a status other than passed; everything else passes.
DEMO_STATUSES: dict[str, Status] = {
    "ERR-001": Status.FAILED,
    "IDEM-002": Status.FAILED,
    "PAGE-006": Status.FAILED,
    "SCHEMA-006": Status.WARNING,
    "ETAG-004": Status.ERROR,
    "CANCEL-004": Status.SKIPPED,
    "AUTH-005": Status.SKIPPED,
    "LIFE-005": Status.NOT_RUN,
    "PAGE-010": Status.NOT_SELECTED,
}


def _exchange(method: str, path: str, status: int | None, body: str | None, response: str | None) -> Exchange:
    headers = {"accept": "application/json, application/problem+json", "authorization": "Bearer [redacted]"}
    if body:
        headers["content-type"] = "application/json"
    curl = f'curl -i -X {method} -H "Authorization: Bearer $RUNS_TOKEN"'
    if body:
        curl += f" -H 'Content-Type: application/json' --data-binary '{body}'"
    return Exchange(
        method=method,
        url=f"{BASE}{path}",
        request_headers=headers,
        request_body=body,
        status=status,
        response_headers={"content-type": "application/json"} if response else {},
        response_body=response,
        elapsed_ms=12.5,
        error=None if status is not None else "ReadTimeout: timed out",
        curl=f"{curl} '{BASE}{path}'",
    )


def _evidence(req_id: str) -> list[Evidence]:
    if req_id == "ERR-001":
        body = '{"workflow": "quick", "inputs": {"n": 1e309}}'
        return [
            Evidence(
                "no_5xx_on_malformed_input",
                "POST /api/v1/runs answered 500 to a request with an out-of-range number",
                [
                    _exchange("GET", "/api/v1/runs?limit=2", 200, None, '{"items": [], "next": null}'),
                    _exchange(
                        "POST",
                        "/api/v1/runs",
                        500,
                        body,
                        '<html><script>alert("owned")</script>Internal Server Error</html>',
                    ),
                ],
                "Falsifying example: test_no_5xx(\n    body={'workflow': 'quick', 'inputs': {'n': 1e309}},\n)",
            )
        ]
    if req_id == "IDEM-002":
        return [
            Evidence(
                "idempotent_replay",
                "a replay with the same Idempotency-Key created a second run (run-2, expected run-1)",
                [
                    _exchange("POST", "/api/v1/runs", 202, '{"workflow": "quick"}', '{"runId": "run-1"}'),
                    _exchange("POST", "/api/v1/runs", 202, '{"workflow": "quick"}', '{"runId": "run-2"}'),
                ],
            )
        ]
    if req_id == "PAGE-006":
        return [
            Evidence(
                "walk_during_inserts",
                "the walk returned run-17 twice (pages 1 and 2) while runs were being created",
                [
                    _exchange("GET", "/api/v1/runs?limit=5", 200, None, '{"items": [{"runId": "run-17"}]}'),
                    _exchange("GET", "/api/v1/runs?limit=5&cursor=c2", 200, None, '{"items": [{"runId": "run-17"}]}'),
                ],
                "Falsifying example: walk(\n    page_size=5,\n    inserts_between_pages=[1, 0],\n)",
            )
        ]
    if req_id == "SCHEMA-006":
        return [
            Evidence(
                "start_run_location",
                "202 has no Location header",
                [_exchange("POST", "/api/v1/runs", 202, '{"workflow": "quick"}', '{"runId": "run-3"}')],
            )
        ]
    if req_id == "ETAG-004":
        return [
            Evidence(
                "etag_weak_comparison",
                "the check itself broke: KeyError: 'etag'",
                [_exchange("GET", "/api/v1/runs/run-1", None, None, None)],
                "Traceback (most recent call last):\n  File \"etags.py\", line 40, in check\nKeyError: 'etag'",
            )
        ]
    return []


_MESSAGES = {
    "ERR-001": "POST /api/v1/runs answered 500 to a request with an out-of-range number",
    "IDEM-002": "a replay with the same Idempotency-Key created a second run",
    "PAGE-006": "the walk returned run-17 twice (pages 1 and 2) while runs were being created",
    "SCHEMA-006": "202 has no Location header",
    "ETAG-004": "the check itself broke: KeyError: 'etag'",
    "CANCEL-004": "the fixtures have no workflow that runs long enough to cancel",
    "AUTH-005": "no second token given (--other-token)",
    "LIFE-005": "quick_run_succeeds: not reached: the check stopped at SCHEMA-005",
    "PAGE-010": "not selected",
}


def demo_report() -> RunReport:
    """A not-conformant run over the whole catalog: failures, a warning, an error, skips."""
    reqs: list[RequirementResult] = []
    for i, req in enumerate(catalog().values()):
        status = DEMO_STATUSES.get(req.id, Status.PASSED)
        result = RequirementResult.of(req, status, _MESSAGES.get(req.id, ""))
        unevaluated = status in {Status.NOT_RUN, Status.NOT_SELECTED, Status.SKIPPED, Status.ERROR}
        result.duration_s = 0.0 if status is Status.NOT_SELECTED else 0.05 + (i % 7) * 0.31
        result.evaluations = 0 if unevaluated else 1 + (i * 7) % 40
        result.evidence = _evidence(req.id)
        result.checks = [e.check for e in result.evidence]
        if status in {Status.FAILED, Status.ERROR, Status.WARNING}:
            result.rerun = f"runs-conformance run --base-url {BASE} --seed 4242 --select {req.id}"
        reqs.append(result)
    return RunReport(
        verdict=Verdict.NOT_CONFORMANT,
        exit_code=1,
        reason="3 requirements failed (3 MUST)",
        suite_version="0.1.0",
        spec_version="1.0.0",
        spec_sha256="9f2c" * 16,
        base_url=BASE,
        profile="quick",
        strict=False,
        seed=4242,
        command=f"runs-conformance run --base-url {BASE} --profile quick --seed 4242",
        started_at="2026-03-01T10:00:00+00:00",
        duration_s=83.4,
        requirements=reqs,
        cleanup=Cleanup(runs_started=57, runs_cancelled=55, errors=["run-77: cancel answered 503"]),
        session_client_id="rc-1a2b3c4d",
    )


if __name__ == "__main__":  # pragma: no cover
    from conformance.baseline import apply_baseline
    from conformance.report import write_reports

    demo = demo_report()
    apply_baseline(demo, None, strict=False)
    for written in write_reports(demo, Path(sys.argv[1] if len(sys.argv) > 1 else "reports/demo")):
        print(written)
