"""The schema-level phase as registered checks, and explicit checks of startRun's answer (SCHEMA-004..008).

One check per operation runs Schemathesis' examples, coverage and fuzzing phases for it (positive
and negative data); one more runs the stateful phase along the spec's links. The machinery, and
what is left out of Schemathesis' checks and why, is conformance/schema_phase.py.
"""

from __future__ import annotations

from conformance.context import RUNS, CheckContext
from conformance.meaning import json_equal
from conformance.registry import check
from conformance.schema_phase import ALWAYS_JUDGED, run_operation, run_stateful
from conformance.spec import required_header_problems, run_statuses


def _make_operation_check(operation_id: str, name: str, also: tuple[str, ...]) -> None:
    def run(ctx: CheckContext) -> None:
        run_operation(ctx, operation_id)

    run.__name__ = name
    run.__qualname__ = name
    run.__doc__ = (
        f"Schemathesis examples, coverage and fuzzing of {operation_id}, positive and negative data, "
        "with every built-in response check but positive_data_acceptance."
    )
    check(*ALWAYS_JUDGED, *also)(run)


# `also`: what the operation's coverage phase gives an instance at every budget on a correct server
# (schema_phase.COVERED_AT_EVERY_BUDGET), so `--select ERR-004` runs Schemathesis' invalid bodies too.
for _op, _name, _also in (
    ("startRun", "schemathesis_start_run", ("ERR-004",)),
    ("listRuns", "schemathesis_list_runs", ()),
    ("getRun", "schemathesis_get_run", ()),
    ("getRunDefinition", "schemathesis_get_run_definition", ()),
    ("cancelRun", "schemathesis_cancel_run", ()),
):
    _make_operation_check(_op, _name, _also)


# --- the stateful phase ---------------------------------------------------------------------------
@check(*ALWAYS_JUDGED)
def schemathesis_stateful(ctx: CheckContext) -> None:
    """Schemathesis' stateful phase along the spec's links: startRun -> getRun/getRunDefinition/cancelRun,
    listRuns -> the next page."""
    run_stateful(ctx)


# --- explicit checks of startRun's answer -----------------------------------------------------
@check("SCHEMA-004", "SCHEMA-005", "SCHEMA-006", "SCHEMA-007", "SCHEMA-008")
def started_run_is_readable(ctx: CheckContext) -> None:
    """startRun's 202 is a RunRef with a Location; the run reads back at once with its clientId and inputs."""
    from urllib.parse import urljoin, urlsplit

    run_ref = run_statuses()
    for inputs in ({"date": "2026-11-28", "n": 3, "nested": {"a": [1, 2]}}, None):
        client_id = ctx.fresh_client_id("schema")
        started = ctx.start_run(client_id=client_id, inputs=inputs)
        response = started.response
        body = response.json_or_none()
        ok = (
            response.status_code == 202
            and isinstance(body, dict)
            and isinstance(body.get("runId"), str)
            and body.get("status") in run_ref
        )
        if not ctx.expect(
            "SCHEMA-005",
            ok,
            f"startRun of the quick fixture answered {response.status_code} "
            f"with {str(body)[:200]!r}, not 202 and a RunRef",
            on=response,
        ):
            continue
        run_id = str(body["runId"])
        location = response.headers.get("location")
        if location is None:
            ctx.expect("SCHEMA-006", False, "startRun's 202 has no Location header", on=response)
        else:
            target = urlsplit(urljoin(f"{ctx.session.base_url}{RUNS}", location)).path
            ctx.expect(
                "SCHEMA-006",
                target == f"{urlsplit(ctx.session.base_url).path.rstrip('/')}{RUNS}/{run_id}",
                f"startRun's Location {location!r} does not resolve to {RUNS}/{run_id}",
                on=response,
            )
        got = ctx.get_run(run_id)
        run = got.json_exact()
        if not ctx.expect(
            "SCHEMA-008", got.status_code == 200, f"getRun right after startRun answered {got.status_code}", on=got
        ):
            continue
        if isinstance(run, dict):
            ctx.expect("SCHEMA-007", run.get("runId") == run_id, f"getRun returned runId {run.get('runId')!r}", on=got)
            ctx.expect(
                "SCHEMA-007",
                run.get("clientId") == client_id,
                f"getRun returned clientId {run.get('clientId')!r}, submitted {client_id!r}",
                on=got,
            )
            expected = inputs if inputs is not None else {}
            ctx.expect(
                "SCHEMA-007",
                json_equal(run.get("inputs"), expected),
                f"getRun returned inputs {run.get('inputs')!r}, submitted {expected!r}",
                on=got,
            )
        definition = ctx.get_definition(run_id)
        ctx.expect(
            "SCHEMA-008",
            definition.status_code == 200,
            f"getRunDefinition right after startRun answered {definition.status_code}",
            on=definition,
        )
        if definition.status_code == 200:
            # Schemathesis judges headers only on the answers its own cases get, and at the quick budget its
            # stateful phase may never read a definition: this holds every definition the check reads too.
            wrong = required_header_problems("getRunDefinition", 200, definition.headers.get)
            ctx.expect(
                "SCHEMA-004",
                not wrong,
                f"getRunDefinition {run_id} answered 200 with {'; '.join(wrong)}: the spec marks the header "
                "required for this answer (SCHEMA-004)",
                on=definition,
            )
        listing = ctx.list_runs(clientId=client_id)
        items = (listing.json_or_none() or {}).get("items") if listing.status_code == 200 else None
        ctx.expect(
            "SCHEMA-008",
            isinstance(items, list) and any(isinstance(i, dict) and i.get("runId") == run_id for i in items),
            f"listRuns?clientId={client_id} right after startRun does not hold run {run_id}",
            on=listing,
        )
