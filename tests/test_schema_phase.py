"""The Schemathesis checks (conformance/schema_phase.py) against live servers: invalid requests held
to the exact status, evaluations only where a check could have failed, a deadline that cuts, and
no request a correct server's HTTP layer must refuse.

Each runs one check at the quick profile (a second or two each), never the suite.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from support.check_runs import explain, open_session, run_named_check
from support.faults_schema import DeadlineAfter
from support.servers import serve
from support.tokens import TOKENS

from conformance.context import CheckContext
from conformance.outcomes import Cut, Outcome
from conformance.schema_phase import _load, _new_phase, run_operation
from conformance.session import Session
from conformance.spec import required_response_headers
from reference_impl.app import create_app

_OPERATIONS = [
    ("getRunDefinition", re.compile(r"/api/v1/runs/[^/?]+/definition$"), "GET"),
    ("cancelRun", re.compile(r"/api/v1/runs/[^/?]+/cancel$"), "POST"),
    ("getRun", re.compile(r"/api/v1/runs/[^/?]+$"), "GET"),
    ("startRun", re.compile(r"/api/v1/runs$"), "POST"),
    ("listRuns", re.compile(r"/api/v1/runs$"), "GET"),
]


def _operation(method: str, url: str) -> str | None:
    path = url.split("?", 1)[0]
    return next((op for op, pattern, verb in _OPERATIONS if verb == method and pattern.search(path)), None)


@pytest.mark.parametrize("fault", ["type-errors-415", "type-errors-422"])
def test_a_4xx_other_than_400_to_an_invalid_body_fails_err_004(fault: str) -> None:
    status = fault.rsplit("-", 1)[1]
    with serve(fault) as url, open_session(url, profile="quick", seed=1) as session:
        run = run_named_check("schemathesis_start_run", session)
    assert run.failed("ERR-004"), explain(run)
    message = run.evidence["ERR-004"][0].message
    assert f"answered {status}" in message and "demands 400" in message, message
    assert run.evidence["ERR-004"][0].exchanges


def test_the_reference_server_passes_err_004_on_evidence(reference_url: str) -> None:
    with open_session(reference_url, profile="quick", seed=1) as session:
        run = run_named_check("schemathesis_start_run", session)
    found = run.outcomes["ERR-004"]
    assert found.outcome is Outcome.PASSED and found.evaluations > 10, explain(run)


def test_schema_004_is_counted_only_where_the_spec_requires_a_header(reference_url: str) -> None:
    with open_session(reference_url, profile="quick", seed=1) as session:
        get_run = run_named_check("schemathesis_get_run", session)
        stateful = run_named_check("schemathesis_stateful", session)
    # getRun documents no required header for 200 or 404: none of its answers is an instance.
    assert "SCHEMA-004" not in get_run.outcomes, get_run.outcomes
    instances = [
        e
        for e in stateful.exchanges
        if e.status is not None
        and (op := _operation(e.method, e.url)) is not None
        and required_response_headers(op, e.status)
    ]
    assert instances, "the stateful phase read no definition: nothing here shows the count"
    assert stateful.outcomes["SCHEMA-004"].evaluations == len(instances), explain(stateful)


def test_schema_008_is_counted_only_on_reads_a_404_would_have_failed(reference_url: str) -> None:
    # The default profile's 15 scenarios: the quick one's 3 may follow no link at all.
    with open_session(reference_url, profile="default", seed=1) as session:
        run = run_named_check("schemathesis_stateful", session)
    below_400 = [e for e in run.exchanges if e.status is not None and e.status < 400]
    reads = [e for e in below_400 if _operation(e.method, e.url) in {"getRun", "getRunDefinition", "cancelRun"}]
    found = run.outcomes["SCHEMA-008"]
    # Before issue 18 every answer below 400 counted; only a read of the run a startRun made can be a 404 finding.
    assert found.outcome is Outcome.PASSED and 0 < found.evaluations <= len(reads) < len(below_400), explain(run)


def test_schema_008_still_fails_when_a_new_run_is_not_found() -> None:
    with serve("schema-read-lag") as url, open_session(url, profile="quick", seed=1) as session:
        run = run_named_check("schemathesis_stateful", session)
    assert run.failed("SCHEMA-008"), explain(run)


def _cut_after(answers: int, check: Callable[[Session], Any]) -> Any:
    app = DeadlineAfter(create_app(list(TOKENS)), answers)
    with serve(app) as url, open_session(url, profile="quick", seed=1) as session:
        app.session = session
        return check(session)


def test_a_deadline_inside_the_phase_cuts_it_and_says_how_far_it_got() -> None:
    def cut(session: Session) -> str:
        with pytest.raises(Cut) as raised:
            run_operation(CheckContext(session, "schemathesis_start_run"), "startRun")
        return raised.value.reason

    reason = _cut_after(3, cut)
    found = re.search(r"cut by --deadline after (\d+) of (\d+) cases", reason)
    assert found is not None, reason
    assert int(found[1]) == 3 and int(found[2]) > 3, reason


def test_a_cut_check_leaves_what_it_did_not_judge_not_run() -> None:
    # Cut at the first answer: the examples phase's valid body, so no invalid body was judged.
    run = _cut_after(1, lambda session: run_named_check("schemathesis_start_run", session))
    found = run.outcomes["ERR-004"]
    assert found.outcome is Outcome.NOT_RUN and "cut by --deadline after 1 of" in found.reason, run.outcomes
    assert not [rid for rid, o in run.outcomes.items() if o.outcome in {Outcome.FAILED, Outcome.ERROR}], explain(run)


def test_framing_headers_are_never_sent(reference_url: str) -> None:
    # Seen with --seed 694949571 --select SCHEMA-001: a generated `content-length: ""` on a GET got
    # uvicorn's plain-text 400 before the app saw it, a SCHEMA-001 and ERR-002 failure of a correct server.
    with open_session(reference_url, profile="quick", seed=1) as session:
        ctx = CheckContext(session, "schemathesis_get_run_definition")
        schema = _load(session, 1, "getRunDefinition")
        operations = [r.ok() for r in schema.get_all_operations()]
        operation = next(o for o in operations if o.definition.raw.get("operationId") == "getRunDefinition")
        framing = {"content-length": "", "Transfer-Encoding": "chunked", "Expect": "100-continue"}
        headers = {"Authorization": f"Bearer {session.client.token}", "X-Extra": "1", **framing}
        case = operation.Case(path_parameters={"runId": "rc-no-such-run"}, headers=copy.deepcopy(headers))
        phase = _new_phase(ctx)
        try:
            response = phase.call(case)
        finally:
            phase.http.close()
    assert response is not None and response.status_code == 404, response and response.content
    sent = {name.lower(): value for name, value in response.request.headers.items()}
    assert sent.get("x-extra") == "1"
    assert sent.get("content-length") != "" and "transfer-encoding" not in sent and "expect" not in sent
