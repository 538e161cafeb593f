"""Reading listRuns for a check: a page's runs, walks of a whole listing, and what a clientId lists.

Every walk follows nextCursor through `CheckContext.next_cursor`, so only a null ends one (PAGE-004).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from conformance.check_helpers import TERMINAL, show
from conformance.client import ApiClient, ApiResponse
from conformance.context import CheckContext
from conformance.meaning import parse_instant
from conformance.outcomes import Example
from conformance.registry import Skipped
from conformance.walk import query_text

__all__ = [
    "MAX_PAGES",
    "created_order",
    "expect_listed",
    "ids_of",
    "items_of",
    "next_of",
    "query_text",
    "run_ids_for",
    "wait_listed_terminal",
    "walk_listing",
]

MAX_PAGES = 500


def items_of(page: ApiResponse) -> list[dict[str, Any]] | None:
    """The page's Runs, or None when the answer is not a 200 RunList."""
    data = page.json_or_none() if page.status_code == 200 else None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return None
    return [item for item in data["items"] if isinstance(item, dict)]


def next_of(page: ApiResponse) -> Any:
    data = page.json_or_none()
    return data.get("nextCursor") if isinstance(data, dict) else None


def ids_of(items: Sequence[dict[str, Any]]) -> list[str]:
    return [str(item.get("runId")) for item in items]


def created_order(items: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any], bool]]:
    """The instances of newest first (PAGE-001) in a listing: each pair of neighbours whose createdAt
    instants differ, and whether the newer comes first.

    Runs that share an instant (a server may keep whole seconds only) may come in any order, so a
    pair of them proves nothing either way; nor does a createdAt that is no instant (SCHEMA-002
    judges that). Neighbours suffice: a listing out of order anywhere is out of order at some
    neighbours whose instants differ.
    """
    found = []
    for before, after in itertools.pairwise(items):
        t1, t2 = parse_instant(before.get("createdAt")), parse_instant(after.get("createdAt"))
        if t1 is not None and t2 is not None and t1 != t2:
            found.append((before, after, t1 > t2))
    return found


def walk_listing(
    ctx: CheckContext, rid: str, limit: int | None, *, filter_rid: str = "PAGE-009", **filters: Any
) -> tuple[list[ApiResponse], list[dict[str, Any]]]:
    """Every page of a listing, following nextCursor.

    Stops the check (recorded against `rid`) at a page that is not a 200 RunList, and at a page
    holding only runs the walk already returned: a cursor that leads back is a walk that never ends.
    A run that does not match the filters stops it too (against `filter_rid`): a filter lost on
    the way would otherwise walk the whole server.
    """
    pages: list[ApiResponse] = []
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    walk = ctx.walk(limit=limit, max_pages=MAX_PAGES, **filters)
    query = walk.query
    for page in walk:
        pages.append(page)
        got = items_of(page)
        ctx.require(
            rid,
            got is not None,
            f"page {len(pages)} of the walk {query} answered {show(page)}; every nextCursor the server issues "
            f"must lead to a 200 RunList ({rid})",
            on=page,
        )
        assert got is not None
        wrong = [(i.get("runId"), i.get("clientId"), i.get("status")) for i in got if _mismatch(i, filters)]
        if any(value is not None for value in filters.values()):
            ctx.require(
                filter_rid,
                not wrong,
                f"page {len(pages)} of the walk {query} held runs that do not match its filters (runId, clientId, "
                f"status): {wrong[:4]}; every run on every page matches the request's filters, also on the pages "
                "a cursor leads to (PAGE-009)",
                on=page,
            )
        ids = ids_of(got)
        if ids and seen.issuperset(ids):
            raise ctx.fail(
                rid,
                f"page {len(pages)} of the walk {query} returned only runs earlier pages had returned ({ids[:5]}): "
                f"the cursor led back and the walk would never end; a walk returns no run twice ({rid})",
            )
        seen.update(ids)
        items.extend(got)
    if walk.cut:
        raise ctx.fail(rid, f"the walk {query} did not end after {MAX_PAGES} pages ({rid})")
    return pages, items


def _mismatch(item: dict[str, Any], filters: dict[str, Any]) -> bool:
    return any(item.get(name) != value for name, value in filters.items() if value is not None)


def wait_listed_terminal(ctx: CheckContext, client_id: str, expected: set[str]) -> None:
    """Wait until every expected run of `client_id` is terminal, so listings stop changing."""

    def probe() -> bool:
        page = ctx.list_runs(limit=200, clientId=client_id)
        items = items_of(page) or []
        return {i.get("runId") for i in items if i.get("status") in TERMINAL} >= expected

    if not ctx.poll(probe, lambda done: done):
        raise Skipped(
            f"the quick runs of {client_id} were not all terminal after {ctx.session.timeout:g} s, so the listing "
            "kept changing (LIFE-005 reports runs that do not finish)"
        )


def run_ids_for(
    ctx: CheckContext, client_id: str, client: ApiClient | None = None, *, pages: list[ApiResponse] | None = None
) -> list[str] | str:
    """The runIds listRuns shows for `client_id` (every page), or why they could not be read.

    `pages`: where to keep the pages read, for an assertion to name what it judged.
    """
    ids: list[str] = []
    walk = ctx.walk(
        client=client, limit=200, max_pages=100, what=f"listRuns?clientId={client_id}&limit=200", clientId=client_id
    )
    for page in walk:
        if pages is not None:
            pages.append(page)
        data = page.json_or_none() if page.status_code == 200 else None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            return f"listRuns?clientId={client_id} answered {show(page)}, so the runs could not be counted"
        ids += [item["runId"] for item in data["items"] if isinstance(item, dict) and "runId" in item]
    if walk.cut:
        return f"listRuns?clientId={client_id} did not end after 100 pages"
    return ids


def expect_listed(
    ctx: CheckContext, rid: str, client_id: str, expected: list[str], why: str, *, into: Example | None = None
) -> bool:
    """One assertion of `rid`: listRuns shows exactly `expected` for the clientId.

    A listing that cannot be read (not a 200 RunList, endless) counts nothing: `rid` is skipped
    with the reason, and the listing's own answer is judged where it belongs (ERR-001, PAGE-*).
    `into`: the Hypothesis example the assertion belongs to, so that a failure shrinks with it.
    """
    pages: list[ApiResponse] = []
    ids = run_ids_for(ctx, client_id, pages=pages)
    if isinstance(ids, str):
        ctx.skip(rid, f"no answer to judge: {ids}")
        return False
    judge = into if into is not None else ctx
    return judge.expect(
        rid,
        sorted(ids) == sorted(expected),
        f"listRuns?clientId={client_id} shows {len(ids)} run(s) {ids}, expected exactly {len(expected)} "
        f"{expected}: {why}",
        on=pages,
    )
