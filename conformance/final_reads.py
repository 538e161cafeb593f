"""Final reads: after the checks, before cleanup, re-verify what the run established and must last.

The checks judge each promise right after it is made: a key replayed within milliseconds, a
terminal run re-read a few times. A server that keeps idempotency records in a small cache, or
rewrites a finished run a while later, passes all of that. So the run ends as Jepsen's tests do,
with final reads of what it wrote: every key it used (bounded by profile, the earliest always
included: a bounded cache forgets those first) replays to its runId and still refuses another
body; every terminal run it saw is still there (LIFE-006: a retention job run too eagerly, a
run forgotten) and reads back the same (LIFE-002); every definition keeps its ETag and workflow;
a walk of each of its clientIds returns each of its runs once; and the earliest pages a cursor
the server issued led to are asked for again with that cursor (PAGE-011: cursors that expire, or
are signed with a secret drawn per process, pass every check, which follows a cursor at once).

What the run established is read from the exchanges the checks recorded (`ledger_of`): nothing
in a check has to remember it, and a check added later is covered without a word. Only answers
that settled a fact count: a 202 to a keyed startRun, a 200 Run, a 200 definition. An exchange
that got no answer (a timeout in the workload) is no fact, and neither is a body cut short or
with a token redacted out of it: replaying those bytes would not be the same request.

Never cry wolf: final reads run before cleanup, so nothing the suite cancels there is judged;
a run that was not terminal may still move (only its `cancelRequestedAt`, once set, is fixed);
and a key is replayed at most the run's duration after its first use. The Idempotency-Key draft
(draft-ietf-httpapi-idempotency-key-header, "Idempotency Key Validity and Expiry") lets a
server expire keys and asks it to publish how long it keeps them; this contract's IDEM-001 and
IDEM-003 name no expiry, so they hold for at least as long as a run of this suite, which is what
the final reads verify: a server may forget a key after a day, never within minutes. The contract
gives a cursor no lifetime either (CONTRACT, Listing: re-requesting one gives the same page while
nothing changed), so PAGE-011 holds one to its page for as long, across a restart too; a page is
re-requested only when nothing that could change it happened since (see `cursor_pages_of`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from conformance.client import RECORDED_BODY_LIMIT, ApiClient, ApiResponse
from conformance.context import CheckContext
from conformance.listing import run_ids_for
from conformance.meaning import json_equal, parse_json, same_instant
from conformance.redaction import REDACTED
from conformance.registry import Check
from conformance.results import Exchange
from conformance.spec import KEY_REUSED, terminal_statuses

__all__ = [
    "CHECK_NAME",
    "REQUIREMENTS",
    "Budget",
    "CursorPage",
    "Ledger",
    "cursor_pages_of",
    "final_reads_check",
    "ledger_of",
]

CHECK_NAME = "final_reads"
# The catalog's rules the final reads evaluate again, late: each is a promise with no expiry.
REQUIREMENTS = (
    *("IDEM-001", "IDEM-003", "LIFE-002", "LIFE-006", "CANCEL-005"),
    *("ETAG-001", "ETAG-004", "PAGE-006", "PAGE-011"),
)

MAIN, OTHER = "main", "other"  # which of the session's credentials an exchange was sent with
_START = re.compile(r"/api/v1/runs$")
_RUN = re.compile(r"/api/v1/runs/([^/]+)$")
_DEFINITION = re.compile(r"/api/v1/runs/([^/]+)/definition$")
_STAMPS = ("createdAt", "startedAt", "finishedAt", "cancelRequestedAt")

T = TypeVar("T")


@dataclass(frozen=True)
class Budget:
    """How many of each fact a profile re-reads (None: all of them)."""

    keys: int | None
    runs: int | None
    definitions: int | None
    client_ids: int | None
    cursors: int | None


BUDGETS = {
    "quick": Budget(keys=10, runs=40, definitions=20, client_ids=5, cursors=5),
    "default": Budget(keys=60, runs=200, definitions=80, client_ids=20, cursors=20),
    "thorough": Budget(keys=None, runs=None, definitions=None, client_ids=None, cursors=None),
}


@dataclass(frozen=True)
class KeyUse:
    """A keyed startRun that got 202: the key is bound to this runId and these bytes."""

    credential: str
    key: str
    body: str
    content_type: str
    run_id: str


@dataclass(frozen=True)
class SeenRun:
    """The last observation of a run in which it was terminal or had a cancel requested."""

    credential: str
    run_id: str
    run: dict[str, Any]
    read: bool  # shown by getRun, not only in a listing: that credential could read it by its runId


@dataclass(frozen=True)
class SeenDefinition:
    credential: str
    run_id: str
    etag: str
    workflow: Any  # the workflow submitted (or first read), None when no whole copy was recorded


@dataclass(frozen=True)
class CursorPage:
    """A 200 page that a cursor the server issued (a nextCursor it answered) led to, under a clientId filter."""

    credential: str
    query: tuple[tuple[str, str], ...]  # the request's query as sent, the cursor among it
    client_id: str
    run_ids: tuple[str, ...]  # the page's runIds, in its order


@dataclass
class Ledger:
    """What the run established, in the order the checks recorded it (earliest first)."""

    keys: list[KeyUse] = field(default_factory=list)
    runs: list[SeenRun] = field(default_factory=list)
    definitions: list[SeenDefinition] = field(default_factory=list)
    # (credential, clientId) -> the runIds a 202 gave under it, in order
    client_ids: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    cursors: list[CursorPage] = field(default_factory=list)  # by check (cursor_pages_of), not by ledger_of

    def empty(self) -> bool:
        return not (self.keys or self.runs or self.definitions or self.client_ids or self.cursors)


# --- what the run established --------------------------------------------------------------------
def _credential(exchange: Exchange) -> str | None:
    """Which session credential sent it; None without one (the anonymous client's probes)."""
    if not any(name.lower() == "authorization" for name in exchange.request_headers):
        return None
    return OTHER if "$RUNS_OTHER_TOKEN" in exchange.curl else MAIN


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _whole(text: str | None) -> str | None:
    """A recorded body the server saw in full: not cut short, no secret redacted out of it."""
    if text is None or len(text) > RECORDED_BODY_LIMIT or REDACTED in text:
        return None
    return text


def _json(text: str | None) -> Any:
    whole = _whole(text)
    if whole is None:
        return None
    try:
        return parse_json(whole)
    except ValueError:
        return None


def ledger_of(exchanges: Iterable[Exchange]) -> Ledger:
    """The facts the exchanges settled: keys bound, runs seen terminal (or cancel requested), definitions, clientIds."""
    ledger = Ledger()
    keys: dict[tuple[str, str], KeyUse] = {}
    runs: dict[str, SeenRun] = {}
    submitted: dict[str, Any] = {}  # runId -> the workflow its 202 was for
    definitions: dict[str, SeenDefinition] = {}
    for exchange in exchanges:
        credential = _credential(exchange)
        if credential is None or exchange.status is None or not 200 <= exchange.status < 300:
            continue
        path = urlsplit(exchange.url).path
        method = exchange.method.upper()
        answer = _json(exchange.response_body)
        if method == "POST" and _START.search(path) and exchange.status == 202:
            _started(ledger, keys, submitted, credential, exchange, answer)
        elif method == "GET" and _RUN.search(path) and isinstance(answer, dict):
            _seen(runs, credential, answer, read=True)
        elif method == "GET" and _START.search(path) and isinstance(answer, dict):
            for item in answer.get("items") or []:
                _seen(runs, credential, item, read=False)
        elif method == "GET" and (match := _DEFINITION.search(path)) and exchange.status == 200:
            run_id = unquote(match.group(1))
            etag = _header(exchange.response_headers, "etag")
            if etag is not None and run_id not in definitions:
                workflow = submitted.get(run_id, answer if isinstance(answer, dict) else None)
                definitions[run_id] = SeenDefinition(credential, run_id, etag, workflow)
    ledger.keys = list(keys.values())
    ledger.runs = list(runs.values())
    ledger.definitions = list(definitions.values())
    return ledger


def _started(
    ledger: Ledger,
    keys: dict[tuple[str, str], KeyUse],
    submitted: dict[str, Any],
    credential: str,
    exchange: Exchange,
    answer: Any,
) -> None:
    run_id = answer.get("runId") if isinstance(answer, dict) else None
    body = _json(exchange.request_body)
    if not isinstance(run_id, str) or not isinstance(body, dict):
        return
    if isinstance(body.get("workflow"), dict):
        submitted.setdefault(run_id, body["workflow"])
    client_id = body.get("clientId")
    if isinstance(client_id, str):
        known = ledger.client_ids.setdefault((credential, client_id), [])
        if run_id not in known:
            known.append(run_id)
    key = _header(exchange.request_headers, "idempotency-key")
    raw = _whole(exchange.request_body)
    if key is None or raw is None or REDACTED in key:
        return
    # The first 202 binds the key; a later one that disagrees is the checks' finding, not a new binding.
    content_type = _header(exchange.request_headers, "content-type") or "application/json"
    keys.setdefault((credential, key), KeyUse(credential, key, raw, content_type, run_id))


def _seen(runs: dict[str, SeenRun], credential: str, run: Any, *, read: bool) -> None:
    if not isinstance(run, dict) or not isinstance(run.get("runId"), str):
        return
    # Only what is fixed once seen: a terminal run (LIFE-002) and a requested cancel's instant (CANCEL-005).
    if run.get("status") in terminal_statuses() or run.get("cancelRequestedAt") is not None:
        previous = runs.get(run["runId"])
        if previous is None or previous.run.get("status") not in terminal_statuses():
            runs[run["runId"]] = SeenRun(credential, run["runId"], run, read)


_CLIENT_ID_TEXT = re.compile(r'"clientId"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ANY = object()  # the clientId of a start whose recorded body does not say it: it may be any


def _start_client_id(exchange: Exchange) -> object:
    """The clientId a startRun was sent with, read from the text where the record cut the body short."""
    body = _json(exchange.request_body)
    if isinstance(body, dict):
        value = body.get("clientId")
        return value if isinstance(value, str) else None  # no string, no run: a 400
    match = _CLIENT_ID_TEXT.search(exchange.request_body or "")
    if match is None:
        return _ANY
    try:
        value = json.loads(f'"{match.group(1)}"')
    except ValueError:
        return _ANY
    return value if isinstance(value, str) else _ANY


def cursor_pages_of(checks: Iterable[Sequence[Exchange]]) -> list[CursorPage]:
    """The pages cursors the server issued led to that must read the same at the end of the run.

    `checks`: each check's exchanges in the order they were answered. A page counts when it got 200,
    had a clientId filter and no status filter (a status filter's runs change as runs move), and its
    cursor was a nextCursor answered earlier in the same check, to the same credential, with the
    same filters (a cursor edited or made up is PAGE-007's). Never cry wolf: a run of that clientId
    created after the cursor's page was read would change it where createdAt ties (whole seconds);
    so every startRun of that clientId the run sent, in any check and with any answer but a 4xx,
    must have been answered before the page that issued the cursor, in the same check (answered
    before it, it was answered before the page it led to was asked for). Checks ran side by side,
    so a start in another check has no order with the page.
    """
    groups = [list(exchanges) for exchanges in checks]
    starts: dict[object, list[tuple[int, int, bool]]] = {}  # clientId -> (check, position, answered)
    for g, exchanges in enumerate(groups):
        for i, exchange in enumerate(exchanges):
            path = urlsplit(exchange.url).path
            if exchange.method.upper() != "POST" or not _START.search(path):
                continue
            if exchange.status is not None and 400 <= exchange.status < 500:
                continue  # refused: no run made
            starts.setdefault(_start_client_id(exchange), []).append((g, i, exchange.status is not None))

    def settled(client_id: str, g: int, before: int) -> bool:
        made = [*starts.get(client_id, []), *starts.get(_ANY, [])]
        return all(group == g and i < before and answered for group, i, answered in made)

    pages: list[CursorPage] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for g, exchanges in enumerate(groups):
        issued: dict[tuple[str, str], tuple[int, tuple[str | None, str | None]]] = {}
        for i, exchange in enumerate(exchanges):
            credential = _credential(exchange)
            split = urlsplit(exchange.url)
            if credential is None or exchange.method.upper() != "GET" or not _START.search(split.path):
                continue
            answer = _json(exchange.response_body) if exchange.status == 200 else None
            if not isinstance(answer, dict) or REDACTED in exchange.url:
                continue
            query = tuple(parse_qsl(split.query, keep_blank_values=True))
            params = dict(query)
            filters = (params.get("clientId"), params.get("status"))
            cursor, client_id = params.get("cursor"), params.get("clientId")
            if cursor is not None and client_id and "status" not in params and len(params) == len(query):
                issuer = issued.get((credential, cursor))
                run_ids = _page_run_ids(answer)
                if (
                    issuer is not None
                    and issuer[1] == filters
                    and run_ids is not None
                    and settled(client_id, g, issuer[0])
                    and (credential, query) not in seen
                ):
                    seen.add((credential, query))
                    pages.append(CursorPage(credential, query, client_id, run_ids))
            following = answer.get("nextCursor")
            if isinstance(following, str) and following:
                issued.setdefault((credential, following), (i, filters))
    return pages


def _page_run_ids(answer: dict[str, Any]) -> tuple[str, ...] | None:
    items = answer.get("items")
    if not isinstance(items, list):
        return None
    run_ids = [item.get("runId") if isinstance(item, dict) else None for item in items]
    return tuple(r for r in run_ids if isinstance(r, str)) if all(isinstance(r, str) for r in run_ids) else None


def earliest_first(items: Sequence[T], limit: int | None) -> list[T]:
    """At most `limit` items: the earliest half of the budget, the rest spread evenly over the others.

    The earliest are the ones a bounded cache or a short expiry loses first; the spread ones keep
    every part of the run (every check) in the sample.
    """
    if limit is None or len(items) <= limit:
        return list(items)
    head = (limit + 1) // 2
    rest = items[head:]
    spread = limit - head
    return [*items[:head], *(rest[(i + 1) * len(rest) // spread - 1] for i in range(spread))]  # the last included


# --- the reads -----------------------------------------------------------------------------------
def final_reads_check(ledger: Ledger, selected: Iterable[str]) -> Check | None:
    """The final reads as a check of the selected IDs it can evaluate, or None when it has none."""
    ids = tuple(rid for rid in REQUIREMENTS if rid in set(selected))
    if not ids or ledger.empty():
        return None
    return Check(CHECK_NAME, ids, lambda ctx: final_reads(ctx, ledger), frozenset())


def final_reads(ctx: CheckContext, ledger: Ledger) -> None:
    """Replay, re-read and re-walk what `ledger` holds, side by side (the session's fan_out)."""
    budget = BUDGETS.get(ctx.profile.name, BUDGETS["default"])
    wanted = ctx.requirements or frozenset()
    # The cursors first, before anything else is sent: a replayed key a faulty server takes for a
    # new start would add a run to a clientId, and a page is judged only while none was added.
    first: list[Callable[[], None]] = []
    if "PAGE-011" in wanted:
        first += [_bind(_rerequest_cursor, ctx, page) for page in earliest_first(ledger.cursors, budget.cursors)]
    tasks: list[Callable[[], None]] = []
    if wanted & {"IDEM-001", "IDEM-003"}:
        tasks += [_bind(_replay_key, ctx, use) for use in earliest_first(ledger.keys, budget.keys)]
    if wanted & {"LIFE-002", "LIFE-006", "CANCEL-005"}:
        tasks += [_bind(_reread_run, ctx, seen) for seen in earliest_first(ledger.runs, budget.runs)]
    if wanted & {"ETAG-001", "ETAG-004"}:
        tasks += [_bind(_reread_definition, ctx, d) for d in earliest_first(ledger.definitions, budget.definitions)]
    if "PAGE-006" in wanted:
        groups = earliest_first(list(ledger.client_ids.items()), budget.client_ids)
        tasks += [_bind(_walk_client_id, ctx, group) for group in groups]
    deadline = ctx.session.deadline

    def run(task: Callable[[], None]) -> None:
        if deadline is None or time.monotonic() < deadline:  # past the deadline: not read, never passed
            task()

    with ThreadPoolExecutor(max_workers=max(1, ctx.session.fan_out), thread_name_prefix="final-read") as pool:
        for batch in (first, tasks):
            for future in [pool.submit(run, task) for task in batch]:
                future.result()  # a dropped connection stops the reads: the server's ERR-001, as in any check


def _wants(ctx: CheckContext, rid: str) -> bool:
    """Whether the run selected `rid`: the final reads evaluate only the selected IDs they can."""
    return ctx.requirements is not None and rid in ctx.requirements


def _bind(func: Callable[[CheckContext, T], None], ctx: CheckContext, item: T) -> Callable[[], None]:
    return lambda: func(ctx, item)


def _client(ctx: CheckContext, credential: str) -> ApiClient | None:
    """The credential that established the fact: keys and (maybe) runs are scoped to it."""
    if credential == MAIN:
        return ctx.client
    return ctx.other_client if ctx.session.other_client is not None else None


def _replay_key(ctx: CheckContext, use: KeyUse) -> None:
    client = _client(ctx, use.credential)
    if client is None:
        return
    # Another body first: a server that forgot the key then breaks both promises, not just the first sent.
    if _wants(ctx, "IDEM-003"):
        other = _another_body(use.body)
        if other is not None:
            refused = ctx.post_run(other, key=use.key, client=client, content_type=use.content_type)
            problem = refused.response.json_or_none()
            kind = problem.get("type") if isinstance(problem, dict) else None
            ctx.expect(
                "IDEM-003",
                refused.status_code == 409 and kind == KEY_REUSED,
                f"at the end of the run, Idempotency-Key {use.key!r} (bound to run {use.run_id!r}) sent with another "
                f"body got {_got(refused.response, refused.run_id)}; expected 409 with a Problem of type "
                f"{KEY_REUSED}: the key was forgotten (IDEM-003)",
                on=refused.response,
            )
    if _wants(ctx, "IDEM-001"):
        again = ctx.post_run(use.body.encode("utf-8"), key=use.key, client=client, content_type=use.content_type)
        ctx.expect(
            "IDEM-001",
            again.status_code == 202 and again.run_id == use.run_id,
            f"at the end of the run, Idempotency-Key {use.key!r} replayed with its first body got "
            f"{_got(again.response, again.run_id)}; expected 202 with runId {use.run_id!r}, the run it started "
            "earlier in this run: the key was forgotten (a bounded cache, a short expiry?) (IDEM-001)",
            on=again.response,
        )


def _another_body(body: str) -> bytes | None:
    """A body every correct server accepts, but not this key's: its inputs gain a member of our own."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    inputs = data.get("inputs")
    inputs = inputs if isinstance(inputs, dict) else {}
    # Derived from the body, not drawn: a seed replays the same requests (CI compares them).
    data["inputs"] = {**inputs, f"rcFinalRead{hashlib.sha256(body.encode()).hexdigest()[:8]}": True}
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def _got(response: ApiResponse, run_id: str | None) -> str:
    return f"{response.status_code} with runId {run_id!r}" if run_id else str(response.status_code)


def _reread_run(ctx: CheckContext, seen: SeenRun) -> None:
    client = _client(ctx, seen.credential)
    if client is None:
        return
    before = seen.run
    response = ctx.get_run(seen.run_id, client=client)
    if response.status_code == 404 and not seen.read:
        # Seen only in a listing: the contract does not say one credential may read another's run
        # by its runId, so a 404 here may be scoping, not loss.
        return
    status = before.get("status")
    if _wants(ctx, "LIFE-006"):
        ctx.expect(
            "LIFE-006",
            response.status_code == 200,
            f"at the end of the run, getRun {seen.run_id} (seen {status} earlier in this run"
            + (f", cancel requested at {before.get('cancelRequestedAt')}" if before.get("cancelRequestedAt") else "")
            + f") answered HTTP {response.status_code}: the run is gone (a retention job run too eagerly? a run "
            "forgotten?); a run startRun accepted stays readable, and the contract sets no retention limit (LIFE-006)",
            on=response,
        )
    now = response.json_or_none() if response.status_code == 200 else None
    if not isinstance(now, dict):
        return  # no run read back: nothing to compare (a run that is gone is LIFE-006's finding)
    if status in terminal_statuses() and _wants(ctx, "LIFE-002"):
        changed = [k for k in ("status", *_STAMPS) if not _same(k, before.get(k), now.get(k))]
        ctx.expect(
            "LIFE-002",
            not changed,
            f"at the end of the run, run {seen.run_id}, seen {status} earlier, read back as "
            + ", ".join(f"{k} {now.get(k)!r} (was {before.get(k)!r})" for k in changed)
            + "; a terminal run never changes, nor do its timestamps (LIFE-002)",
            on=response,
        )
    requested = before.get("cancelRequestedAt")
    if requested is not None and _wants(ctx, "CANCEL-005"):
        ctx.expect(
            "CANCEL-005",
            same_instant(now.get("cancelRequestedAt"), requested),
            f"at the end of the run, run {seen.run_id} had cancelRequestedAt {now.get('cancelRequestedAt')!r}, "
            f"earlier {requested!r}; it keeps the first cancel's instant (CANCEL-005)",
            on=response,
            reads=(requested,),
        )


def _same(key: str, a: Any, b: Any) -> bool:
    return a == b if key == "status" else same_instant(a, b)  # instants compared as instants


def _reread_definition(ctx: CheckContext, seen: SeenDefinition) -> None:
    client = _client(ctx, seen.credential)
    if client is None:
        return
    response = ctx.get_definition(seen.run_id, client=client)
    if _wants(ctx, "ETAG-004"):
        etag = response.headers.get("etag")
        ctx.expect(
            "ETAG-004",
            response.status_code == 200 and etag == seen.etag,
            f"at the end of the run, getRunDefinition {seen.run_id} got HTTP {response.status_code} with ETag "
            f"{etag!r}; earlier its ETag was {seen.etag!r}, and it is identical on every request (ETAG-004)",
            on=response,
        )
    if seen.workflow is not None and _wants(ctx, "ETAG-001"):
        ctx.expect(
            "ETAG-001",
            response.status_code == 200 and json_equal(response.json_exact(), seen.workflow),
            f"at the end of the run, getRunDefinition {seen.run_id} got HTTP {response.status_code} with a "
            "workflow other than the one submitted; it returns that workflow forever (ETAG-001)",
            on=response,
        )


def _walk_client_id(ctx: CheckContext, group: tuple[tuple[str, str], list[str]]) -> None:
    (credential, client_id), run_ids = group
    client = _client(ctx, credential)
    if client is None:
        return
    pages: list[ApiResponse] = []
    listed = run_ids_for(ctx, client_id, client, pages=pages)
    if isinstance(listed, str):
        return  # not a RunList, or a listing that never ends: the schema and listing checks judge that
    twice = sorted((r for r, n in Counter(listed).items() if n > 1), key=str)
    missing = [r for r in run_ids if r not in listed]
    ctx.expect(
        "PAGE-006",
        not twice and not missing,
        f"at the end of the run, the final walk of clientId {client_id!r} ({len(pages)} pages) returned "
        + "; ".join(
            part
            for part in (
                f"{', '.join(map(str, twice[:5]))} more than once" if twice else "",
                f"none of {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''} ({len(missing)} of the "
                f"{len(run_ids)} runs started under it)"
                if missing
                else "",
            )
            if part
        )
        + "; a walk returns every run of its clientId exactly once (PAGE-006)",
        on=pages,
    )


def _rerequest_cursor(ctx: CheckContext, page: CursorPage) -> None:
    client = _client(ctx, page.credential)
    if client is None:
        return
    response = ctx.list_runs(client=client, **dict(page.query))
    data = response.json_or_none() if response.status_code == 200 else None
    items = data.get("items") if isinstance(data, dict) else None
    now = [item.get("runId") if isinstance(item, dict) else None for item in items] if isinstance(items, list) else None
    shown = "&".join(f"{k}={v if len(v) <= 40 else v[:37] + '...'}" for k, v in page.query)
    if response.status_code == 400:
        got = "400: does the cursor expire, or is it signed with a secret each process draws anew?"
    elif now is None:
        got = f"HTTP {response.status_code} with no RunList"
    else:
        got = f"runIds {_ids(now)}"
    ctx.expect(
        "PAGE-011",
        now is not None and now == list(page.run_ids),  # runIds compared as the opaque strings they are
        f"at the end of the run, listRuns?{shown}, a cursor this server issued earlier in the run, answered {got}; "
        f"the same request gave runIds {_ids(page.run_ids)} then, and no run of clientId {page.client_id!r} was "
        "started since. A cursor stays valid with no time limit, across restarts too, and gives the same runs in "
        "the same order: runs are never deleted and newer ones come before its position (PAGE-011)",
        on=response,
    )


def _ids(run_ids: Sequence[Any]) -> str:
    return "[" + ", ".join(map(str, run_ids[:6])) + (f", … ({len(run_ids)} in all)]" if len(run_ids) > 6 else "]")
