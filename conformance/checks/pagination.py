"""listRuns pagination (PAGE-001..010): walks, cursors, filters and limits.

Every check lists only runs of clientIds it made fresh, so other checks' runs (and whatever else
the server holds) never change what it expects. The walk under concurrent inserts is the one
that finds offset cursors: a background thread creates runs of the walked clientId while the
walk goes on, at least one per page, each finished before the next page is asked for, so a
cursor that counts positions repeats or drops runs every time, not by luck.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import httpx

from conformance.check_helpers import show, start_fixture, start_fixtures
from conformance.client import ApiResponse
from conformance.context import CheckContext
from conformance.listing import (
    MAX_PAGES,
    ids_of,
    items_of,
    next_of,
    query_text,
    wait_listed_terminal,
    walk_listing,
)
from conformance.meaning import parse_instant, same_page
from conformance.near_misses import look_alike, near_client_ids
from conformance.registry import Skipped, check

WALK_LIMIT = 5  # small, so that even the quick profile's walk spans several pages
DEFAULT_LIMIT = 50  # the page size without limit (PAGE-002)
DEFAULT_EXTRA = 3  # runs beyond one default page, so that a second page must follow


def _check_sequence(
    ctx: CheckContext, pages: list[ApiResponse], limit: int, query: str, *, complete: int | None = None
) -> None:
    """Page sizes (PAGE-002) and where nextCursor is null (PAGE-004) along one walk.

    `complete`: when known, the number of runs the listing holds (nothing created meanwhile).
    """
    sizes = [len(items_of(p) or []) for p in pages]
    for number, (page, size) in enumerate(zip(pages, sizes, strict=True), start=1):
        last = number == len(pages)
        if not last:
            ctx.expect(
                "PAGE-002",
                size == limit,
                f"page {number} of the walk {query} held {size} runs (page sizes {sizes}) and a nextCursor; a page "
                f"holds exactly limit={limit} runs unless it is the last (PAGE-002)",
            )
        elif number > 1:
            ctx.expect(
                "PAGE-004",
                size > 0,
                f"page {number - 1} of the walk {query} had a nextCursor, but it led to an empty page ({show(page)}); "
                "nextCursor must be null on the page after which no run follows (PAGE-004)",
            )
        ctx.expect(
            "PAGE-002",
            size <= limit,
            f"page {number} of the walk {query} held {size} runs, more than limit={limit} (PAGE-002)",
        )
    if complete is not None:
        ctx.expect(
            "PAGE-004",
            sum(sizes) == complete,
            f"a walk {query} over {complete} runs, with none created meanwhile, gave pages of {sizes} runs; "
            "nextCursor is null exactly when no run follows, so the pages hold every run once (PAGE-004)",
        )


class _Creator(threading.Thread):
    """Creates runs of one clientId while a walk goes on: one per page the walk asks for.

    `allow(n)` lets creation n start at once (in parallel with the page the walk is fetching),
    `wait(n)` blocks until it is done; at most `max_runs` runs are created in all.
    """

    def __init__(self, ctx: CheckContext, client_id: str, workflow: dict[str, Any], max_runs: int) -> None:
        super().__init__(name=f"rc-creator-{client_id}", daemon=True)
        self.ctx = ctx
        self.client_id = client_id
        self.workflow = workflow
        self.max_runs = max_runs
        self.created: list[str] = []
        self.landed: list[int] = []  # for each run created, the page during which it was created
        self.refused: list[str] = []  # answers other than 202 (5xx included: ERR-001 records those centrally)
        self.not_accepted: list[str] = []  # of those, the ones that are no 5xx: SCHEMA-005's failures
        self.errors: list[str] = []  # no answer at all
        self._cond = threading.Condition()
        self._allowed = 0
        self._done = 0
        self._stopped = False

    def allow(self, count: int) -> None:
        with self._cond:
            self._allowed = max(self._allowed, count)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._done >= count or self._stopped, timeout=timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or self._allowed > self._done)
                if self._stopped:
                    return
                number = self._done + 1
            if number <= self.max_runs:
                try:
                    started = self.ctx.start_run(self.workflow, client_id=self.client_id)
                    if started.run_id is not None:
                        self.created.append(started.run_id)
                        self.landed.append(number)
                    else:
                        self.refused.append(show(started.response))
                        if started.status_code < 500:
                            self.not_accepted.append(show(started.response))
                except Exception as exc:  # the walk goes on; the report names what went wrong
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            with self._cond:
                self._done += 1
                self._cond.notify_all()


def _report_inserts(ctx: CheckContext, creator: _Creator, query: str, pages: int) -> None:
    """What became of the runs created during the walk: each is a startRun that must get 202, and
    without one that landed before the last page the walk was an ordinary walk, so its claim under
    concurrent inserts is not verified (a skip, never a pass)."""
    tried = len(creator.created) + len(creator.refused) + len(creator.errors)
    if tried:
        failed = creator.not_accepted + creator.errors
        ctx.expect(
            "SCHEMA-005",
            not failed,
            f"{len(failed)} of the {tried} startRuns of the quick fixture sent during the walk {query} got no 202: "
            f"{failed[:2]}; a valid startRun gets 202 and a RunRef, also while a listing is read (SCHEMA-005)",
        )
    if not any(number < pages for number in creator.landed):
        reasons = (creator.refused + creator.errors)[:2]
        ctx.skip(
            "PAGE-006",
            f"no run was created while the walk {query} went on (none of the {tried} startRuns sent during its "
            f"{pages} page(s) got 202 before the last page was asked for{f'; e.g. {reasons}' if reasons else ''}), "
            "so the walk's claim under concurrent inserts (no run twice, none missing) was not put to the test",
        )


@check("PAGE-006", "PAGE-001", "PAGE-002", "PAGE-004", "PAGE-009", needs=["fixture:quick"])
def walk_during_inserts(ctx: CheckContext) -> None:
    """A walk while runs are created: no run twice, every run present at the start exactly once, newest first.

    profile.walk_size runs of a fresh clientId (a few of another clientId in between), then a
    walk of that clientId with a small limit while another thread creates more runs of it (one
    during each page). Runs created during the walk may or may not appear; none may appear twice.
    """
    client_id = ctx.fresh_client_id("walk")
    decoy = ctx.fresh_client_id("walk-decoy")
    initial: list[str] = []
    for number in range(ctx.profile.walk_size):
        initial.append(start_fixture(ctx, "quick", client_id))
        if number % 4 == 1:
            # Runs of another clientId in between: a clientId filter lost on a later page shows them.
            start_fixture(ctx, "quick", decoy)
    creator = _Creator(ctx, client_id, ctx.fixtures.workflow("quick"), max_runs=ctx.profile.walk_size)
    creator.start()
    pages: list[ApiResponse] = []
    items: list[dict[str, Any]] = []
    query = query_text(WALK_LIMIT, {"clientId": client_id})
    wait = ctx.session.request_timeout + 1.0
    # A run is created while each page is fetched, and exists before the next one is asked for.
    walk = ctx.walk(limit=WALK_LIMIT, max_pages=MAX_PAGES, before_page=creator.allow, clientId=client_id)
    try:
        for number, page in enumerate(walk, start=1):
            creator.wait(number, wait)
            pages.append(page)
            got = items_of(page)
            if got is None:
                raise ctx.fail(
                    "PAGE-006",
                    f"page {number} of the walk {query} answered {show(page)}; every nextCursor the server issues "
                    "must lead to a 200 RunList, also while runs are being created (PAGE-006)",
                )
            items.extend(got)
        if walk.cut:
            raise ctx.fail("PAGE-004", f"the walk {query} did not end after {MAX_PAGES} pages (PAGE-004)")
    finally:
        creator.stop()
        creator.join(wait)

    _report_inserts(ctx, creator, query, len(pages))
    seen = ids_of(items)
    counts = Counter(seen)
    twice = sorted(run for run, n in counts.items() if n > 1)
    ctx.expect(
        "PAGE-006",
        not twice,
        f"the walk {query} returned {len(twice)} run(s) more than once ({twice[:5]}) while {len(creator.created)} "
        "run(s) were created during it; a walk returns no run twice, whatever is created meanwhile — position-based "
        "(offset) cursors do this; encode the last run's sort key (createdAt, runId) in the cursor (PAGE-006)",
    )
    missing = [run for run in initial if counts[run] == 0]
    ctx.expect(
        "PAGE-006",
        not missing,
        f"the walk {query} ({len(pages)} pages, sizes {[len(items_of(p) or []) for p in pages]}) never returned "
        f"{len(missing)} of the {len(initial)} runs that existed when it started ({missing[:5]}); a walk returns "
        "every run that matched its filters from its start to its end exactly once (PAGE-006)",
    )
    foreign = [item for item in items if item.get("clientId") != client_id]
    ctx.expect(
        "PAGE-009",
        not foreign,
        f"the walk {query} returned {len(foreign)} run(s) of other clientIds "
        f"({[(i.get('runId'), i.get('clientId')) for i in foreign[:3]]}); clientId is an exact-match filter on "
        "every page (PAGE-009)",
    )
    for before, after in itertools.pairwise(items):
        t1, t2 = parse_instant(before.get("createdAt")), parse_instant(after.get("createdAt"))
        if not ctx.expect(
            "PAGE-001",
            t1 is None or t2 is None or t2 <= t1,
            f"the walk {query} listed {before.get('runId')} (createdAt {before.get('createdAt')}) before "
            f"{after.get('runId')} (createdAt {after.get('createdAt')}); listRuns returns newest first, "
            "createdAt descending across all pages (PAGE-001)",
        ):
            break
    _check_sequence(ctx, pages, WALK_LIMIT, query)


@check("PAGE-002", "PAGE-004", needs=["fixture:quick"])
def page_sizes(ctx: CheckContext) -> None:
    """Pages are full but the last, nextCursor is null exactly on the last, and absent limit means 50.

    Five runs of a fresh clientId walked with limits 1, 2, 5 and 6; then limit absent over more
    than 50 runs of another fresh clientId (50 and a cursor, then the rest); then limit absent and
    200 on the whole listing, where a nextCursor must come with a full page.
    """
    client_id = ctx.fresh_client_id("sizes")
    runs = start_fixtures(ctx, 5, client_id)
    for limit in (1, 2, 5, 6):
        pages, _items_seen = walk_listing(ctx, "PAGE-004", limit, filter_rid="PAGE-004", clientId=client_id)
        _check_sequence(ctx, pages, limit, query_text(limit, {"clientId": client_id}), complete=len(runs))
    page = ctx.list_runs(clientId=client_id)
    got = items_of(page)
    if got is not None:
        ctx.expect(
            "PAGE-002",
            len(got) == len(runs) and next_of(page) is None,
            f"listRuns?clientId={client_id} without limit gave {len(got)} runs and nextCursor {next_of(page)!r} for "
            f"{len(runs)} runs; without limit a page holds up to 50 (PAGE-002, PAGE-004)",
        )
    _default_page_size(ctx)
    whole: tuple[int | None, ...] = (None, 200)
    for whole_limit in whole:
        page = ctx.list_runs(limit=whole_limit)
        got = items_of(page)
        if got is None:
            continue
        cap = 50 if whole_limit is None else whole_limit
        ctx.expect(
            "PAGE-002",
            len(got) <= cap and (next_of(page) is None or len(got) == cap),
            f"listRuns{'' if whole_limit is None else f'?limit={whole_limit}'} gave {len(got)} runs with nextCursor "
            f"{next_of(page)!r}; a page holds exactly {cap} runs{' (the default)' if whole_limit is None else ''} "
            "unless it is the last (PAGE-002)",
        )


def _default_page_size(ctx: CheckContext) -> None:
    """Without limit, a page holds exactly 50 runs when more follow: shown on runs this check makes,
    since what else the server holds (fewer than 50 runs on a fresh server) proves nothing."""
    client_id = ctx.fresh_client_id("default")
    runs = start_fixtures(ctx, DEFAULT_LIMIT + DEFAULT_EXTRA, client_id)
    query = f"listRuns?clientId={client_id}"
    first = ctx.list_runs(clientId=client_id)
    got = items_of(first)
    cursor = ctx.next_cursor(first, f"{query} (no limit)")
    if not ctx.expect(
        "PAGE-002",
        got is not None and len(got) == DEFAULT_LIMIT and cursor is not None,
        f"{query} without limit, over the {len(runs)} runs of that clientId, answered {len(got or [])} runs and "
        f"nextCursor {next_of(first)!r}: {show(first)}; without limit a page holds exactly 50 runs (the default) "
        "and a nextCursor when more follow (PAGE-002)",
    ):
        return
    second = ctx.list_runs(clientId=client_id, cursor=cursor)
    rest = items_of(second)
    listed = ids_of((got or []) + (rest or []))
    ctx.expect(
        "PAGE-002",
        rest is not None and len(rest) == DEFAULT_EXTRA and sorted(listed) == sorted(runs),
        f"the second page of {query} without limit held {len(rest or [])} runs ({show(second)}); after the first "
        f"50 of {len(runs)} runs it holds the other {DEFAULT_EXTRA}, and the two pages every run once (PAGE-002)",
    )
    ctx.expect(
        "PAGE-004",
        rest is None or next_of(second) is None,
        f"the second page of {query} without limit holds the last of its {len(runs)} runs but has nextCursor "
        f"{next_of(second)!r}; nextCursor is null exactly when no run follows (PAGE-004)",
    )


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
        )
        if not same:
            return


def _tampered(cursor: str) -> str:
    middle = len(cursor) // 2
    replacement = "A" if cursor[middle] != "A" else "B"
    return cursor[:middle] + replacement + cursor[middle + 1 :]


def _send_bad(ctx: CheckContext, rid: str, what: str, **params: Any) -> ApiResponse | None:
    """listRuns with a bad value; a dropped connection is retried once (a server that crashed on the
    previous request may have closed the pooled connection), then recorded against `rid`."""
    for attempt in (1, 2):
        try:
            return ctx.list_runs(**params)
        except httpx.TransportError as exc:
            if attempt == 2:
                ctx.expect(
                    rid,
                    False,
                    f"listRuns with {what} got no answer ({type(exc).__name__}: {exc}); it must get 400 ({rid})",
                )
    return None


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
        ctx.expect(rid, True, "")
        return
    if (
        response.status_code == 200
        and same_as is not None
        and same_page(response.json_or_none(), same_as.json_or_none())
    ):
        ctx.expect(rid, True, "")
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
    ctx.expect(rid, False, f"listRuns with {what} answered {detail}: {show(response)}; it must get {allowed} ({rid})")


@check("PAGE-007", needs=["fixture:quick"])
def bad_cursors(ctx: CheckContext) -> None:
    """Tampered, truncated and made-up cursors get 400 (or, read leniently as the same cursor, its page):
    never a 5xx, never another page, never a page from the start."""
    client_id = ctx.fresh_client_id("badcursor")
    start_fixtures(ctx, 3, client_id)
    first = ctx.list_runs(limit=2, clientId=client_id)
    cursor = next_of(first)
    if not isinstance(cursor, str) or not cursor:
        raise Skipped(f"no cursor to tamper with: {show(first)} (PAGE-004 reports a missing nextCursor)")
    first_page = ids_of(items_of(first) or [])
    # The page the untouched cursor names: what a lenient decoder may answer for a changed one.
    original = ctx.list_runs(limit=2, cursor=cursor, clientId=client_id)
    if items_of(original) is None:
        raise ctx.fail(
            "PAGE-007",
            f"the cursor listRuns issued ({cursor[:60]!r}) was refused: {show(original)}; there is no page to tell a "
            "tampered cursor's answer from (a nextCursor must lead to the next page: PAGE-004)",
        )
    variants = {
        "a tampered cursor (one character in the middle changed)": _tampered(cursor),
        "a truncated cursor (its first half)": cursor[: len(cursor) // 2],
        "a truncated cursor (its last character dropped)": cursor[:-1],
        "a cursor with a character appended": cursor + "A",
        "a cursor repeated 20 times": cursor * 20,
        "a made-up cursor 'not a cursor!'": "not a cursor!",
        "a made-up cursor '{}'": "{}",
        "a made-up non-ASCII cursor": "éé",
    }
    for what, value in variants.items():
        if value == cursor:
            continue
        shown = f"{what} ({value[:60]!r})"
        response = _send_bad(ctx, "PAGE-007", shown, limit=2, cursor=value, clientId=client_id)
        _expect_refused(ctx, "PAGE-007", response, shown, first_page, same_as=original)


@check("PAGE-008", needs=["fixture:quick"])
def foreign_cursors(ctx: CheckContext) -> None:
    """A cursor sent with other status/clientId filters than it was issued for gets 400."""
    client_id = ctx.fresh_client_id("foreign")
    other = ctx.fresh_client_id("foreign-other")
    start_fixtures(ctx, 3, client_id)
    first = ctx.list_runs(limit=2, clientId=client_id)
    cursor = next_of(first)
    if not isinstance(cursor, str) or not cursor:
        raise Skipped(f"no cursor to reuse: {show(first)} (PAGE-004 reports a missing nextCursor)")
    first_page = ids_of(items_of(first) or [])
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
        _pages, items = walk_listing(ctx, "PAGE-009", 2, **filters)
        expected = {r for r, s in mine.items() if s == filters.get("status", s)}
        got = Counter(ids_of(items))
        missing = sorted(expected - set(got))
        twice = sorted(r for r, n in got.items() if n > 1)
        ctx.expect(
            "PAGE-006",
            not missing and not twice,
            f"the walk {query} over finished runs missed {missing[:4]} and repeated {twice[:4]}; a walk returns "
            "every matching run exactly once (PAGE-006)",
        )
        listed = [f"{run} (clientId {strays[run]})" for run in got if run in strays]
        ctx.expect(
            "PAGE-009",
            not listed,
            f"the walk {query} listed runs of clientIds that only resemble {client_id!r}: {listed[:3]}; clientId "
            "is an exact match: no prefix, suffix or case-insensitive match (PAGE-009)",
        )
    for label, (value, run_id) in near.items():
        _pages, items = walk_listing(ctx, "PAGE-009", 2, clientId=value)
        got_ids = ids_of(items)
        ctx.expect(
            "PAGE-009",
            got_ids == [run_id],
            f"the walk {query_text(2, {'clientId': value})} ({label} of {client_id!r}, whose runs are "
            f"{sorted(mine)[:4]}) returned {got_ids[:6]}; it holds exactly the one run of that clientId, {run_id}: "
            "clientId is an exact match, not by prefix, suffix or case (PAGE-009)",
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
        )
    for value in ("1", "200"):
        response = ctx.list_runs(limit=value, clientId=client_id)
        ctx.expect(
            "PAGE-003",
            response.status_code == 200,
            f"listRuns?limit={value} answered {show(response)}; limit {value} is within 1–200 and must be accepted "
            "(PAGE-003)",
        )


@check("PAGE-010")
def bad_filters(ctx: CheckContext) -> None:
    """A status that is not a RunStatus, or a clientId that is not a valid ClientId, gets 400.

    Near misses included: a status in other case, cut short, with a space or a look-alike letter,
    and a clientId with a space around it or a Cyrillic letter that looks Latin: a server that
    trims, case-folds or normalises before it validates lets them through.
    """
    client_id = ctx.fresh_client_id("badfilter")
    bad: list[tuple[str, str]] = [
        ("status", "done"),
        ("status", "SUCCEEDED"),
        ("status", "Succeeded"),
        ("status", "succeede"),
        ("status", "succeededx"),
        ("status", "succeeded "),
        ("status", " succeeded"),
        ("status", look_alike("succeeded")),
        ("status", "queued,running"),
        ("clientId", "has space"),
        ("clientId", "a" * 65),
        ("clientId", "bad/slash"),
        ("clientId", "é"),
        ("clientId", client_id + " "),
        ("clientId", " " + client_id),
        ("clientId", look_alike(client_id)),
    ]
    for name, value in bad:
        response = ctx.list_runs(
            limit=1, status=value if name == "status" else None, clientId=value if name == "clientId" else None
        )
        ctx.expect(
            "PAGE-010",
            response.status_code == 400,
            f"listRuns?{name}={value[:70]!r} answered {show(response)}; a {name} filter that is not a valid "
            f"{'RunStatus' if name == 'status' else 'ClientId (1–64 of A-Z a-z 0-9 . _ : -)'} gets 400 (PAGE-010)",
        )
