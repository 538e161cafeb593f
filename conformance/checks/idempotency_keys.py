"""Idempotency-Key on startRun: scope, syntax, exact comparison, rejected requests, no key (IDEM-007..011).

Replays, conflicts, JSON-equal bodies and races are checks/idempotency.py. Every check counts runs
through listRuns filtered by a clientId no other check uses, and keys are random UUIDs (see there).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import uuid
from typing import Any, cast

import httpx

from conformance.check_helpers import new_key, show
from conformance.context import CheckContext, StartedRun
from conformance.listing import expect_listed
from conformance.near_misses import KEY_MAX, look_alike, near_keys
from conformance.registry import check
from conformance.strategies import compact_bytes

MAX_BODY_BYTES = 1_048_576  # CONTRACT: a body over 1 MiB is a 413 (ERR-008)


@check("IDEM-007", needs=["other_token", "fixture:quick"])
def keys_are_scoped_to_the_credential(ctx: CheckContext) -> None:
    """The same key under another token is another key: a new run, never the first token's, never a 409."""
    other = ctx.other_client
    client_id = ctx.fresh_client_id("scope")
    workflow = ctx.fixtures.workflow("quick")
    raw = compact_bytes({"clientId": client_id, "workflow": workflow})
    key = new_key()
    mine = ctx.post_run(raw, key=key)
    if mine.run_id is None:
        raise ctx.fail("IDEM-007", f"startRun with a new key {key!r} got {show(mine.response)}; expected 202")
    theirs = ctx.post_run(raw, key=key, client=other)
    ctx.expect(
        "IDEM-007",
        theirs.status_code == 202 and theirs.run_id is not None and theirs.run_id != mine.run_id,
        f"the same body and Idempotency-Key {key!r}, sent with the second token after the first token's run "
        f"{mine.run_id}, got {show(theirs.response)}; expected 202 with a new runId: keys are scoped to the "
        "credential, so key the store by (credential, key)",
        on=theirs,
    )
    for label, api, expected in (("first", None, mine.run_id), ("second", other, theirs.run_id)):
        again = ctx.post_run(raw, key=key, client=api)
        if expected is not None:
            ctx.expect(
                "IDEM-007",
                again.status_code == 202 and again.run_id == expected,
                f"a retry with the {label} token and Idempotency-Key {key!r} got {show(again.response)}; "
                f"expected 202 with that token's own run {expected!r}",
                on=again,
            )
    # Another body under the other token: not a reuse of the first token's key, so no 409.
    key2 = new_key()
    if ctx.post_run(raw, key=key2).run_id is not None:
        changed = {"clientId": client_id, "workflow": workflow, "inputs": {"rc-other-credential": True}}
        crossed = ctx.post_run(compact_bytes(changed), key=key2, client=other)
        ctx.expect(
            "IDEM-007",
            crossed.status_code == 202 and crossed.run_id is not None,
            f"a different body with Idempotency-Key {key2!r} (used by the first token only) sent with the second "
            f"token got {show(crossed.response)}; expected 202 with a new run: the second token never used "
            "that key",
            on=crossed,
        )


@check("IDEM-008", needs=["fixture:quick"])
def invalid_keys_are_rejected(ctx: CheckContext) -> None:
    """Keys empty, over 255 characters or outside visible ASCII get 400 and start nothing; 255 is fine."""
    client_id = ctx.fresh_client_id("keys")
    raw = compact_bytes({"clientId": client_id, "workflow": ctx.fixtures.workflow("quick")})
    invalid: list[tuple[str, str | bytes]] = [
        ("an empty key", ""),
        (f"a key of {KEY_MAX + 1} characters", "k" * (KEY_MAX + 1)),
        ("a key with a space", "rc key"),
        ("a key with a tab", "rc\tkey"),
        ("a key with non-ASCII characters (UTF-8 é)", "rc-clé".encode()),
    ]
    for label, value in invalid:
        answer = ctx.post_run(raw, key=value)
        ctx.expect(
            "IDEM-008",
            answer.status_code == 400,
            f"startRun with {label} (Idempotency-Key: {value!r}) got {show(answer.response)}; expected 400: a "
            "key is 1 to 255 characters from 0x21-0x7E (components.parameters.IdempotencyKey)",
            on=answer,
        )
    # The valid boundary: 255 characters (unique, so that no other run of the suite can have used it).
    longest = ("~" * KEY_MAX + new_key())[-KEY_MAX:]
    answer = ctx.post_run(raw, key=longest)
    started = [answer.run_id] if answer.run_id is not None else []
    ctx.expect(
        "IDEM-008",
        answer.status_code == 202 and answer.run_id is not None,
        f"startRun with a key of 255 visible ASCII characters got {show(answer.response)}; expected 202: "
        "1 to 255 characters from 0x21-0x7E is a valid key",
        on=answer,
    )
    expect_listed(
        ctx, "IDEM-008", client_id, started, "a request with an invalid key is rejected before anything is created"
    )


@check("IDEM-011", "IDEM-008", needs=["fixture:quick"])
def keys_are_compared_exactly(ctx: CheckContext) -> None:
    """Near misses of a used key (other case, a prefix, a suffix, in quotes, a character percent-encoded) are
    other keys; a look-alike is 400.

    Each is sent with the very body the key was used with: a server that folds case, trims, unquotes,
    percent-decodes or matches a prefix replays the first run (or answers 409), where exact comparison
    starts a new run for each. So do two keys of the maximum length that differ only in their last character. A
    look-alike (one letter swapped for its Cyrillic twin) is no visible-ASCII key.
    """
    client_id = ctx.fresh_client_id("nearkey")
    raw = compact_bytes({"clientId": client_id, "workflow": ctx.fixtures.workflow("quick")})
    key = new_key()
    first = ctx.post_run(raw, key=key)
    if first.run_id is None:
        raise ctx.fail("IDEM-011", f"startRun with a new key {key!r} got {show(first.response)}; expected 202")
    runs = {first.run_id: f"the key {key!r}"}
    for label, near in near_keys(key).items():
        _expect_own_run(
            ctx,
            ctx.post_run(raw, key=near),
            runs,
            f"startRun with Idempotency-Key {near!r} ({label} of {key!r}, used just before with this very body)",
            "keys are compared exactly, so this is another key (no case-folding, trimming, unquoting or prefix match)",
            f"the key {near!r}",
        )
    _longest_keys_compared_whole(ctx, raw, runs)
    again = ctx.post_run(raw, key=key)
    ctx.expect(
        "IDEM-011",
        again.status_code == 202 and again.run_id == first.run_id,
        f"after its near misses, a retry with the key {key!r} itself got {show(again.response)}; expected 202 "
        f"with its own run {first.run_id!r}: a near miss must not take the key over (IDEM-011)",
        on=again,
    )
    expect_listed(ctx, "IDEM-011", client_id, sorted(runs), "each near miss of the key starts its own run, once")
    fake = look_alike(key)
    answer = ctx.post_run(raw, key=fake.encode())
    ctx.expect(
        "IDEM-008",
        answer.status_code == 400,
        f"startRun with the look-alike Idempotency-Key {fake!r} (a Cyrillic letter in place of a Latin one of "
        f"{key!r}, sent as UTF-8) got {show(answer.response)}; expected 400: a key is 1 to 255 characters "
        "from 0x21-0x7E, so it must not be normalised or transliterated into one (IDEM-008)",
        on=answer,
    )


def _expect_own_run(
    ctx: CheckContext, answer: StartedRun, runs: dict[str, str], sent: str, why: str, name: str
) -> None:
    """IDEM-011: `answer` (to what `sent` says) is 202 with a run of its own, not one of `runs` (runId -> whose),
    where it is then kept under `name`."""
    earlier = runs.get(answer.run_id or "")
    ctx.expect(
        "IDEM-011",
        answer.status_code == 202 and answer.run_id is not None and earlier is None,
        f"{sent} got {show(answer.response)}"
        + (f", the run of {earlier}" if earlier else "")
        + f"; expected 202 with a new run: {why} (IDEM-011)",
        on=answer,
    )
    if answer.run_id is not None and earlier is None:
        runs[answer.run_id] = name


def _longest_keys_compared_whole(ctx: CheckContext, raw: bytes, runs: dict[str, str]) -> None:
    """Two keys of the maximum length, 255, that differ only in their last character, with one body:
    two runs, and each key replays its own. A server that stores keys cut short (a VARCHAR(64) that
    truncates, an index on a prefix) takes the second for the first, which keys of ordinary length
    never show. Their distinct part comes first, so no other key of the suite shares their start."""
    longest = (new_key() + "~" * KEY_MAX)[:KEY_MAX]
    other = longest[:-1] + "!"
    first = ctx.post_run(raw, key=longest)
    if first.run_id is None:
        # invalid_keys_are_rejected judges a 255-character key that is refused (IDEM-008).
        ctx.skip(
            "IDEM-011",
            f"a key of {KEY_MAX} characters was not taken ({show(first.response)}), so whether "
            "keys of the maximum length are compared whole was not tried",
        )
        return
    runs[first.run_id] = f"the {KEY_MAX}-character key {longest[:12]}…"
    _expect_own_run(
        ctx,
        ctx.post_run(raw, key=other),
        runs,
        f"startRun with a {KEY_MAX}-character Idempotency-Key that differs from one used just before with this very "
        "body only in its last character",
        f"a key is compared whole, all {KEY_MAX} characters (store it uncut)",
        f"the {KEY_MAX}-character key ending in '!'",
    )
    replay = ctx.post_run(raw, key=longest)
    ctx.expect(
        "IDEM-011",
        replay.status_code == 202 and replay.run_id == first.run_id,
        f"a retry with the first {KEY_MAX}-character key got {show(replay.response)}; expected 202 with its own "
        f"run {first.run_id!r}, whatever the key that differs only in its last character did (IDEM-011)",
        on=replay,
    )


@check("IDEM-009", needs=["fixture:quick"])
def rejected_requests_keep_their_key(ctx: CheckContext) -> None:
    """A request rejected with 400, 401, 413 or 415 does not use up its key: a valid one with it starts a run."""
    client_id = ctx.fresh_client_id("reject")
    body = {"clientId": client_id, "workflow": ctx.fixtures.workflow("quick")}
    raw = compact_bytes(body)
    too_big = compact_bytes({**body, "inputs": {"pad": "x" * MAX_BODY_BYTES}})
    legs: list[tuple[str, int, Any]] = [
        ("an unknown field", 400, {"content": compact_bytes({**body, "rc-unknown-field": 1})}),
        ("an invalid token", 401, {"content": raw, "token": f"rc-not-a-token-{uuid.uuid4().hex}"}),
        ("a body over 1 MiB", 413, {"content": too_big}),
        ("Content-Type text/plain", 415, {"content": raw, "content_type": "text/plain"}),
    ]
    started: list[str] = []
    for label, status, kwargs in legs:
        key = new_key()
        try:
            rejected = ctx.post_run(key=key, **kwargs).status_code
        except httpx.TransportError as exc:
            # No answer is no rejection: the server dropped the exchange, which is its failure
            # (ERR-001), and whether a rejected request keeps its key was not tried.
            reason = f"startRun with {label} got no answer ({type(exc).__name__}: {exc})"
            ctx.record_failure("ERR-001", f"{reason}; it must get {status}, and every request an answer (ERR-001)")
            ctx.skip("IDEM-009", f"no answer to judge: {reason}, so no {status} rejection to retry the key after")
            continue
        if rejected == 202:
            # The server took the request (another check reports that); this key is legitimately used,
            # and this leg's premise, a rejected request, did not happen.
            ctx.skip(
                "IDEM-009",
                f"startRun with {label} was accepted (202), not rejected with {status}, so whether a request "
                f"rejected with {status} keeps its key was not tried (the check of that rejection reports it)",
            )
            continue
        valid = ctx.post_run(raw, key=key)
        if ctx.expect(
            "IDEM-009",
            valid.status_code == 202 and valid.run_id is not None,
            f"a startRun with {label} and Idempotency-Key {key!r} was rejected with {rejected}; the valid request "
            f"with the same key then got {show(valid.response)}; expected 202 and a new run: a request rejected "
            "before a run exists must not use up its key (claim the key only once the request is valid)",
            on=valid,
        ):
            started.append(cast(str, valid.run_id))
            replay = ctx.post_run(raw, key=key)
            ctx.expect(
                "IDEM-009",
                replay.status_code == 202 and replay.run_id == valid.run_id,
                f"after the rejected request ({label}) and the valid one with Idempotency-Key {key!r}, a retry got "
                f"{show(replay.response)}; expected 202 with runId {valid.run_id!r}",
                on=replay,
            )
    expect_listed(ctx, "IDEM-009", client_id, started, "only the valid requests start runs")


@check("IDEM-010", needs=["fixture:quick"])
def no_key_means_a_new_run(ctx: CheckContext) -> None:
    """Without an Idempotency-Key, each startRun starts a new run, even with a repeated body: sent one after
    another, and side by side (a server that coalesces identical requests in flight shows only there)."""
    client_id = ctx.fresh_client_id("nokey")
    raw = compact_bytes({"clientId": client_id, "workflow": ctx.fixtures.workflow("quick")})
    answers = [ctx.post_run(raw) for _ in range(3)]
    ids = [a.run_id for a in answers]
    ctx.expect(
        "IDEM-010",
        all(a.status_code == 202 for a in answers) and None not in ids and len(set(ids)) == len(ids),
        f"three startRuns of one body without Idempotency-Key got {[show(a.response) for a in answers]}; "
        "expected 202 three times with three different runIds: only a key makes a retry a replay",
        on=answers,
    )
    side = max(2, ctx.session.fan_out)
    barrier = threading.Barrier(side)

    def together(_: int) -> StartedRun:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=ctx.session.request_timeout)  # all sent at once: the point is overlap
        return ctx.post_run(raw)

    with concurrent.futures.ThreadPoolExecutor(max_workers=side, thread_name_prefix="rc-nokey") as pool:
        at_once = list(pool.map(together, range(side)))
    new = [a.run_id for a in at_once]
    ctx.expect(
        "IDEM-010",
        all(a.status_code == 202 for a in at_once) and len(set(new)) == side and not set(new) & set(ids),
        f"{side} startRuns of one body without Idempotency-Key sent side by side got "
        f"{[show(a.response) for a in at_once]}; expected 202 each with a runId of its own (and none of the "
        f"three sent before, {ids}): requests in flight at once are as many requests",
        on=at_once,
    )
    started = sorted({i for i in [*ids, *new] if i is not None})
    expect_listed(
        ctx,
        "IDEM-010",
        client_id,
        started,
        f"{3 + side} requests without a key (3 in turn, {side} at once) make as many runs",
    )
