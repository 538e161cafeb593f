"""listRuns pagination, cursors, filters and limits (PAGE-003, 005, 007..010).

Walks and page sizes are checks/pagination.py. Every check lists only runs of clientIds it made
fresh, so other checks' runs (and whatever else the server holds) never change what it expects.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import httpx

from conformance.check_helpers import show, start_fixture, start_fixtures
from conformance.client import ApiResponse
from conformance.comparisons import refused_values
from conformance.context import RUNS, CheckContext
from conformance.listing import ids_of, items_of, next_of, query_text, wait_listed_terminal, walk_listing
from conformance.meaning import same_page
from conformance.near_misses import near_client_ids, near_cursors
from conformance.registry import Skipped, check

# The longest request line every ordinary front end takes (nginx, Apache, Go, Node: 8 KB); only the
# checks about size limits send longer.
MAX_REQUEST_LINE = 8192


@check("PAGE-005", needs=["fixture:quick"])
def cursor_replay(ctx: CheckContext) -> None:
    """The same cursor asked twice, with no change in between, gives the same page."""
    client_id = ctx.fresh_client_id("replay")
    runs = start_fixtures(ctx, 7, client_id)
    wait_listed_terminal(ctx, client_id, set(runs))
    walk = ctx.walk(limit=3, clientId=client_id)
    for number, first in enumerate(walk, start=1):
        if walk.cursor is None:
            continue  # the first page: no cursor to ask for twice
        second = ctx.list_runs(limit=3, cursor=walk.cursor, clientId=client_id)
        a, b = items_of(first), items_of(second)
        if a is None or b is None:
            raise ctx.fail(
                "PAGE-005",
                f"a cursor the server issued for page {number} was refused: {show(first)} / {show(second)} (PAGE-005)",
            )
        # The page's runs by ID, in order, and whether one follows: a run's other fields (a server's
        # extra, volatile ones; a timestamp's spelling) are not what a cursor names.
        same = same_page(first.json_or_none(), second.json_or_none())
        ctx.expect(
            "PAGE-005",
            same,
            f"the cursor for page {number} of listRuns?limit=3&clientId={client_id}, asked twice with no run created "
            f"or changed in between, gave runs {ids_of(a)} (next page: {bool(next_of(first))}) then {ids_of(b)} "
            f"(next page: {bool(next_of(second))}); a cursor names a position in the listing, not a "
            "server-side iterator that advances on each use (PAGE-005)",
            on=[first, second],
        )
        if not same:
            return


def _send_bad(ctx: CheckContext, rid: str, what: str, **params: Any) -> ApiResponse | None:
    """listRuns with a bad value; a dropped connection is retried once (a server that crashed on the
    previous request may have closed the pooled connection), then is the server's failure (ERR-001):
    no answer is no 400, and `rid` is not judged on it."""
    for attempt in (1, 2):
        try:
            return ctx.list_runs(**params)
        except httpx.TransportError as exc:
            if attempt == 2:
                reason = f"listRuns with {what} got no answer ({type(exc).__name__}: {exc})"
                ctx.record_failure("ERR-001", f"{reason}; it must get 400, and every request an answer (ERR-001)")
                ctx.skip(rid, f"no answer to judge: {reason}")
    return None


def request_line_bytes(ctx: CheckContext, **params: Any) -> int:
    """The length of the request line listRuns with these parameters sends: `GET /…?… HTTP/1.1`."""
    query = {k: v for k, v in params.items() if v is not None}
    url = httpx.URL(ctx.client.base_url + RUNS, params=query)
    return len(b"GET " + url.raw_path + b" HTTP/1.1")


def _times_within_line_limit(ctx: CheckContext, value: str, repeat: int, **params: Any) -> int:
    """How often, up to `repeat`, `value` fits repeated in the cursor of a request line of 8 KB at
    most (1: not even twice). Front ends refuse longer lines with their own, non-Problem error
    (414, or a plain 400), which would read as the server's failure (ERR-002); no correct
    deployment can answer them as the contract says."""
    for times in range(repeat, 1, -1):
        if request_line_bytes(ctx, cursor=value * times, **params) <= MAX_REQUEST_LINE:
            return times
    return 1


def _expect_refused(
    ctx: CheckContext,
    rid: str,
    response: ApiResponse | None,
    what: str,
    first_page: list[str],
    same_as: ApiResponse | None = None,
) -> None:
    """400, or (with `same_as`, the page of the cursor the bad one was made from) exactly that page.

    A lenient decoder (hex in either case, base64 with or without padding) may read a changed
    cursor as the very same cursor; then the answer is that cursor's page, which is no tamper
    taking effect. Any other page, the first page again or a 5xx is.
    """
    if response is None:
        return  # no answer at all: _send_bad recorded it
    if response.status_code == 400:
        ctx.expect(rid, True, "", on=response)
        return
    if (
        response.status_code == 200
        and same_as is not None
        and same_page(response.json_or_none(), same_as.json_or_none())
    ):
        ctx.expect(rid, True, "", on=[response, same_as])
        return
    if response.status_code >= 500:
        detail = "a 5xx; nothing a client sends may yield a 5xx"
    elif response.status_code == 200:
        got = ids_of(items_of(response) or [])
        restart = got == first_page
        detail = f"a page{' — the first page again: a silent restart' if restart else ''} ({got[:5]})"
        if same_as is not None:
            detail += f", not the page of the cursor it was made from ({ids_of(items_of(same_as) or [])[:5]})"
    else:
        detail = f"status {response.status_code}"
    allowed = "400, or exactly the original cursor's page" if same_as is not None else "400"
    ctx.expect(
        rid,
        False,
        f"listRuns with {what} answered {detail}: {show(response)}; it must get {allowed} ({rid})",
        on=response,
    )


def _issued_cursor(ctx: CheckContext, client_id: str, purpose: str) -> tuple[str, list[str]]:
    """The cursor listRuns?limit=2 issues over three new runs of `client_id`, and its first page's runIds.

    Without one the check cannot go on: a skip (PAGE-004 reports a missing nextCursor).
    """
    start_fixtures(ctx, 3, client_id)
    first = ctx.list_runs(limit=2, clientId=client_id)
    cursor = next_of(first)
    if not isinstance(cursor, str) or not cursor:
        raise Skipped(f"no cursor to {purpose}: {show(first)} (PAGE-004 reports a missing nextCursor)")
    return cursor, ids_of(items_of(first) or [])


@check("PAGE-007", needs=["fixture:quick"])
def bad_cursors(ctx: CheckContext) -> None:
    """Tampered, truncated and made-up cursors get 400 (or, read leniently as the same cursor, its page):
    never a 5xx, never another page, never a page from the start."""
    client_id = ctx.fresh_client_id("badcursor")
    cursor, first_page = _issued_cursor(ctx, client_id, "tamper with")
    # The page the untouched cursor names: what a lenient decoder may answer for a changed one.
    original = ctx.list_runs(limit=2, cursor=cursor, clientId=client_id)
    if items_of(original) is None:
        raise ctx.fail(
            "PAGE-007",
            f"the cursor listRuns issued ({cursor[:60]!r}) was refused: {show(original)}; there is no page to tell a "
            "tampered cursor's answer from (a nextCursor must lead to the next page: PAGE-004)",
        )
    times = _times_within_line_limit(ctx, cursor, 20, limit=2, clientId=client_id)
    for what, value in near_cursors(cursor, times).items():
        if request_line_bytes(ctx, limit=2, cursor=value, clientId=client_id) > MAX_REQUEST_LINE:
            continue
        shown = f"{what} ({value[:60]!r})"
        response = _send_bad(ctx, "PAGE-007", shown, limit=2, cursor=value, clientId=client_id)
        _expect_refused(ctx, "PAGE-007", response, shown, first_page, same_as=original)


@check("PAGE-008", needs=["fixture:quick"])
def foreign_cursors(ctx: CheckContext) -> None:
    """A cursor sent with other status/clientId filters than it was issued for gets 400."""
    client_id = ctx.fresh_client_id("foreign")
    other = ctx.fresh_client_id("foreign-other")
    cursor, first_page = _issued_cursor(ctx, client_id, "reuse")
    issued = f"a cursor issued for clientId={client_id}"
    variants: list[tuple[str, dict[str, str]]] = [
        (f"{issued}, sent with clientId={other}", {"clientId": other}),
        (f"{issued}, sent with clientId={client_id}&status=succeeded", {"clientId": client_id, "status": "succeeded"}),
        (f"{issued}, sent without filters", {}),
    ]
    for what, filters in variants:
        response = _send_bad(
            ctx,
            "PAGE-008",
            what,
            limit=2,
            cursor=cursor,
            status=filters.get("status"),
            clientId=filters.get("clientId"),
        )
        _expect_refused(ctx, "PAGE-008", response, what, first_page)


@check("PAGE-009", "PAGE-006", needs=["fixture:quick"])
def page_filters(ctx: CheckContext) -> None:
    """status and clientId filters hold on every page, and each walk returns exactly the matching runs.

    Runs of two fresh clientIds are interleaved (and, with a failing fixture, succeeded and
    failed ones), so a filter dropped after the first page shows on the second.
    """
    client_id = ctx.fresh_client_id("filter")
    decoy = ctx.fresh_client_id("filter-decoy")
    failing = ctx.fixtures.has("failing")
    mine: dict[str, str] = {}
    decoys: list[str] = []
    for _ in range(3):
        mine[start_fixture(ctx, "quick", client_id)] = "succeeded"
        decoys.append(start_fixture(ctx, "quick", decoy))
        if failing:
            mine[start_fixture(ctx, "failing", client_id)] = "failed"
    # One run under each near miss of the walked clientId: a loose match (LIKE 'x%', case-folding)
    # lists them with its runs, and the walk of each lists the walked clientId's runs with it.
    near = {label: (value, start_fixture(ctx, "quick", value)) for label, value in near_client_ids(client_id).items()}
    wait_listed_terminal(ctx, client_id, set(mine))
    wait_listed_terminal(ctx, decoy, set(decoys))
    walks: list[dict[str, Any]] = [{"clientId": client_id}, {"clientId": client_id, "status": "succeeded"}]
    if failing:
        walks.append({"clientId": client_id, "status": "failed"})
    strays = {run_id: f"{value!r}, {label}" for label, (value, run_id) in near.items()}
    for filters in walks:
        query = query_text(2, filters)
        # walk_listing stops at the first run that does not match the filters (PAGE-009).
        pages, items = walk_listing(ctx, "PAGE-009", 2, **filters)
        expected = {r for r, s in mine.items() if s == filters.get("status", s)}
        got = Counter(ids_of(items))
        missing = sorted(expected - set(got))
        twice = sorted(r for r, n in got.items() if n > 1)
        ctx.expect(
            "PAGE-006",
            not missing and not twice,
            f"the walk {query} over finished runs missed {missing[:4]} and repeated {twice[:4]}; a walk returns "
            "every matching run exactly once (PAGE-006)",
            on=pages,
        )
        listed = [f"{run} (clientId {strays[run]})" for run in got if run in strays]
        ctx.expect(
            "PAGE-009",
            not listed,
            f"the walk {query} listed runs of clientIds that only resemble {client_id!r}: {listed[:3]}; clientId "
            "is an exact match: no prefix, suffix or case-insensitive match (PAGE-009)",
            on=pages,
        )
    for label, (value, run_id) in near.items():
        pages, items = walk_listing(ctx, "PAGE-009", 2, clientId=value)
        got_ids = ids_of(items)
        ctx.expect(
            "PAGE-009",
            got_ids == [run_id],
            f"the walk {query_text(2, {'clientId': value})} ({label} of {client_id!r}, whose runs are "
            f"{sorted(mine)[:4]}) returned {got_ids[:6]}; it holds exactly the one run of that clientId, {run_id}: "
            "clientId is an exact match, not by prefix, suffix or case (PAGE-009)",
            on=pages,
        )
    # The status filter alone, over the whole listing: the first pages must all match it.
    for page in itertools.islice(ctx.walk(limit=2, status="succeeded"), 3):
        wrong_status = [
            (i.get("runId"), i.get("status")) for i in items_of(page) or [] if i.get("status") != "succeeded"
        ]
        ctx.expect(
            "PAGE-009",
            not wrong_status,
            f"listRuns?status=succeeded returned runs of other statuses {wrong_status[:4]}: {show(page)} (PAGE-009)",
            on=page,
        )


@check("PAGE-003")
def limit_bounds(ctx: CheckContext) -> None:
    """limit below 1, above 200 or not an integer gets 400; 1 and 200 are accepted."""
    client_id = ctx.fresh_client_id("limit")
    for value in ("0", "201", "-1", "1.5", "abc", "1e1", "99999999999999999999"):
        response = ctx.list_runs(limit=value, clientId=client_id)
        ctx.expect(
            "PAGE-003",
            response.status_code == 400,
            f"listRuns?limit={value} answered {show(response)}; limit must be an integer from 1 to 200, anything "
            "else gets 400 (PAGE-003)",
            on=response,
        )
    for value in ("1", "200"):
        response = ctx.list_runs(limit=value, clientId=client_id)
        ctx.expect(
            "PAGE-003",
            response.status_code == 200,
            f"listRuns?limit={value} answered {show(response)}; limit {value} is within 1–200 and must be accepted "
            "(PAGE-003)",
            on=response,
        )


@check("PAGE-010")
def bad_filters(ctx: CheckContext) -> None:
    """A status that is not a RunStatus, or a clientId that is not a valid ClientId, gets 400.

    The bad values are near misses of valid ones that the spec's own schema refuses
    (comparisons.refused_values): each RunStatus in other case, cut short, extended, with a space,
    a look-alike letter or a foreign character, two as a list; a ClientId of ours with a space
    around it, a character its pattern refuses, a look-alike letter, one character over its
    maxLength. A server that trims, case-folds or normalises before it validates lets one through;
    a status added to the spec's enum is probed with no change here.
    """
    client_id = ctx.fresh_client_id("badfilter")
    bad = [("status", value) for value in refused_values("listRuns", "query", "status").values()]
    bad += [("clientId", value) for value in refused_values("listRuns", "query", "clientId", client_id).values()]
    for name, value in bad:
        response = ctx.list_runs(
            limit=1, status=value if name == "status" else None, clientId=value if name == "clientId" else None
        )
        ctx.expect(
            "PAGE-010",
            response.status_code == 400,
            f"listRuns?{name}={value[:70]!r} answered {show(response)}; a {name} filter that is not a valid "
            f"{'RunStatus' if name == 'status' else 'ClientId (1–64 of A-Z a-z 0-9 . _ : -)'} gets 400 (PAGE-010)",
            on=response,
        )
