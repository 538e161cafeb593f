"""Where a walk ends, judged from traffic: PAGE-004 (nextCursor null exactly when no run follows the page).

A run walks listings it built on purpose; traffic holds walks whenever a client pages through
listRuns. The builder in conformance/observe.py links the pages into walks (a page sent with the
cursor an earlier page of the same credential returned, with that page's filters, is the walk's
next page). Only walks with no `status` filter are judged: a run may leave a status filter between
two pages, so what followed a page then need not follow it later. Without one, what followed a page
still follows it at any later time: runs are never deleted (LIFE-006) and neither their clientId nor
their createdAt ever changes. What one instance is, here (a page that is both is counted once):

- A page answered 200 with a non-null nextCursor whose next page (sent with that cursor, so after it
  was answered) was answered 200 under a limit of 1..200 or none (an empty page under another is
  PAGE-003's business): the next page must hold a run. An empty next page proves that no
  run followed the cursor's page when its cursor was given (the cursor should have been null), or
  that the next page lost what followed, which no correct server does either. Where a run is proven
  to follow the page (as below), its cursor was right and the empty page is not blamed on it.
- A page answered 200 that a run R must follow: R was shown to the same credential (a startRun 202
  for it, or a Run in a getRun or listRuns answer) by an answer completed before the walk's first
  page was sent, R matches the walk's clientId filter (if any), R's createdAt, as an instant, is
  strictly older than that of every run on the page (for an empty page, than the page before it
  along the cursor; an empty first page every run follows), and R is on no page of the walk up to
  this one. Its nextCursor must not be null.

Why no correct server is flagged by the second: the contract asks a walk to return every run that
matched its filters from its start to its end, so R (existing before the walk began, with a clientId
that never changes, and no status filter to leave) must come on some page; ordered by createdAt
descending, a strictly older R comes after this page's runs, and it was on no page before. "Before
the walk began" rather than "before the page was sent": a server may serve a walk from a snapshot
taken at its start, and a run created during the walk need not appear in it, whatever createdAt a
clock of the server's gave it. Same credential only: a server may show each credential its own runs
(and its own run IDs). Equal createdAt proves nothing (the tie-break is the server's); a createdAt
that is no instant makes its page or run no instance.

Order is real-time precedence only (`conformance.history.precedes`): latency and clocks within the
recording's precision make no finding. At most one finding per walk.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from conformance.history import History, Operation, precedes
from conformance.history_findings import Finding, Say
from conformance.meaning import Instant, parse_instant

__all__ = ["RULES", "page_end_findings"]

RULES = {"PAGE-004": "nextCursor is null exactly when no run follows the page"}
# The bound of an empty first page: every run is older than it, so every run follows the walk's start.
_END_OF_TIME = Instant(10**18, Decimal(0))


class _Page(NamedTuple):
    """A listRuns answered 200 with a RunList, in a walk."""

    op: Operation
    number: int
    items: list[Any]
    body: dict[str, Any]


@dataclass
class _Known:
    """A run as one credential was shown it: when it was first proven to exist, its clientId and createdAt."""

    proven: float = math.inf
    proof: int = -1  # the op that proved it first
    client_ids: set[str] = field(default_factory=set)
    created: set[Instant] = field(default_factory=set)
    created_by: int = -1  # the first op that showed its createdAt

    def client_id(self) -> str | None:
        return next(iter(self.client_ids)) if len(self.client_ids) == 1 else None

    def created_at(self) -> Instant | None:
        # Two createdAt for one run is another rule's finding; its place in the order is then unknown.
        return next(iter(self.created)) if len(self.created) == 1 else None


class _Runs:
    """One credential's runs of one clientId (or all of them): dated oldest first, and those with no createdAt."""

    def __init__(self, runs: dict[str, _Known]) -> None:
        dated = sorted((created, run_id) for run_id, run in runs.items() if (created := run.created_at()) is not None)
        self.created = [created for created, _ in dated]
        self.dated = [run_id for _, run_id in dated]
        self.undated = [run_id for run_id, run in runs.items() if run.created_at() is None]
        self.runs = runs

    def following(self, bound: Instant, began: float, before: set[str]) -> str | None:
        """A run proven before `began`, strictly older than `bound`, that no page up to this one showed."""
        older = itertools.islice(self.dated, bisect.bisect_left(self.created, bound))
        undated = self.undated if bound == _END_OF_TIME else []
        return next(
            (r for r in itertools.chain(older, undated) if self.runs[r].proven < began and r not in before), None
        )


def page_end_findings(history: History) -> tuple[Counter[str], list[Finding]]:
    """(instances per requirement, findings)."""
    say = Say(history)
    known = _known_runs(history)
    groups: dict[tuple[str, str | None], _Runs] = {}
    returned = Counter(
        (op.credential, body["nextCursor"])
        for op in history.operations
        if op.kind == "listRuns" and (body := _run_list(op)) is not None and isinstance(body.get("nextCursor"), str)
    )
    counted: set[int] = set()
    findings: list[Finding] = []
    for walk, ops in history.walks.items():
        pages = [
            _Page(op, op.page, body["items"], body) for op in ops if op.page is not None and (body := _run_list(op))
        ]
        if not pages or "status" in pages[0].op.query:
            continue
        credential, client_id = pages[0].op.credential, pages[0].op.query.get("clientId")
        if (credential, client_id) not in groups:
            mine = known.get(credential, {})
            chosen = {r: run for r, run in mine.items() if client_id is None or run.client_id() == client_id}
            groups[(credential, client_id)] = _Runs(chosen)
        runs = groups[(credential, client_id)]
        followed = _followed(pages, runs, history.walk_start[walk])
        found = _cursor_without_run(pages, followed, returned, counted, say)
        found = _null_before_run(pages, followed, runs, counted, say) or found
        if found is not None:
            findings.append(Finding("PAGE-004", f"walk {walk}: {found[0]} (PAGE-004: {RULES['PAGE-004']})", found[1]))
    return Counter({"PAGE-004": len(counted)} if counted else {}), findings


def _run_list(op: Operation) -> dict[str, Any] | None:
    """The RunList of a listRuns answered 200, or None."""
    body = op.body
    if (
        op.kind != "listRuns"
        or op.status != 200
        or not isinstance(body, dict)
        or not isinstance(body.get("items"), list)
    ):
        return None
    return body


def _valid_limit(op: Operation) -> bool:
    """An empty page under a limit the contract refuses is PAGE-003's business, not a sign of where a walk ends."""
    limit = op.query.get("limit")
    return limit is None or (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 200)


def _cursor_without_run(
    pages: Sequence[_Page], followed: dict[int, str], returned: Counter[tuple[str, str]], counted: set[int], say: Say
) -> tuple[str, tuple[int, ...]] | None:
    """The first page whose cursor led to an empty page: (what happened, the two ops). A page a run was
    proven to follow was right to give a cursor: the empty page after it is the one that says null wrongly."""
    found: tuple[str, tuple[int, ...]] | None = None
    for page in pages:
        cursor = page.body.get("nextCursor")
        if not isinstance(cursor, str):
            continue
        for nxt in pages:
            if nxt.number != page.number + 1 or nxt.op.query.get("cursor") != cursor or not _valid_limit(nxt.op):
                continue
            # Sent with this page's cursor, so after its answer: unless another answer gave that cursor too.
            if returned[(page.op.credential, cursor)] > 1 and not precedes(page.op, nxt.op):
                continue
            counted.add(page.op.index)
            if not nxt.items and found is None and page.op.index not in followed:
                found = (
                    f"{say.op(page.op.index)} gave nextCursor {cursor!r}, and {say.op(nxt.op.index)}, sent with it, "
                    "answered 200 with no run: either no run followed the first page, whose nextCursor should then "
                    "have been null, or the next page lost the runs that did",
                    (page.op.index, nxt.op.index),
                )
    return found


def _followed(pages: Sequence[_Page], runs: _Runs, began: float) -> dict[int, str]:
    """For each page (by op index) that a run was proven to follow, one such run."""
    shown: dict[int, set[str]] = {}
    for page in pages:
        ids = {item["runId"] for item in page.items if isinstance(item, dict) and isinstance(item.get("runId"), str)}
        shown.setdefault(page.number, set()).update(ids)
    followed: dict[int, str] = {}
    for page in pages:
        bound = _bound(page, pages)
        if bound is None:
            continue
        before = set().union(*(ids for number, ids in shown.items() if number <= page.number))
        run_id = runs.following(bound, began, before)
        if run_id is not None:
            followed[page.op.index] = run_id
    return followed


def _null_before_run(
    pages: Sequence[_Page], followed: dict[int, str], runs: _Runs, counted: set[int], say: Say
) -> tuple[str, tuple[int, ...]] | None:
    """The first page that ended the walk although a run was proven to follow it: (what happened, the ops)."""
    found: tuple[str, tuple[int, ...]] | None = None
    for page in pages:
        cursor = page.body.get("nextCursor", False)
        run_id = followed.get(page.op.index)
        if not (cursor is None or isinstance(cursor, str)) or run_id is None:
            continue
        counted.add(page.op.index)
        if cursor is None and found is None:
            run = runs.runs[run_id]
            proofs = tuple(dict.fromkeys(i for i in (run.proof, run.created_by, page.op.index) if i >= 0))
            older = "older than every run on it" if page.items else "older than every run on the page before it"
            if page.number == 0 and not page.items:
                older = "every run follows a walk's start"
            found = (
                f"{say.op(page.op.index)} answered nextCursor null, but run {run_id}, which {say.op(run.proof)} had "
                "shown to the same credential before the walk began, matches the walk's filters, was on no page of "
                f"the walk so far, and comes after this page ({older}): a run followed it",
                proofs,
            )
    return found


def _bound(page: _Page, pages: Sequence[_Page]) -> Instant | None:
    """The createdAt every run that follows the page is strictly older than, or None when it is unknown."""
    if page.items:
        created = [parse_instant(item.get("createdAt")) if isinstance(item, dict) else None for item in page.items]
        dated = [c for c in created if c is not None]
        return min(dated) if len(dated) == len(created) else None
    if page.number == 0 and "cursor" not in page.op.query:
        return _END_OF_TIME
    cursor = page.op.query.get("cursor")
    earlier = [p for p in pages if p.number == page.number - 1 and p.body.get("nextCursor") == cursor]
    # Answered twice with the same cursor (a retry), the two may hold other runs: which one led here is unknown.
    return _bound(earlier[0], pages) if len(earlier) == 1 else None


def _known_runs(history: History) -> dict[str, dict[str, _Known]]:
    """Per credential, every run its answers proved to exist: when first, its clientId, its createdAt."""
    known: dict[str, dict[str, _Known]] = {}
    for op in history.operations:
        if op.completed is None or not isinstance(op.body, dict):
            continue
        shown: list[tuple[Any, dict[str, Any] | None, str | None]] = []  # (runId, the Run shown, the clientId sent)
        if op.kind == "startRun" and op.status == 202:
            shown.append((op.body.get("runId"), None, op.client_id))
        elif op.kind == "getRun" and op.status == 200:
            shown.append((op.body.get("runId"), op.body, None))
        elif (body := _run_list(op)) is not None:
            shown += [(item.get("runId"), item, None) for item in body["items"] if isinstance(item, dict)]
        runs = known.setdefault(op.credential, {})
        for run_id, run, sent in shown:
            if not isinstance(run_id, str):
                continue
            entry = runs.setdefault(run_id, _Known())
            if op.completed < entry.proven:
                entry.proven, entry.proof = op.completed, op.index
            client_id = sent if run is None else run.get("clientId")
            if isinstance(client_id, str):
                entry.client_ids.add(client_id)
            created = parse_instant(run.get("createdAt")) if run is not None else None
            if created is not None:
                entry.created.add(created)
                entry.created_by = op.index if entry.created_by < 0 else entry.created_by
    return known
