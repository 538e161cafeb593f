"""listRuns pagination, walks and page sizes (PAGE-001, 002, 004, 006, 009): whole listings walked.

Page sizes are tried at both bounds with more runs than the bound: limit=1 over five runs, and the
spec's maximum (200) over one run more than that, at every profile, quick included: a server whose
own page-size cap is below the contract's (100, say) shows only on a listing longer than its cap.

Cursors, filters and limits are checks/pagination_cursors.py.

Every check lists only runs of clientIds it made fresh, so other checks' runs (and whatever else
the server holds) never change what it expects. The walk under concurrent inserts is the one
that finds offset cursors: a background thread creates runs of the walked clientId while the
walk goes on, at least one per page, each finished before the next page is asked for, so a
cursor that counts positions repeats or drops runs every time, not by luck.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections import Counter
from typing import Any

from conformance.check_helpers import show, start_fixture, start_fixtures
from conformance.client import ApiResponse
from conformance.context import CheckContext
from conformance.listing import (
    MAX_PAGES,
    created_order,
    ids_of,
    items_of,
    next_of,
    query_text,
    walk_listing,
)
from conformance.meaning import Instant, parse_instant
from conformance.registry import check
from conformance.spec import load_spec, operation_of

WALK_LIMIT = 5  # small, so that even the quick profile's walk spans several pages
DEFAULT_LIMIT = 50  # the page size without limit (PAGE-002)
DEFAULT_EXTRA = 3  # runs beyond one default page, so that a second page must follow
INSTANT_GAP_S = 1.05  # past a whole second: the coarsest createdAt a correct server keeps


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
                on=page,
            )
        elif number > 1:
            ctx.expect(
                "PAGE-004",
                size > 0,
                f"page {number - 1} of the walk {query} had a nextCursor, but it led to an empty page ({show(page)}); "
                "nextCursor must be null on the page after which no run follows (PAGE-004)",
                on=page,
            )
        ctx.expect(
            "PAGE-002",
            size <= limit,
            f"page {number} of the walk {query} held {size} runs, more than limit={limit} (PAGE-002)",
            on=page,
        )
    if complete is not None:
        ctx.expect(
            "PAGE-004",
            sum(sizes) == complete,
            f"a walk {query} over {complete} runs, with none created meanwhile, gave pages of {sizes} runs; "
            "nextCursor is null exactly when no run follows, so the pages hold every run once (PAGE-004)",
            on=pages,
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
        self.answers: list[ApiResponse] = []  # every answer a startRun got
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
                    self.answers.append(started.response)
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
    if creator.answers:
        failed = creator.not_accepted
        ctx.expect(
            "SCHEMA-005",
            not failed,
            f"{len(failed)} of the {tried} startRuns of the quick fixture sent during the walk {query} got no 202: "
            f"{failed[:2]}; a valid startRun gets 202 and a RunRef, also while a listing is read (SCHEMA-005)",
            on=creator.answers,
        )
    if creator.errors:
        # No answer is no rejection: the server dropped the exchange (ERR-001).
        ctx.record_failure(
            "ERR-001",
            f"{len(creator.errors)} of the {tried} startRuns sent during the walk {query} got no answer: "
            f"{creator.errors[:2]}; a server answers every request (ERR-001)",
        )
    if not any(number < pages for number in creator.landed):
        reasons = (creator.refused + creator.errors)[:2]
        ctx.skip(
            "PAGE-006",
            f"no run was created while the walk {query} went on (none of the {tried} startRuns sent during its "
            f"{pages} page(s) got 202 before the last page was asked for{f'; e.g. {reasons}' if reasons else ''}), "
            "so the walk's claim under concurrent inserts (no run twice, none missing) was not put to the test",
        )


def _created_at(ctx: CheckContext, run_id: str) -> Instant | None:
    response = ctx.get_run(run_id)
    data = response.json_or_none() if response.status_code == 200 else None
    return parse_instant(data.get("createdAt")) if isinstance(data, dict) else None


def _span_two_instants(ctx: CheckContext, client_id: str, initial: list[str]) -> None:
    """Make sure the walked runs have two createdAt instants, so newest first (PAGE-001) has an instance.

    A correct server may keep whole seconds only, and runs started in one burst then share one
    instant: in any order they prove nothing. One more run a second later is an instance.
    """
    first, last = _created_at(ctx, initial[0]), _created_at(ctx, initial[-1])
    if first is not None and first == last:
        time.sleep(INSTANT_GAP_S)
        initial.append(start_fixture(ctx, "quick", client_id))


@check("PAGE-006", "PAGE-001", "PAGE-002", "PAGE-004", "PAGE-009", "SCHEMA-005", needs=["fixture:quick"])
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
    _span_two_instants(ctx, client_id, initial)
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
        on=pages,
    )
    missing = [run for run in initial if counts[run] == 0]
    ctx.expect(
        "PAGE-006",
        not missing,
        f"the walk {query} ({len(pages)} pages, sizes {[len(items_of(p) or []) for p in pages]}) never returned "
        f"{len(missing)} of the {len(initial)} runs that existed when it started ({missing[:5]}); a walk returns "
        "every run that matched its filters from its start to its end exactly once (PAGE-006)",
        on=pages,
    )
    foreign = [item for item in items if item.get("clientId") != client_id]
    ctx.expect(
        "PAGE-009",
        not foreign,
        f"the walk {query} returned {len(foreign)} run(s) of other clientIds "
        f"({[(i.get('runId'), i.get('clientId')) for i in foreign[:3]]}); clientId is an exact-match filter on "
        "every page (PAGE-009)",
        on=pages,
    )
    instances = created_order(items)
    if not instances:
        ctx.skip(
            "PAGE-001",
            f"the {len(items)} runs the walk {query} returned all share one createdAt instant, so their order says "
            "nothing of newest first",
        )
    for before, after, newer_first in instances:
        if not ctx.expect(
            "PAGE-001",
            newer_first,
            f"the walk {query} listed {before.get('runId')} (createdAt {before.get('createdAt')}) before "
            f"{after.get('runId')} (createdAt {after.get('createdAt')}), an older run first; listRuns returns "
            "newest first, createdAt descending across all pages (PAGE-001)",
            on=pages,
        ):
            break
    _check_sequence(ctx, pages, WALK_LIMIT, query)


# PAGE-011 is the final reads' (conformance/final_reads.py): they ask again for pages these walks'
# cursors led to. Named here so that a run selecting it alone has cursors to ask for.
@check("PAGE-002", "PAGE-004", "PAGE-011", needs=["fixture:quick"])
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
            on=page,
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
            on=page,
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
        on=first,
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
        on=second,
    )
    ctx.expect(
        "PAGE-004",
        next_of(second) is None,
        f"the second page of {query} without limit holds the last of its {len(runs)} runs but has nextCursor "
        f"{next_of(second)!r}; nextCursor is null exactly when no run follows (PAGE-004)",
        on=second,
        reads=(rest,),
    )


@functools.cache
def _max_limit() -> int:
    """listRuns' largest limit, as the spec states it (its `maximum`)."""
    path, method = operation_of("listRuns")
    for parameter in load_spec()["paths"][path][method]["parameters"]:
        if parameter.get("in") == "query" and parameter.get("name") == "limit":
            return int(parameter["schema"]["maximum"])
    raise KeyError("the spec gives listRuns no limit")


def _start_many(ctx: CheckContext, count: int, client_id: str) -> list[str]:
    """`count` runs of the quick fixture under `client_id`, sent side by side when the session may
    (far from the server, hundreds of round trips one after another would be most of the check)."""
    workers = max(1, ctx.session.fan_out)
    if workers == 1:
        return start_fixtures(ctx, count, client_id)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rc-maxpage") as pool:
        return list(pool.map(lambda _: start_fixture(ctx, "quick", client_id), range(count)))


@check("PAGE-002", "PAGE-004", needs=["fixture:quick"])
def largest_page(ctx: CheckContext) -> None:
    """limit at its maximum over one run more: a page of exactly that many and a cursor, then the last one.

    The runs are the check's own (a fresh clientId), so the listing's length is known: a server that
    caps pages below the maximum gives a short page with a cursor (or drops the rest), one that reads
    a row too many gives a page over the limit, and either fails here whatever else the server holds.
    """
    limit = _max_limit()
    client_id = ctx.fresh_client_id("maxpage")
    runs = _start_many(ctx, limit + 1, client_id)
    pages, items = walk_listing(ctx, "PAGE-002", limit, filter_rid="PAGE-004", clientId=client_id)
    query = query_text(limit, {"clientId": client_id})
    first = items_of(pages[0]) or []
    ctx.expect(
        "PAGE-002",
        len(first) == limit and next_of(pages[0]) is not None,
        f"the first page of {query}, over the {len(runs)} runs of that clientId, held {len(first)} runs with "
        f"nextCursor {next_of(pages[0])!r}; limit={limit} is the documented maximum, and a page holds exactly "
        "limit runs (and a nextCursor) while more follow: a page-size cap of the server's own below it breaks "
        "clients that page by the contract's maximum (PAGE-002)",
        on=pages[0],
    )
    _check_sequence(ctx, pages, limit, query, complete=len(runs))
    listed = ids_of(items)
    ctx.expect(
        "PAGE-002",
        sorted(listed) == sorted(runs),
        f"the walk {query} ({len(pages)} pages, sizes {[len(items_of(p) or []) for p in pages]}) listed "
        f"{len(set(listed) & set(runs))} of the {len(runs)} runs of that clientId, {len(listed)} entries in all; "
        "the pages hold every run once (PAGE-002)",
        on=pages,
    )
