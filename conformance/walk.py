"""Walk: the one generator of a listing's pages that every walker of the suite uses (CheckContext.walk)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from conformance.client import ApiClient, ApiResponse

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = ["Walk", "query_text"]


class Walk:
    """The pages of one listing, each asked for once the one before it has been read: iterate it once.

    It ends after the page whose nextCursor ends the listing (null; or no 200 RunList, which the
    caller judges; CheckContext.next_cursor judges the cursor) or after `max_pages`, and then
    `cut` is True: each walker says what an endless walk means for it. `before_page(n)` runs just
    before page n is asked for (a check that creates runs while it walks starts one there).
    """

    def __init__(
        self,
        ctx: CheckContext,
        limit: int | None,
        filters: dict[str, Any],
        *,
        max_pages: int,
        client: ApiClient | None,
        what: str | None,
        before_page: Callable[[int], None] | None,
    ) -> None:
        self.ctx = ctx
        self.limit = limit
        self.filters = filters
        self.max_pages = max_pages
        self.client = client
        self.query = query_text(limit, filters)
        self.what = what or f"the walk listRuns?{self.query}"
        self.before_page = before_page
        self.cursor: str | None = None  # while a page is read: the cursor it was asked for with
        self.cut = False

    def __iter__(self) -> Iterator[ApiResponse]:
        for number in range(1, self.max_pages + 1):
            if self.before_page is not None:
                self.before_page(number)
            page = self.ctx.list_runs(client=self.client, limit=self.limit, cursor=self.cursor, **self.filters)
            yield page
            self.cursor = self.ctx.next_cursor(page, f"page {number} of {self.what}")
            if self.cursor is None:
                return
        self.cut = True


def query_text(limit: int | None, filters: dict[str, Any]) -> str:
    """`limit=5&clientId=x`: a listing's parameters as messages name it (the cursor left out)."""
    params = {"limit": limit, **filters}
    return "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
