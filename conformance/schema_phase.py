"""The schema-level phase's machinery: Schemathesis 4, driven from openapi/runs.yaml (checks/schema.py registers it).

Each operation's examples, coverage and fuzzing phases (positive and negative data), and the
stateful phase along the spec's links. Every response goes through Schemathesis' built-in checks
one at a time, so each failure maps to catalog IDs through FAILURE_MAP (data, below) and carries
the recorded exchange and a curl line reading $RUNS_TOKEN.

Left out on purpose:
- positive_data_acceptance: a schema-valid request may rightly be rejected (an action the server
  does not have, duplicate step ids, an opaque cursor it never issued); and 401 counts as an
  acceptable answer there, so a wrong token would pass. Preflight guards the token instead.
- use_after_free (no DELETE here) and object_level_authorization (no per-identity objects).
- ignored_auth: checks/auth.py sends every operation without a token and with a wrong one, and
  reads the challenge too; the built-in probe re-sends with the config's Authorization header in
  the stateful phase and then reports a valid token's 200 as "invalid auth accepted".
- negative_data_rejection: any 4xx passes it, where each requirement demands one status; and
  Schemathesis' negative data is not always invalid on the wire. Each request is judged again as
  sent (conformance/schema_instances.py): exactly the demanded status is a pass, any other a failure.

An evaluation counts only where the Schemathesis check could have failed: SCHEMA-004 on answers for
which the spec marks a header required, SCHEMA-008 on reads of a run a startRun just created (where
a 404 would have been a finding). A deadline reached mid-phase raises Cut (conformance.outcomes),
with how far the phase got: what it did not finish is not run, never passed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis

from conformance._compat.schemathesis import build_operation_test, is_negative
from conformance.client import answer_of_requests, unanswered_exchange
from conformance.context import CheckContext
from conformance.outcomes import Cut
from conformance.registry import Skipped
from conformance.results import Exchange
from conformance.schema_instances import (
    NEGATIVE_OPERATION_MAP,
    NEGATIVE_PARAMETER_MAP,
    WireRequest,
    invalid_request_instance,
)
from conformance.session import Session
from conformance.spec import load_spec, required_response_headers

__all__ = [
    "ALWAYS_JUDGED",
    "COVERED_AT_EVERY_BUDGET",
    "EXCLUDED_CHECKS",
    "FAILURE_MAP",
    "FRAMING_HEADERS",
    "NEGATIVE_OPERATION_MAP",
    "NEGATIVE_PARAMETER_MAP",
    "run_operation",
    "run_stateful",
]

# Schemathesis check name -> the catalog IDs a failure of it breaks. Invalid requests are judged
# by conformance/schema_instances.py instead of negative_data_rejection (NEGATIVE_*_MAP there).
FAILURE_MAP: dict[str, tuple[str, ...]] = {
    "not_a_server_error": ("ERR-001",),
    "status_code_conformance": ("SCHEMA-001",),
    "content_type_conformance": ("SCHEMA-003",),
    "response_headers_conformance": ("SCHEMA-004",),
    "response_schema_conformance": ("SCHEMA-002",),
    "unsupported_method": ("ERR-011",),
    "allow_header_conformance": ("ERR-011",),
    "ensure_resource_availability": ("SCHEMA-008",),
}
EXCLUDED_CHECKS = (
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "use_after_free",
    "object_level_authorization",
    "ignored_auth",
)
EVIDENCE_PER_KIND = 1  # exchanges kept per distinct failure (requirement, operation, title)
TRANSPORT_ERRORS_TO_STOP = 3


# What every response of every case is judged by; the other mapped IDs are judged only where their
# Schemathesis check applies (a 405, an invalid request, a header the spec requires, a link
# followed), so a check names only these: naming an ID it may not judge would make
# `--select <check>` an incomplete run by chance.
ALWAYS_JUDGED = ("SCHEMA-001", "SCHEMA-002", "SCHEMA-003", "ERR-001")
# Operations whose coverage phase runs at every budget, quick included (about half a second each):
# its invalid requests are deterministic, so the requirements their bodies and parameters break
# get instances whatever the seed (the quick profile's 5 fuzzed cases often hold none).
COVERED_AT_EVERY_BUDGET = ("startRun", "listRuns")
# Framing and hop-by-hop headers (RFC 9110 §7.6.1, §8.6; RFC 9112 §6): Schemathesis may generate
# them as extra headers (`content-length: ""` on a GET), and then the server's HTTP layer answers a
# plain-text 400 before any application code runs; they describe the connection, not the request.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "keep-alive", "te", "trailer", "upgrade", "expect"}
)
DEADLINE_PASSED = "the overall deadline passed"


# --- loading the schema ------------------------------------------------------------------------
def _load(session: Session, seed: int | None, operation_id: str | None = None) -> Any:
    import schemathesis

    raw = copy.deepcopy(load_spec())
    raw["servers"] = [{"url": session.base_url}]
    schema = schemathesis.openapi.from_dict(raw)
    token = session.client.token or ""
    schema.config.update(
        base_url=session.base_url,
        headers={"Authorization": f"Bearer {token}"},
        request_timeout=session.request_timeout,
    )
    schema.config.generation.update(
        max_examples=session.profile.schema_examples,
        deterministic=session.deterministic,
        database="none",
    )
    schema.config.checks.update(excluded_check_names=list(EXCLUDED_CHECKS))
    if session.profile.name == "quick" and operation_id not in COVERED_AT_EVERY_BUDGET:
        # Building the coverage phase's cases costs CPU per operation; the quick profile (a smoke
        # run) keeps examples and fuzzing elsewhere, and the hand-written checks of
        # checks/errors.py and checks/auth.py still send their boundary cases.
        schema.config.phases.update(phases=["examples", "fuzzing", "stateful"])
    schema.config.output.sanitization.enabled = True
    if seed is not None:
        # Always explicit: Schemathesis also draws coverage values and rule orders from it, so even
        # a derandomised run needs it to make the same requests twice.
        schema.config.seed = seed
    return schema


def _check_functions() -> dict[str, Callable[..., Any]]:
    import schemathesis.checks as st_checks

    st_checks.load_all_checks()
    functions: dict[str, Callable[..., Any]] = {}
    for name in FAILURE_MAP:
        fn = getattr(st_checks, name, None)
        if fn is None:
            from schemathesis.specs.openapi import checks as openapi_checks

            fn = getattr(openapi_checks, name, None)
        if fn is not None:
            functions[name] = fn
    return functions


# --- the state of one phase run -------------------------------------------------------------
@dataclass
class _Phase:
    ctx: CheckContext
    http: Any  # requests.Session
    checks: dict[str, Callable[..., Any]]
    seen: dict[tuple[str, str, str], int] = field(default_factory=dict)
    transport_errors: int = 0
    stopped: str = ""
    cases: int = 0  # cases sent
    offered: int = 0  # cases Schemathesis generated, sent or not
    accepted_steps: list[dict[str, Any]] = field(init=False)  # the fixtures' steps, read once per phase

    def __post_init__(self) -> None:
        self.accepted_steps = _accepted_steps(self.ctx)

    @property
    def session(self) -> Session:
        return self.ctx.session

    def over(self) -> bool:
        if self.stopped:
            return True
        deadline = self.session.deadline
        if deadline is not None and time.monotonic() >= deadline:
            self.stopped = DEADLINE_PASSED
            return True
        return False

    # recording -----------------------------------------------------------------------------
    def record(self, response: Any) -> Exchange:
        answer = answer_of_requests(response, self.session.secrets)
        self.ctx.recorder.add(answer.exchange)
        # Schemathesis' answers are answers the suite got too: no 5xx, and 4xx Problems (ERR-001, ERR-002).
        self.ctx.judge.response(answer)
        return answer.exchange

    def record_error(self, case: Any, exc: BaseException) -> Exchange:
        url = f"{self.session.base_url}{case.formatted_path}"
        headers = {k: str(v) for k, v in (case.headers or {}).items()}
        exchange = unanswered_exchange(case.method.upper(), url, headers, exc, self.session.secrets)
        self.ctx.recorder.add(exchange)
        return exchange

    # the two verdicts: every evaluation of the phase goes through one of them -------------------
    def passed(self, rid: str, exchange: Exchange) -> None:
        """One instance of `rid` that the answer in `exchange` could have failed, and did not."""
        self.ctx.tally.evaluated(rid)

    def fail(self, rid: str, operation: str, title: str, message: str, exchange: Exchange | None) -> None:
        key = (rid, operation, title)
        count = self.seen.get(key, 0)
        self.seen[key] = count + 1
        if count >= EVIDENCE_PER_KIND:
            self.ctx.tally.evaluated(rid)  # reported already: the first finding of this kind says so
            return
        site = f"schemathesis:{title}"  # Schemathesis' own check and title: the kind of failure
        self.ctx.record_failure(rid, f"{operation}: {message}", [exchange] if exchange else [], site=site)

    # one case ---------------------------------------------------------------------------------
    def tag(self, case: Any) -> None:
        """Positive startRun bodies carry the session's clientId, so the runs are the suite's own."""
        if case.operation.definition.raw.get("operationId") != "startRun":
            return
        if not is_negative(case) and isinstance(case.body, dict) and isinstance(case.body.get("clientId"), str):
            case.body["clientId"] = self.session.client_id

    def call(self, case: Any) -> Any | None:
        import requests

        self.tag(case)
        if case.headers:
            for name in [n for n in case.headers if str(n).lower() in FRAMING_HEADERS]:
                del case.headers[name]
        try:
            response = case.call(session=self.http, timeout=self.session.request_timeout)
        except (requests.RequestException, OSError) as exc:
            exchange = self.record_error(case, exc)
            self.transport_errors += 1
            label = case.operation.label
            self.fail("ERR-001", label, "transport", f"no proper answer: {exchange.error}", exchange)
            if self.transport_errors >= TRANSPORT_ERRORS_TO_STOP:
                self.stopped = f"{self.transport_errors} requests got no proper answer"
            return None
        self.cases += 1
        return response

    def validate(self, case: Any, response: Any, recorder: Any = None) -> None:
        from schemathesis.core.failures import FailureGroup

        exchange = self.record(response)
        operation_id = str(case.operation.definition.raw.get("operationId", case.operation.label))
        if operation_id == "startRun" and response.status_code == 202:
            data = _json(response)
            if isinstance(data, dict) and isinstance(data.get("runId"), str):
                self.session.started_runs.setdefault(data["runId"], self.session.client)
        for name, fn in self.checks.items():
            if name == "ensure_resource_availability" and recorder is None:
                continue
            ids = FAILURE_MAP.get(name, ())
            kwargs: dict[str, Any] = {"session": self.http, "timeout": self.session.request_timeout}
            try:
                case.validate_response(response, checks=[fn], transport_kwargs=kwargs, recorder=recorder)
            except FailureGroup as group:
                for failure in group.exceptions:
                    title = str(getattr(failure, "title", name))
                    message = _failure_message(name, failure)
                    for rid in ids:
                        self.fail(rid, case.operation.label, title, message, exchange)
            except Exception as exc:  # a probe (ignored_auth) that got no answer
                import requests

                if isinstance(exc, (requests.RequestException, OSError)):
                    self.fail("ERR-001", case.operation.label, "probe", f"no proper answer: {exc}", exchange)
                else:
                    raise
            else:
                if _could_fail(name, fn, case, response, operation_id, recorder):
                    for rid in ids:
                        self.passed(rid, exchange)
        self.judge_invalid(case, response, operation_id, exchange)

    def judge_invalid(self, case: Any, response: Any, operation_id: str, exchange: Exchange) -> None:
        """An invalid request gets exactly the status its requirement demands; any other is a failure."""
        token = self.session.client.token or ""
        request = WireRequest.of(response.request)
        method = str(case.operation.method)
        instance = invalid_request_instance(operation_id, method, request, token, self.accepted_steps)
        status = int(response.status_code)
        if instance is None or status in instance.excused:
            return
        for rid, what in instance.invalid.items():
            if status != instance.demanded:
                message = f"answered {status} to {what}; {rid} demands {instance.demanded}"
                self.fail(rid, case.operation.label, f"invalid request answered {status}", message, exchange)
            elif instance.clean:
                self.passed(rid, exchange)


def _accepted_steps(ctx: CheckContext) -> list[dict[str, Any]]:
    """The steps of the session's fixture workflows: ones the server under test accepts."""
    fixtures = ctx.fixtures
    names = [name for name in ("quick", "long", "failing") if fixtures.has(name)]
    return [step for name in names for step in fixtures.workflow(name).get("steps", [])]


def _could_fail(name: str, fn: Callable[..., Any], case: Any, response: Any, operation_id: str, recorder: Any) -> bool:
    """Whether a Schemathesis check that raised nothing could have failed on this case: most judge
    every response, some only a kind of case or answer (and return quietly on the rest, which is
    no evidence)."""
    if name == "unsupported_method":
        return str(case.method).upper() != str(case.operation.method).upper()
    if name == "allow_header_conformance":
        return int(response.status_code) == 405
    if name == "response_headers_conformance":
        same_method = str(case.method).upper() == str(case.operation.method).upper()
        return same_method and bool(required_response_headers(operation_id, int(response.status_code)))
    if name == "ensure_resource_availability":
        return recorder is not None and _fails_on_404(fn, case, response, recorder)
    return True


def _fails_on_404(fn: Callable[..., Any], case: Any, response: Any, recorder: Any) -> bool:
    """Whether the check would have failed had this answer been a 404: only then was the read one of
    a run a startRun had just created, with every parameter from the link (SCHEMA-008's instance)."""
    from schemathesis.core.failures import FailureGroup

    probe = copy.copy(response)
    probe.status_code = 404
    try:
        case.validate_response(probe, checks=[fn], recorder=recorder)
    except FailureGroup:
        return True
    return False


def _json(response: Any) -> Any:
    try:
        return response.json()
    except Exception:
        return None


def _failure_message(name: str, failure: BaseException) -> str:
    title = str(getattr(failure, "title", "") or name)
    message = str(getattr(failure, "message", "") or "").strip()
    first = message.splitlines()[0] if message else ""
    text = f"{title} [{name}]" + (f": {first}" if first else "")
    return text[:500]


def _new_phase(ctx: CheckContext) -> _Phase:
    import requests

    http = requests.Session()
    http.trust_env = False
    return _Phase(ctx=ctx, http=http, checks=_check_functions())


def _hypothesis_overrides() -> Any:
    from hypothesis import HealthCheck, Phase, settings

    # No shrinking (failures are collected, never raised) and no example database, ever.
    return settings(
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate),
        print_blob=False,
    )


def run_operation(ctx: CheckContext, operation_id: str) -> None:
    schema = _load(ctx.session, ctx.session.seed, operation_id)
    phase = _new_phase(ctx)
    operation = next(
        (
            result.ok()
            for result in schema.get_all_operations()
            if result.ok().definition.raw.get("operationId") == operation_id
        ),
        None,
    )
    if operation is None:
        raise RuntimeError(f"the spec has no operation {operation_id}")

    def test(case: Any) -> None:
        phase.offered += 1
        if phase.over():
            return
        response = phase.call(case)
        if response is not None:
            phase.validate(case, response)

    built = build_operation_test(schema.config, operation, test, _hypothesis_overrides())
    hypothesis_test = hypothesis.seed(ctx.seed)(built)
    try:
        hypothesis_test()
    finally:
        phase.http.close()
    _finish(ctx, phase, operation.label)


def _finish(ctx: CheckContext, phase: _Phase, label: str) -> None:
    if phase.stopped == DEADLINE_PASSED:
        # What the cases sent so far showed is kept; the rest was never judged, so it is not run.
        of = f" of {phase.offered}" if phase.offered else ""
        raise Cut(f"{label}: cut by --deadline after {phase.cases}{of} cases")
    if phase.cases == 0 and not phase.transport_errors and phase.stopped:
        raise Skipped(f"{label}: no case ran ({phase.stopped})")


class _Stop(Exception):
    pass


def run_stateful(ctx: CheckContext) -> None:
    """Schemathesis' stateful phase along the spec's links, as one check runs it."""
    from hypothesis import HealthCheck, Phase, settings

    schema = _load(ctx.session, ctx.session.seed)
    phase = _new_phase(ctx)
    base: Any = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"session": phase.http, "timeout": ctx.session.request_timeout}

        def call(self, case: Any, **kwargs: Any) -> Any:
            if phase.over():
                raise _Stop(phase.stopped)
            if case.query and "cursor" in case.query and case.query["cursor"] in (None, ""):
                # A link from the last page (nextCursor null): no next page to read.
                case.query.pop("cursor")
            response = phase.call(case)
            if response is None:
                raise _Stop(phase.stopped or "no answer")
            return response

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            phase.validate(case, response, recorder=self.recorder)

    profile = ctx.session.profile
    run_settings = settings(
        max_examples=profile.stateful_examples,
        stateful_step_count=profile.stateful_steps,
        derandomize=ctx.session.deterministic,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate,),
        print_blob=False,
    )
    try:
        hypothesis.seed(ctx.seed)(Machine).run(settings=run_settings)
    except _Stop:
        pass
    finally:
        phase.http.close()
    _finish(ctx, phase, "stateful phase")
