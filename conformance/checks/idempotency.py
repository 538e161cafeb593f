"""Idempotency-Key on startRun: replays, conflicts, JSON-equal bodies and races (IDEM-001..006).

A key's scope, its syntax, exact comparison and rejected requests are checks/idempotency_keys.py.

Every check counts runs through listRuns filtered by a clientId no other check uses
(`ctx.fresh_client_id()`), so "exactly one run" holds on a server that others use too. Keys are
random UUIDs, never derived from the seed: a server keeps its keys, and a second run of the suite
with the same seed must not meet the first run's keys.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from typing import Any

import httpx
from hypothesis import given

from conformance.check_helpers import new_key, problem_type, show
from conformance.context import CheckContext, StartedRun
from conformance.listing import expect_listed
from conformance.meaning import changed_run_fields, json_equal
from conformance.outcomes import Violations
from conformance.properties import property_settings, records_example, run_property
from conformance.registry import check
from conformance.spec import KEY_IN_FLIGHT, KEY_REUSED
from conformance.strategies import (
    changed_workflows,
    compact_bytes,
    different_request,
    fresh_client_ids,
    reordered_bytes,
    reserialisations,
    run_start_requests,
    spaced_bytes,
    with_each,
)


def _with_inputs(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**body, "inputs": {**body.get("inputs", {}), **extra}}


def _first_run(posted: StartedRun, key: str, requirement: str) -> str:
    if posted.status_code == 202 and posted.run_id is not None:
        return posted.run_id
    raise Violations(
        [
            (
                requirement,
                f"the first startRun with a new Idempotency-Key {key!r} and a valid body got "
                f"{show(posted.response)}; "
                "expected 202 with a runId (the body is a valid RunStartRequest built from the fixture workflow: "
                "if the server rejects it, give fixtures it can run with --fixtures)",
            )
        ]
    )


@check("IDEM-001", "IDEM-002", needs=["fixture:quick"])
def same_key_same_body_replays(ctx: CheckContext) -> None:
    """A retry with the same key and body gets the first runId, before and after the run finished; one run."""
    quick = ctx.fixtures.workflow("quick")

    @property_settings(ctx)
    @given(body=run_start_requests(quick, fresh_client_ids(ctx, "idem")))
    @records_example
    def replay(body: dict[str, Any]) -> None:
        key = new_key()
        raw = compact_bytes(body)
        run_id = _first_run(ctx.post_run(raw, key=key), key, "IDEM-001")
        example = ctx.example()
        retry = ctx.post_run(raw, key=key)
        example.expect(
            "IDEM-001",
            retry.status_code == 202 and retry.run_id == run_id,
            f"a retry of the same body with Idempotency-Key {key!r} got {show(retry.response)}; "
            f"expected 202 with the first runId {run_id!r} (IDEM-001: same key and body return the first run)",
            on=retry,
        )
        ctx.wait_terminal(run_id, timeout=min(ctx.session.timeout, 10.0))
        late = ctx.post_run(raw, key=key)
        example.expect(
            "IDEM-001",
            late.status_code == 202 and late.run_id == run_id,
            f"a retry with Idempotency-Key {key!r} after run {run_id} finished got {show(late.response)}; "
            f"expected 202 with runId {run_id!r}: a key replays its run for as long as the server keeps it",
            on=late,
        )
        expect_listed(
            ctx,
            "IDEM-002",
            body["clientId"],
            [run_id],
            "three startRuns with one Idempotency-Key and one body make one run (IDEM-002)",
            into=example,
        )
        example.done()

    run_property(ctx, replay)


@check("IDEM-003", "IDEM-004", needs=["fixture:quick"])
def same_key_other_body_conflicts(ctx: CheckContext) -> None:
    """A used key with another body gets 409 idempotency-key-reused; the first run is untouched, no run is made."""
    quick = ctx.fixtures.workflow("quick")
    pairs = with_each(run_start_requests(quick, fresh_client_ids(ctx, "idem")), different_request)

    @property_settings(ctx)
    @given(pair=pairs)
    @records_example
    def conflict(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
        body, changed = pair
        key = new_key()
        run_id = _first_run(ctx.post_run(compact_bytes(body), key=key), key, "IDEM-003")
        first_read = ctx.get_run(run_id)
        before = first_read.json_exact()
        example = ctx.example()
        # The drawn change, then one of each kind: a fingerprint of only some fields must not pass by luck.
        variants = [("a drawn change", changed), ("other inputs", _with_inputs(body, {"rc-changed": True}))]
        variants += [(label, {**body, "workflow": w}) for label, w in changed_workflows(body["workflow"])]
        for label, variant in variants:
            second = ctx.post_run(compact_bytes(variant), key=key)
            if second.status_code == 409 and problem_type(second.response) == KEY_REUSED:
                example.expect("IDEM-003", True, "", on=second)
                continue
            hint = ""
            if second.run_id == run_id:
                hint = (
                    " The server replayed the first run although the body differs: compare a fingerprint of the body."
                )
            elif second.status_code == 202:
                hint = " The server started another run: the key must stay bound to its first body."
            example.expect(
                "IDEM-003",
                False,
                f"startRun with Idempotency-Key {key!r}, already used for run {run_id}, and a body that differs "
                f"({label}) got {show(second.response)}; expected 409 application/problem+json with type "
                f"{KEY_REUSED}.{hint}",
                on=second,
            )
            break
        second_read = ctx.get_run(run_id)
        after = second_read.json_exact()
        if example.expect(
            "IDEM-004",
            isinstance(before, dict) and isinstance(after, dict),
            f"getRun {run_id} did not return the run around the conflicting request",
            on=[first_read, second_read],
        ):
            changed = changed_run_fields(before, after, ("clientId", "inputs", "definitionHash", "createdAt"))
            for field in ("clientId", "inputs", "definitionHash", "createdAt"):
                example.expect(
                    "IDEM-004",
                    field not in changed,
                    f"after the conflicting request, run {run_id}'s {field} changed from "
                    f"{before.get(field)!r} to {after.get(field)!r}; a 409 must leave the first run untouched",
                    on=second_read,
                )
            example.expect(
                "IDEM-004",
                json_equal(after.get("inputs"), body.get("inputs", {})),
                f"run {run_id}'s inputs are {after.get('inputs')!r}, not the submitted {body.get('inputs', {})!r}",
                on=second_read,
            )
        definition = ctx.get_definition(run_id)
        example.expect(
            "IDEM-004",
            definition.status_code == 200 and json_equal(definition.json_exact(), body["workflow"]),
            f"after the conflicting request, getRunDefinition {run_id} got {show(definition)}; expected "
            "the first body's workflow, JSON-equal: a 409 must not change the first run",
            on=definition,
        )
        expect_listed(
            ctx,
            "IDEM-004",
            body["clientId"],
            [run_id],
            "a startRun answered 409 for a reused key must not create a run (IDEM-004)",
            into=example,
        )
        example.done()

    run_property(ctx, conflict)


@check("IDEM-005", needs=["fixture:quick"])
def json_equal_bodies_are_the_same(ctx: CheckContext) -> None:
    """Bodies equal as JSON (key order, whitespace, escapes) replay the first run under one key."""
    quick = ctx.fixtures.workflow("quick")
    cases = with_each(run_start_requests(quick, fresh_client_ids(ctx, "idem")), reserialisations)

    @property_settings(ctx)
    @given(case=cases)
    @records_example
    def same(case: tuple[dict[str, Any], bytes]) -> None:
        body, drawn = case
        key = new_key()
        raw = compact_bytes(body)
        run_id = _first_run(ctx.post_run(raw, key=key), key, "IDEM-005")
        example = ctx.example()
        for label, variant in (
            ("its keys in reverse order", reordered_bytes(body)),
            ("indented, with \\u escapes", spaced_bytes(body)),
            ("re-serialised", drawn),
        ):
            if variant == raw:
                continue
            retry = ctx.post_run(variant, key=key)
            if not example.expect(
                "IDEM-005",
                retry.status_code == 202 and retry.run_id == run_id,
                f"the first body sent again {label} ({variant[:120]!r}…) with Idempotency-Key {key!r} got "
                f"{show(retry.response)}; expected 202 with runId {run_id!r}: bodies equal as JSON are the "
                "same body, so compare parsed JSON (e.g. its RFC 8785 form), not bytes",
                on=retry,
            ):
                break
        expect_listed(
            ctx, "IDEM-005", body["clientId"], [run_id], "JSON-equal bodies under one key make one run", into=example
        )
        example.done()

    run_property(ctx, same)


@check("IDEM-006", needs=["fixture:quick"])
def concurrent_same_key_makes_one_run(ctx: CheckContext) -> None:
    """Requests with one key sent at once: one run; each gets its runId or 409 idempotency-key-in-flight."""
    width = max(20, ctx.profile.concurrency)
    for _ in range(1 + ctx.profile.max_examples // 50):
        _race_once(ctx, width)


def _race_once(ctx: CheckContext, width: int) -> None:
    client_id = ctx.fresh_client_id("race")
    raw = compact_bytes({"clientId": client_id, "workflow": ctx.fixtures.workflow("quick")})
    key = new_key()
    barrier = threading.Barrier(width)
    spans: list[tuple[float, float]] = []  # when each request was in flight, as the client saw it

    def send(_: int) -> StartedRun | str | None:
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            return None  # the suite's threads could not start together: nothing was sent
        sent = time.monotonic()
        try:
            return ctx.post_run(raw, key=key)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            spans.append((sent, time.monotonic()))

    with concurrent.futures.ThreadPoolExecutor(max_workers=width) as pool:
        results = list(pool.map(send, range(width)))
    if not _overlapped(spans):
        ctx.skip(
            "IDEM-006",
            f"the {width} startRuns with Idempotency-Key {key!r} were answered one after another (no two were in "
            "flight at once, as the client saw them), so what the server does with concurrent requests for one key "
            "was not put to the test",
        )
    errors = [r for r in results if isinstance(r, str)]
    answers = [r for r in results if isinstance(r, StartedRun)]
    ids = sorted({a.run_id for a in answers if a.status_code == 202 and a.run_id})
    odd = [a for a in answers if not (a.status_code == 202 and a.run_id) and not _in_flight(a)]
    sent = f"{width} concurrent startRuns with Idempotency-Key {key!r} and one body"
    if errors:
        # No answer is the server's failure to answer (ERR-001), not an instance of IDEM-006.
        ctx.record_failure("ERR-001", f"{sent}: {len(errors)} got no HTTP answer, e.g. {errors[:1]} (ERR-001)")
    ctx.expect(
        "IDEM-006",
        not odd,
        f"{sent}: {len(odd)} got something other than 202 with a runId or 409 with type {KEY_IN_FLIGHT}, "
        f"e.g. {show(odd[0].response) if odd else ''}",
        on=answers,
    )
    ctx.expect(
        "IDEM-006",
        len(ids) <= 1,
        f"{sent} got {len(ids)} different runIds {ids}: the key lookup and the insert of its run are not atomic "
        "(use a unique constraint on (credential, key) in the transaction that creates the run)",
        on=answers,
    )
    # Those told "in flight" retry unchanged, as the 409 says: they must end up with the one run.
    settled = ctx.poll(
        lambda: ctx.post_run(raw, key=key),
        lambda p: not _in_flight(p),
    )
    winner = ids[0] if ids else settled.run_id
    ctx.expect(
        "IDEM-006",
        settled.status_code == 202 and settled.run_id == winner,
        f"after {sent}, a retry got {show(settled.response)}; expected 202 with runId {winner!r}",
        on=settled,
    )
    expect_listed(ctx, "IDEM-006", client_id, [winner] if winner else [], f"{sent} must create exactly one run")


def _overlapped(spans: list[tuple[float, float]]) -> bool:
    """Some two (sent, answered) spans overlap: sorted by start, some request starts before the one
    before it was answered (if none does, no two requests overlap at all)."""
    ordered = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))


def _in_flight(posted: StartedRun) -> bool:
    return posted.status_code == 409 and problem_type(posted.response) == KEY_IN_FLIGHT
