"""The definition snapshot, its hash and its ETag; conditional GETs with If-None-Match.

The ETag is compared with the RFC 9110 grammar (§8.8.3) and `W/"<definitionHash>"` from getRun;
the hash with SHA-256 over the RFC 8785 form of the workflow the suite itself submitted. That
oracle is `canonical_json` here, which tests/test_rfc8785_oracle.py checks against RFC 8785's
own published examples.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any, cast

import rfc8785
from hypothesis import given

from conformance.check_helpers import show
from conformance.client import ApiResponse
from conformance.context import RUNS, CheckContext
from conformance.meaning import json_equal
from conformance.near_misses import matching_tag_lists, near_entity_tags
from conformance.outcomes import Violations
from conformance.properties import property_settings, records_example, run_property
from conformance.registry import Skipped, check
from conformance.strategies import (
    changed_workflows,
    compact_bytes,
    different_request,
    fresh_client_ids,
    reordered_bytes,
    reserialisations,
    run_start_requests,
    with_each,
)

__all__ = ["ENTITY_TAG", "canonical_json", "expected_definition_hash", "parse_entity_tag"]

# RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag; weak = %s"W/"; opaque-tag = DQUOTE *etagc DQUOTE;
# etagc = %x21 / %x23-7E / obs-text. `W/` is case-sensitive.
ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


def parse_entity_tag(value: str | None) -> tuple[bool, str] | None:
    """(weak, opaque) of one entity-tag, or None when the value is not one."""
    if value is None:
        return None
    match = ENTITY_TAG.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    return match.group(1) is not None, match.group(2)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical form of a JSON value."""
    return bytes(rfc8785.dumps(value))


def expected_definition_hash(workflow: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(workflow)).hexdigest()


def _start(ctx: CheckContext, raw: bytes, requirement: str) -> str:
    posted = ctx.post_run(raw)
    if posted.status_code == 202 and posted.run_id is not None:
        return posted.run_id
    raise Violations(
        [
            (
                requirement,
                f"startRun of a valid body built from the fixture workflow ({raw[:200]!r}) got "
                f"{show(posted.response)}; expected 202 (if the server cannot run it, give fixtures it can run "
                "with --fixtures)",
            )
        ]
    )


def _hash_of(ctx: CheckContext, run_id: str) -> tuple[ApiResponse, str | None]:
    """getRun, and the run's definitionHash (None: no Run, or no hash in it, which SCHEMA-002 judges)."""
    response = ctx.get_run(run_id)
    data = response.json_or_none() if response.status_code == 200 else None
    value = data.get("definitionHash") if isinstance(data, dict) else None
    return response, value if isinstance(value, str) else None


def _quick_run(ctx: CheckContext, label: str) -> tuple[str, dict[str, Any], str]:
    """A run of the quick fixture: its runId, workflow and definitionHash; stops the check if there is none."""
    workflow = ctx.fixtures.workflow("quick")
    started = ctx.start_run(workflow, client_id=ctx.fresh_client_id(label))
    if started.run_id is None:
        raise ctx.refused("startRun of the quick fixture", started.response, "give a quick fixture with --fixtures")
    _read, definition_hash = _hash_of(ctx, started.run_id)
    if definition_hash is None:
        # Not an ETag finding: a Run without its definitionHash fails its schema (SCHEMA-002, judged on the read).
        raise Skipped(f"getRun {started.run_id} shows no definitionHash, so the ETag has no reference to compare")
    return started.run_id, workflow, definition_hash


# --- ETAG-001: the snapshot ----------------------------------------------------------------


def _definition_problem(ctx: CheckContext, run_id: str, workflow: Any, when: str) -> tuple[ApiResponse, str | None]:
    """getRunDefinition, and what is wrong with its answer (None: the submitted workflow, JSON-equal)."""
    response = ctx.get_definition(run_id)
    if response.status_code == 200 and json_equal(response.json_exact(), workflow):
        return response, None
    return response, (
        f"getRunDefinition {run_id} {when} got {show(response)}; expected 200 with the submitted workflow "
        f"{compact_bytes(workflow)[:200]!r}, JSON-equal: store the workflow as sent, without normalising it "
        "(no defaults filled in, no fields dropped)"
    )


@check("ETAG-001", needs=["fixture:quick"])
def definition_is_the_submitted_workflow(ctx: CheckContext) -> None:
    """getRunDefinition gives back the submitted workflow, JSON-equal, on every request and after the run ends."""
    quick = ctx.fixtures.workflow("quick")
    cases = with_each(run_start_requests(quick, fresh_client_ids(ctx, "etag")), reserialisations)

    @property_settings(ctx)
    @given(case=cases)
    @records_example
    def snapshot(case: tuple[dict[str, Any], bytes]) -> None:
        example = ctx.example()
        body, raw = case
        run_id = _start(ctx, raw, "ETAG-001")
        workflow = body["workflow"]
        for when in ("at once", "again"):
            answer, problem = _definition_problem(ctx, run_id, workflow, when)
            if not example.expect("ETAG-001", problem is None, problem or "", on=answer):
                break
        else:
            ctx.wait_terminal(run_id, timeout=min(ctx.session.timeout, 10.0))
            answer, late = _definition_problem(ctx, run_id, workflow, "after the run finished")
            example.expect("ETAG-001", late is None, late or "", on=answer)
        example.done()

    run_property(ctx, snapshot)


@check("ETAG-001", needs=["fixture:long"])
def definition_survives_cancel(ctx: CheckContext) -> None:
    """A cancelled run's definition and ETag stay what they were."""
    workflow = ctx.fixtures.workflow("long")
    started = ctx.start_run(workflow, client_id=ctx.fresh_client_id("cancel"))
    if started.run_id is None:
        raise ctx.fail("ETAG-001", f"startRun of the long fixture got {show(started.response)}; expected 202")
    run_id = started.run_id
    try:
        answer, problem = _definition_problem(ctx, run_id, workflow, "while it runs")
        ctx.expect("ETAG-001", problem is None, problem or "", on=answer)
        first = ctx.get_definition(run_id)
        ctx.cancel_run(run_id)
        ctx.wait_terminal(run_id)
        answer, problem = _definition_problem(ctx, run_id, workflow, "after it was cancelled")
        ctx.expect("ETAG-001", problem is None, problem or "", on=answer)
        second = ctx.get_definition(run_id)
        before, after = first.headers.get("etag"), second.headers.get("etag")
        ctx.expect(
            "ETAG-001",
            before == after,
            f"getRunDefinition {run_id} carried ETag {before!r} before the cancel and {after!r} after it; the "
            "snapshot (and so its tag) never changes",
            on=[first, second],
        )
    finally:
        # Never leave a long run busy on the server, whatever happened above.
        ctx.cancel_run(run_id)


# --- ETAG-002, ETAG-003: the hash ------------------------------------------------------------


@check("ETAG-002", needs=["fixture:quick"])
def definition_hash_depends_on_content(ctx: CheckContext) -> None:
    """Runs of one workflow (however serialised, whatever the inputs) share a hash; other workflows differ."""
    quick = ctx.fixtures.workflow("quick")
    cases = with_each(
        run_start_requests(quick, fresh_client_ids(ctx, "etag")),
        lambda b: different_request(b).filter(lambda c: not json_equal(c["workflow"], b["workflow"])),
    )

    @property_settings(ctx)
    @given(case=cases)
    @records_example
    def content(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
        body, drawn = case
        first = _start(ctx, compact_bytes(body), "ETAG-002")
        same_body = {**body, "inputs": {**body.get("inputs", {}), "rc-other-inputs": 1}}
        again = _start(ctx, reordered_bytes(same_body), "ETAG-002")
        example = ctx.example()
        (read_first, hash_first), (read_again, hash_again) = _hash_of(ctx, first), _hash_of(ctx, again)
        example.expect(
            "ETAG-002",
            hash_first == hash_again,
            f"two runs of one workflow (the second sent with its keys in another order and other inputs) have "
            f"definitionHash {hash_first!r} and {hash_again!r}; expected the same: the hash depends only "
            "on the workflow's content (hash its canonical JSON, not the bytes received)",
            on=[read_first, read_again],
            reads=(hash_first, hash_again),
        )
        others = [*changed_workflows(body["workflow"]), ("a drawn change", drawn["workflow"])]
        for label, workflow in others:
            other = _start(ctx, compact_bytes({**body, "workflow": workflow}), "ETAG-002")
            read_other, hash_other = _hash_of(ctx, other)
            if not example.expect(
                "ETAG-002",
                hash_other != hash_first,
                f"runs of two workflows that differ only in {label}, {compact_bytes(body['workflow'])[:150]!r} "
                f"and {compact_bytes(workflow)[:150]!r}, both have definitionHash {hash_first!r}; expected "
                "different hashes: hash the whole workflow (each step's id, position, action, params, dependsOn)",
                on=[read_first, read_other],
                reads=(hash_first, hash_other),
            ):
                break
        example.done()

    run_property(ctx, content)


@check("ETAG-003", needs=["fixture:quick"])
def definition_hash_is_rfc8785_sha256(ctx: CheckContext) -> None:
    """definitionHash is sha256: + hex SHA-256 of the workflow's RFC 8785 canonical JSON."""
    quick = ctx.fixtures.workflow("quick")

    @property_settings(ctx)
    @given(body=run_start_requests(quick, fresh_client_ids(ctx, "etag")))
    @records_example
    def canonical(body: dict[str, Any]) -> None:
        run_id = _start(ctx, compact_bytes(body), "ETAG-003")
        read, actual = _hash_of(ctx, run_id)
        expected = expected_definition_hash(body["workflow"])
        example = ctx.example()
        example.expect(
            "ETAG-003",
            actual == expected,
            f"run {run_id} has definitionHash {actual!r}; expected {expected!r}, the SHA-256 of the "
            f"workflow's RFC 8785 form {canonical_json(body['workflow'])[:200]!r} (sorted keys, no "
            "whitespace, ECMAScript number form, minimal string escapes)",
            on=read,
            reads=(actual,),
        )
        example.done()

    run_property(ctx, canonical)


# --- ETAG-004: the header ----------------------------------------------------------------------


@check("ETAG-004", needs=["fixture:quick"])
def etag_is_the_weak_definition_hash(ctx: CheckContext) -> None:
    """The 200 carries ETag W/"<definitionHash>": weak, RFC 9110 syntax, the same on every request and run."""
    run_id, workflow, definition_hash = _quick_run(ctx, "etag")
    twin = ctx.start_run(workflow, client_id=ctx.fresh_client_id("etag"))
    expected = f'W/"{definition_hash}"'
    seen: dict[str, list[str | None]] = {}
    answers: list[ApiResponse] = []
    for run in [run_id] + ([twin.run_id] if twin.run_id else []):
        for _ in range(3):
            response = ctx.get_definition(run)
            answers.append(response)
            seen.setdefault(run, []).append(response.headers.get("etag") if response.status_code == 200 else None)
    first = seen[run_id][0]
    parsed = parse_entity_tag(first)
    if parsed is None:
        raise ctx.fail(
            "ETAG-004",
            f"getRunDefinition {run_id} answered 200 with ETag {first!r}, which is not an entity-tag "
            f"(RFC 9110 §8.8.3: [W/] and a quoted opaque-tag); expected {expected}",
        )
    ctx.expect(
        "ETAG-004",
        parsed[0],
        f"getRunDefinition {run_id} sent the strong ETag {first!r}; expected the weak {expected}: the tag names the "
        "workflow's canonical form, not the bytes sent, so it must be marked W/ (RFC 9110 §8.8.3)",
        on=answers[0],
    )
    ctx.expect(
        "ETAG-004",
        first == expected,
        f"getRunDefinition {run_id} sent ETag {first!r}; expected {expected}, built from getRun's definitionHash",
        on=answers[0],
    )
    for run, tags in seen.items():
        ctx.expect(
            "ETAG-004",
            all(tag == first for tag in tags),
            f"getRunDefinition sent ETags {tags} for run {run} (the first run sent {first!r}); expected the same tag "
            "on every request and for every run of the same workflow: derive it from definitionHash only",
            on=answers,
        )


# --- ETAG-005, ETAG-006: If-None-Match -------------------------------------------------------


def _not_modified_problem(response: ApiResponse, expected: str) -> str | None:
    if response.status_code != 304:
        return f"got {show(response)}; expected 304 Not Modified"
    if response.headers.get("etag") != expected:
        return f"got 304 with ETag {response.headers.get('etag')!r}; expected ETag {expected} (RFC 9110 §15.4.5)"
    if response.content:
        return f"got 304 with a body of {len(response.content)} bytes; a 304 has no body"
    return None


@check("ETAG-005", "ETAG-006", needs=["fixture:quick"])
def if_none_match_is_evaluated(ctx: CheckContext) -> None:
    """If-None-Match: weak comparison, lists and * give 304 with the ETag and no body; anything else gives 200."""
    run_id, workflow, definition_hash = _quick_run(ctx, "inm")
    tag = f'W/"{definition_hash}"'
    # Every list form RFC 9110 allows (OWS, tabs, empty elements, the tag anywhere in it): one
    # element honoured, or whitespace not stripped, misses some of them.
    for label, value in matching_tag_lists(tag).items():
        response = ctx.get_definition(run_id, headers={"If-None-Match": value})
        problem = _not_modified_problem(response, tag)
        ctx.expect(
            "ETAG-005",
            problem is None,
            f"getRunDefinition {run_id} with If-None-Match: {value!r} ({label}) {problem}; an If-None-Match that "
            "matches by weak comparison gets 304 with the same ETag and no body (RFC 9110 §13.1.2, §8.8.3.2, "
            "§5.6.1: a list may have whitespace or tabs around its commas, or empty elements)",
            on=response,
        )
    for label, raw in near_entity_tags(tag).items():
        value = raw.decode(errors="replace")
        # Bytes through httpx as they are: the look-alike must reach the server as UTF-8.
        response = ctx.get_definition(run_id, headers=cast(dict[str, str], {"If-None-Match": raw}))
        ok = (
            response.status_code == 200
            and json_equal(response.json_exact(), workflow)
            and response.headers.get("etag") == tag
        ) or (not raw.isascii() and response.status_code == 400)  # obs-text: a front end may refuse it
        ctx.expect(
            "ETAG-006",
            ok,
            f"getRunDefinition {run_id} with If-None-Match: {value} ({label}) got {show(response)} "
            f"(ETag {response.headers.get('etag')!r}); expected 200 with the definition and ETag {tag}: the "
            "condition does not match, so the full answer is due (RFC 9110 §13.1.2; a 400 only for a non-ASCII value)",
            on=response,
        )


# --- ETAG-007: errors before 304 ------------------------------------------------------------------


@check("ETAG-007", needs=["fixture:quick"])
def errors_win_over_not_modified(ctx: CheckContext) -> None:
    """With a matching If-None-Match, a bad or missing token still gets 401 and an unknown run 404, never 304."""
    run_id, _workflow, definition_hash = _quick_run(ctx, "precedence")
    tag = f'W/"{definition_hash}"'
    path = f"{RUNS}/{run_id}/definition"
    # A client revalidates what it fetched: fetch it first, as a cache in front of the server would see.
    ctx.get_definition(run_id)
    # Unknown runs shaped like this one (so the server looks them up), confirmed absent first.
    unknown_ids = ctx.unknown_run_ids(like=run_id)
    if not unknown_ids:
        ctx.skip("ETAG-007", f"every candidate unknown runId shaped like {run_id!r} named a run that exists")
    for value in (tag, "*"):
        headers = {"If-None-Match": value}
        for label, response in (
            ("an invalid token", ctx.client.get(path, headers=headers, token=f"rc-not-a-token-{uuid.uuid4().hex}")),
            ("no token", ctx.anonymous.get(path, headers=headers)),
        ):
            ctx.expect(
                "ETAG-007",
                response.status_code == 401,
                f"getRunDefinition {run_id} with {label} and If-None-Match: {value} got {show(response)}; "
                "expected 401: authentication comes before preconditions, and a 304 would confirm the tag to "
                "anyone (RFC 9110 §13.2.1)",
                on=response,
            )
        for unknown in unknown_ids:
            response = ctx.get_definition(unknown, headers=headers)
            if response.status_code != 404 and ctx.taken_meanwhile(unknown):
                continue  # another check's start took the ID since (sequential IDs): not unknown now
            ctx.expect(
                "ETAG-007",
                response.status_code == 404,
                f"getRunDefinition of the unknown run {unknown} with If-None-Match: {value} got {show(response)}; "
                "expected 404: preconditions are evaluated only when the answer without them would be 2xx "
                "(RFC 9110 §13.2.1), and `*` does not match a run that does not exist",
                on=response,
            )
