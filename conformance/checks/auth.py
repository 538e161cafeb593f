"""Bearer authentication on all five operations (AUTH-001..006).

Each operation is sent without an Authorization header and with a token nobody has; both must
get 401 with a `WWW-Authenticate: Bearer` challenge and a Problem body that reveals no data, and
an unauthenticated startRun or cancelRun must change nothing. A token that only resembles ours
(conformance/near_misses.py: other case, a prefix, an extension, more after it, a look-alike
letter) is another token: it too must get 401. The scheme name is not the token: `bearer` and
`BEARER` are the same scheme as `Bearer` (RFC 9110 §11.1), so our own token under them must be
accepted (AUTH-006). The token never varies in case there, and the scheme never does in AUTH-002's.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, cast

from conformance.check_helpers import CANCEL_ANSWERS, TERMINAL
from conformance.client import ApiClient, ApiResponse
from conformance.comparisons import BEARER
from conformance.context import RUNS, CheckContext
from conformance.near_misses import malformed_credentials, near_tokens, scheme_cases
from conformance.registry import Skipped, check

# Keys of a Run, a RunList or a Workflow: a 401 body holding one of them reveals data.
DATA_KEYS = frozenset({"items", "nextCursor", "runId", "definitionHash", "inputs", "steps", "workflow"})
UNKNOWN_RUN = "run_rc_unknown_0000000000000000"
# A run in one of these statuses no longer shows whether a cancel took effect.
_SETTLED = TERMINAL | CANCEL_ANSWERS
_BEARER = re.compile(r"^\s*bearer(\s|,|$)", re.IGNORECASE)
# What each operation answers a valid request of _operations with: the scheme's case must not change it.
_ACCEPTED = {"startRun": 202, "listRuns": 200, "getRun": 200, "getRunDefinition": 200, "cancelRun": 202}
_ERROR_PARAM = re.compile(r"""error\s*=\s*"?([A-Za-z_]+)"?""", re.IGNORECASE)


def _operations(ctx: CheckContext, run_id: str) -> list[tuple[str, str, str, Any]]:
    """(operationId, method, path, json body) of all five operations on a run that exists."""
    return [
        (
            "startRun",
            "POST",
            RUNS,
            {"clientId": ctx.fresh_client_id("auth"), "workflow": ctx.fixtures.workflow("quick")},
        ),
        ("listRuns", "GET", RUNS, None),
        ("getRun", "GET", f"{RUNS}/{run_id}", None),
        ("getRunDefinition", "GET", f"{RUNS}/{run_id}/definition", None),
        ("cancelRun", "POST", f"{RUNS}/{run_id}/cancel", None),
    ]


def _a_run(ctx: CheckContext) -> str:
    started = ctx.start_run()
    if started.run_id is None:
        # Without a run of our own the 401s are still checked, against an unknown id.
        return UNKNOWN_RUN
    return started.run_id


def _check_401(ctx: CheckContext, op: str, response: ApiResponse, how: str, no_credentials: bool) -> None:
    required = "AUTH-001" if no_credentials else "AUTH-002"
    if not ctx.expect(
        required, response.status_code == 401, f"{op} {how} answered {response.status_code}, not 401", on=response
    ):
        if 200 <= response.status_code < 300:
            ctx.expect(
                "AUTH-004", False, f"{op} {how} answered {response.status_code}: data without credentials", on=response
            )
        return
    challenge = response.headers.get("www-authenticate")
    ctx.expect(
        "AUTH-003",
        challenge is not None and bool(_BEARER.match(challenge)),
        f"{op} {how}: 401 with WWW-Authenticate {challenge!r}, not a Bearer challenge",
        on=response,
    )
    body = response.json_or_none()
    is_problem = (
        response.media_type == "application/problem+json"
        and isinstance(body, dict)
        and body.get("status") == 401
        and isinstance(body.get("type"), str)
        and isinstance(body.get("title"), str)
    )
    ctx.expect(
        "AUTH-004",
        is_problem,
        f"{op} {how}: the 401 body is not an application/problem+json Problem (status 401)",
        on=response,
    )
    if isinstance(body, dict):
        leaked = sorted(DATA_KEYS.intersection(body))
        ctx.expect("AUTH-004", not leaked, f"{op} {how}: the 401 body carries data fields {leaked}", on=response)
    if challenge is not None and _BEARER.match(challenge):
        error = _ERROR_PARAM.search(challenge)
        if no_credentials:
            ctx.expect(
                "AUTH-005",
                error is None,
                f"{op} {how}: the challenge {challenge!r} has an error code; RFC 6750 §3.1 says none "
                "without credentials",
                on=response,
            )
        else:
            ctx.expect(
                "AUTH-005",
                error is not None and error.group(1) == "invalid_token",
                f'{op} {how}: the challenge {challenge!r} lacks error="invalid_token"',
                on=response,
            )


def _send(client: ApiClient, method: str, path: str, body: Any, token: Any) -> ApiResponse:
    return client.request(method, path, json_body=body, token=token)


@check("AUTH-001", "AUTH-003", "AUTH-004", "AUTH-005")
def requests_without_token_get_401(ctx: CheckContext) -> None:
    """Every operation without an Authorization header: 401, a Bearer challenge without error, a Problem."""
    run_id = _a_run(ctx)
    for op, method, path, body in _operations(ctx, run_id):
        response = _send(ctx.client, method, path, body, None)
        _check_401(ctx, op, response, "without Authorization", no_credentials=True)


@check("AUTH-002", "AUTH-003", "AUTH-004", "AUTH-005")
def requests_with_invalid_token_get_401(ctx: CheckContext) -> None:
    """Every operation with a token nobody has: 401, a Bearer challenge with invalid_token, a Problem."""
    run_id = _a_run(ctx)
    wrong = f"rc-invalid-{secrets.token_hex(12)}"
    for op, method, path, body in _operations(ctx, run_id):
        response = _send(ctx.client, method, path, body, wrong)
        _check_401(ctx, op, response, "with an invalid token", no_credentials=False)
    # Another scheme counts as no credentials at all (RFC 6750 §3.1): still a 401.
    response = ctx.client.get(RUNS, token=None, headers={"Authorization": "Basic cmM6cmM="})
    ctx.expect(
        "AUTH-002",
        response.status_code == 401,
        f"listRuns with Basic credentials answered {response.status_code}",
        on=response,
    )


@check("AUTH-004", needs=["fixture:long"])
def unauthenticated_requests_change_nothing(ctx: CheckContext) -> None:
    """An unauthenticated startRun creates no run; an unauthenticated cancelRun cancels nothing."""
    client_id = ctx.fresh_client_id("auth")
    body = {"clientId": client_id, "workflow": ctx.fixtures.workflow("quick")}
    for token in (None, f"rc-invalid-{secrets.token_hex(12)}"):
        ctx.client.request("POST", RUNS, json_body=body, token=token)
    listing = ctx.list_runs(clientId=client_id)
    data = listing.json_or_none() if listing.status_code == 200 else None
    items = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) else None
    ctx.expect(
        "AUTH-004",
        not items,
        f"startRun answered without valid credentials created {len(items or [])} run(s)",
        on=listing,
        reads=(items,),
    )

    started = ctx.start_run(ctx.fixtures.workflow("long"))
    if started.run_id is None:
        ctx.skip(
            "AUTH-004",
            f"startRun of the long fixture answered {started.status_code}, so no run was there to "
            "show whether a cancel without valid credentials takes effect",
        )
        return
    try:
        first = ctx.get_run(started.run_id)
        before = first.json_or_none() if first.status_code == 200 else None
        if not isinstance(before, dict) or before.get("status") in _SETTLED or before.get("cancelRequestedAt"):
            shown = before.get("status") if isinstance(before, dict) else f"unreadable ({first.status_code})"
            # A finished run cannot be cancelled: an unauthenticated cancel that took effect would not show.
            ctx.skip(
                "AUTH-004",
                f"the long fixture's run {started.run_id} was {shown} before the cancels without valid credentials, "
                f"so whether they change a run was not put to the test (the long fixture must stay busy; "
                f"{ctx.fixtures.source})",
            )
            return
        for token in (None, f"rc-invalid-{secrets.token_hex(12)}"):
            ctx.client.request("POST", f"{RUNS}/{started.run_id}/cancel", token=token)
        after = ctx.get_run(started.run_id)
        run = after.json_or_none() if after.status_code == 200 else None
        run = run if isinstance(run, dict) else None
        ctx.expect(
            "AUTH-004",
            run is not None and run.get("cancelRequestedAt") is None and run.get("status") not in CANCEL_ANSWERS,
            f"a cancelRun without valid credentials changed the run: status {(run or {}).get('status')!r}, "
            f"cancelRequestedAt {(run or {}).get('cancelRequestedAt')!r}",
            on=run,
        )
    finally:
        ctx.cancel_run(started.run_id)


def _near_misses(ctx: CheckContext, token: str) -> list[tuple[str, bytes, frozenset[int]]]:
    """(label, Authorization value, statuses allowed) for each credential one edit from `token`."""
    # A near miss that is itself a token we were given would be a valid one.
    given = set(ctx.session.secrets)
    # A well-formed other token is an invalid token: 401. A malformed credential may be a 400 too (RFC 6750 §3.1).
    near = [
        (label, f"Bearer {value}".encode(), frozenset({401}))
        for label, value in near_tokens(token).items()
        if value not in given
    ]
    return near + [(label, value, frozenset({400, 401})) for label, value in malformed_credentials(token).items()]


def _accepted_token(ctx: CheckContext, purpose: str) -> str:
    """The suite's token, once listRuns shows the server takes it exactly as given: only then does an
    answer to a variant of it say how the server compares."""
    token = ctx.client.token
    if not token:
        raise Skipped(f"the suite was given no token, so there is none {purpose}")
    control = ctx.list_runs(limit=1)
    if control.status_code != 200:
        raise Skipped(f"listRuns with the suite's own token answered {control.status_code}, not 200")
    return token


@check("AUTH-002")
def near_miss_tokens_get_401(ctx: CheckContext) -> None:
    """Every operation with a token one edit from a valid one: 401, as any token nobody has."""
    token = _accepted_token(ctx, "to send near misses of")
    run_id = _a_run(ctx)
    for op, method, path, body in _operations(ctx, run_id):
        for label, value, allowed in _near_misses(ctx, token):
            # Bytes through httpx as they are: the look-alike must reach the server as UTF-8.
            headers = cast(dict[str, str], {"Authorization": value})
            response = ctx.client.request(method, path, json_body=body, token=None, headers=headers)
            wanted = " or ".join(str(status) for status in sorted(allowed))
            ctx.expect(
                "AUTH-002",
                response.status_code in allowed,
                f"{op} with an Authorization header holding {label} answered {response.status_code}; "
                f"expected {wanted}: a bearer token is compared exactly (no case folding, no prefix or extension, "
                "nothing after it ignored), so one that only resembles a valid token is invalid (AUTH-002)",
                on=response,
            )


@check("AUTH-006")
def bearer_scheme_in_any_case_accepted(ctx: CheckContext) -> None:
    """Every operation with the suite's own token under `bearer`, `BEARER`, ...: answered as under `Bearer`."""
    token = _accepted_token(ctx, "to send under another scheme case")
    run_id = _a_run(ctx)
    if run_id == UNKNOWN_RUN:
        raise Skipped("startRun with the suite's own token made no run, so there is none to read under other cases")
    for op, method, path, body in _operations(ctx, run_id):
        for label, scheme in scheme_cases(BEARER).items():
            # The token exactly as given: only the scheme's case differs from an accepted request.
            headers = {"Authorization": f"{scheme} {token}"}
            response = ctx.client.request(method, path, json_body=body, token=None, headers=headers)
            ctx.expect(
                "AUTH-006",
                response.status_code == _ACCEPTED[op],
                f"{op} with our valid token under {label} ({scheme!r}) answered {response.status_code}; expected "
                f"{_ACCEPTED[op]}, as with {BEARER!r}: the auth-scheme name is case-insensitive (RFC 9110 §11.1), "
                "only the token is compared exactly (AUTH-006)",
                on=response,
            )
