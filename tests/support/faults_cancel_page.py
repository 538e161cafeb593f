"""The reference server with one realistic bug each, for the cancel, lifecycle, pagination and model checks.

Every fault goes through a seam of the reference server (its RunStore, Executor, CursorCodec,
actions or RunsApi, all passed to `create_app`) or wraps it in ASGI middleware; none patches a
module, so the shared reference server of the other tests is never touched. `CORRECT_VARIANTS`
differ from the reference but keep the contract: the checks must pass them (no false alarms).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.actions import DEFAULT_ACTIONS, Action
from reference_impl.app import create_app
from reference_impl.cursors import CursorCodec, Filters
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.executor import Executor
from reference_impl.problems import ProblemError
from reference_impl.store import _COLUMNS, RunRecord, RunStore
from reference_impl.validation import ListQuery, parse_list_query

from .tokens import OTHER_TOKEN, TOKEN

__all__ = ["CORRECT_VARIANTS", "FAULTS", "TOKENS", "HexCursorCodec"]

TOKENS = [TOKEN, OTHER_TOKEN]
AppFactory = Callable[[], ASGIApp]


def _secret() -> bytes:
    return secrets.token_bytes(32)


# --- cancel ---------------------------------------------------------------------------------------


class CancelOfUnknownAccepted(RunsApi):
    """Treats cancel as fire-and-forget: an id nobody has gets 202 cancelled as well."""

    async def cancel_run(self, request: Request) -> Response:
        try:
            return await super().cancel_run(request)
        except ProblemError:
            return json_response({"runId": str(request.path_params["runId"]), "status": "cancelled"}, status=202)


class CancelFlipsTerminalStore(RunStore):
    """Cancel's UPDATE lacks its status guard for finished runs: succeeded and failed runs become cancelled."""

    def request_cancel(self, run_id: str) -> RunRecord | None:
        with self._transaction() as db:
            now = self._timestamps.now()
            db.execute(
                "UPDATE runs SET status = 'cancelled', cancel_requested_at = ?, finished_at = ? "
                "WHERE run_id = ? AND status IN ('succeeded', 'failed')",
                (now, now, run_id),
            )
        return super().request_cancel(run_id)


class CancelRestampsStore(RunStore):
    """Every cancel writes cancelRequestedAt (no COALESCE): a second cancel overwrites the first time."""

    def request_cancel(self, run_id: str) -> RunRecord | None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET cancel_requested_at = ? WHERE run_id = ? AND status IN ('cancelling', 'cancelled')",
                (self._timestamps.now(), run_id),
            )
        return super().request_cancel(run_id)


class CancelIgnored(RunsApi):
    """Acknowledges a cancel (202 cancelling) but never records it: a queue message nobody consumes."""

    async def cancel_run(self, request: Request) -> Response:
        run = self.find_run(request)
        status = run.status if run.status in {"succeeded", "failed", "cancelled"} else "cancelling"
        return json_response({"runId": run.run_id, "status": status}, status=202)


class CancelNeverStopsExecutor(Executor):
    """The store records the cancel, but the executor is never told: the run stays cancelling until its work ends."""

    def cancel(self, run_id: str) -> None:
        return None


class QueuedCancelForgottenStore(RunStore):
    """request_cancel handles running runs only: a queued run's cancel records nothing and it runs later.

    Served with a SlowStartExecutor, so runs are queued when the suite cancels them.
    """

    def request_cancel(self, run_id: str) -> RunRecord | None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status = 'cancelling', cancel_requested_at = coalesce(cancel_requested_at, ?) "
                "WHERE run_id = ? AND status = 'running'",
                (self._timestamps.now(), run_id),
            )
            return self._fetch(db, run_id)


class CancelAnswersOldStatus(RunsApi):
    """Answers with the RunRef read before the cancel (`running`), not the one after it."""

    async def cancel_run(self, request: Request) -> Response:
        run = self.find_run(request)
        await super().cancel_run(request)
        return json_response(self.run_ref(run), status=202)


# --- lifecycle ------------------------------------------------------------------------------------


class StaleListStore(RunStore):
    """listRuns reads a denormalised copy written when the run was created and never updated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._snapshots: dict[str, RunRecord] = {}
        super().__init__(*args, **kwargs)

    def start_run(self, *args: Any, **kwargs: Any) -> Any:
        outcome = super().start_run(*args, **kwargs)
        self._snapshots.setdefault(outcome.run.run_id, outcome.run)
        return outcome

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        records, more = super().list_runs(status, client_id, before_seq, limit)
        return [self._snapshots.get(r.run_id, r) for r in records], more


class FailedWithoutFinishedAtStore(RunStore):
    """The failure path forgets finished_at: a failed run shows finishedAt null."""

    def finish(self, run_id: str, status: str, from_statuses: tuple[str, ...], reason: str | None = None) -> bool:
        if status != "failed":
            return super().finish(run_id, status, from_statuses, reason)
        marks = ",".join("?" * len(from_statuses))
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE runs SET status = ?, failure_reason = ? WHERE run_id = ? AND status IN ({marks})",
                (status, reason, run_id, *from_statuses),
            )
            return cursor.rowcount == 1


class StartedAtRewrittenStore(RunStore):
    """finish() re-stamps started_at along with finished_at (a copy-pasted SET clause)."""

    def finish(self, run_id: str, status: str, from_statuses: tuple[str, ...], reason: str | None = None) -> bool:
        marks = ",".join("?" * len(from_statuses))
        with self._transaction() as db:
            now = self._timestamps.now()
            cursor = db.execute(
                f"UPDATE runs SET status = ?, started_at = ?, finished_at = ?, failure_reason = ? "
                f"WHERE run_id = ? AND status IN ({marks})",
                (status, now, now, reason, run_id, *from_statuses),
            )
            return cursor.rowcount == 1


async def _swallow(_params: Mapping[str, Any]) -> None:
    # The step's error is logged and dropped; the run goes on as if the step had succeeded.
    await asyncio.sleep(0)


SWALLOWED_FAILURES: dict[str, Action] = {
    **DEFAULT_ACTIONS,
    "fail": Action(check=DEFAULT_ACTIONS["fail"].check, run=_swallow),
}


# --- pagination -----------------------------------------------------------------------------------


def _query(request: Request) -> ListQuery:
    return parse_list_query(request.query_params.multi_items())


def _page(runs: list[RunRecord], next_cursor: str | None) -> Response:
    return json_response({"items": [run.to_api() for run in runs], "nextCursor": next_cursor})


class OffsetCursors(RunsApi):
    """The cursor is a position (an offset) in the listing: runs created during a walk shift every page."""

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        offset = 0
        if query.cursor is not None:
            try:
                offset = int(base64.urlsafe_b64decode(query.cursor + "=" * (-len(query.cursor) % 4)))
            except (ValueError, binascii.Error):
                raise ProblemError("invalid-cursor", "bad cursor") from None
        runs, more = self.store.list_runs(query.status, query.client_id, None, offset + query.limit)
        page = runs[offset:]
        following = base64.urlsafe_b64encode(str(offset + query.limit).encode()).decode().rstrip("=")
        return _page(page, following if more else None)


class BoundaryDropped(RunsApi):
    """Reads limit+1 rows to learn whether more follow, then puts the extra row's key in the cursor.

    The next page starts after that row, so the run at each page edge is never listed.
    """

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        filters = Filters(status=query.status, client_id=query.client_id)
        before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        rows, _more = self.store.list_runs(query.status, query.client_id, before, query.limit + 1)
        following = self.cursors.encode(rows[query.limit].seq, filters) if len(rows) > query.limit else None
        return _page(rows[: query.limit], following)


class InclusiveCursorStore(RunStore):
    """`seq <= cursor` where `<` was meant: the last run of a page is the first of the next."""

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        return super().list_runs(status, client_id, None if before_seq is None else before_seq + 1, limit)


class LimitIgnored(RunsApi):
    """Validates limit, then pages by the default of 50 anyway."""

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        filters = Filters(status=query.status, client_id=query.client_id)
        before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        runs, more = self.store.list_runs(query.status, query.client_id, before, 50)
        return _page(runs, self.cursors.encode(runs[-1].seq, filters) if more and runs else None)


class FiltersLostAfterFirstPage(RunsApi):
    """Checks the cursor against the filters, then queries without them: page 2 on lists everything."""

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        filters = Filters(status=query.status, client_id=query.client_id)
        if query.cursor is None:
            return await super().list_runs(request)
        before = self.cursors.decode(query.cursor, filters)
        runs, more = self.store.list_runs(None, None, before, query.limit)
        return _page(runs, self.cursors.encode(runs[-1].seq, filters) if more and runs else None)


class UnsignedCursorCodec(CursorCodec):
    """Decodes the payload without checking the MAC or catching errors: garbage is a 500, an edit is obeyed."""

    def decode(self, cursor: str, filters: Filters) -> int:
        payload = cursor.split(".")[0]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(data["after"])


class BadCursorRestarts(RunsApi):
    """A cursor it cannot read is treated as no cursor: the walk silently starts again."""

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        filters = Filters(status=query.status, client_id=query.client_id)
        try:
            before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        except ProblemError:
            before = None
        runs, more = self.store.list_runs(query.status, query.client_id, before, query.limit)
        return _page(runs, self.cursors.encode(runs[-1].seq, filters) if more and runs else None)


class FilterBlindCodec(CursorCodec):
    """Signs only the position: a cursor is accepted with any status/clientId filters."""

    def encode(self, after: int, filters: Filters) -> str:
        return super().encode(after, Filters(None, None))

    def decode(self, cursor: str, filters: Filters) -> int:
        return super().decode(cursor, Filters(None, None))


class CursorOnFullPage(RunsApi):
    """Issues a nextCursor whenever a page is full, so a listing that ends on a full page ends with an empty one."""

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        filters = Filters(status=query.status, client_id=query.client_id)
        before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        runs, _more = self.store.list_runs(query.status, query.client_id, before, query.limit)
        full = len(runs) == query.limit
        return _page(runs, self.cursors.encode(runs[-1].seq, filters) if full else None)


class OldestFirstStore(RunStore):
    """ORDER BY seq ASC: the listing is oldest first."""

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        clauses, args = [], []
        if before_seq is not None:
            clauses.append("seq > ?")
            args.append(before_seq)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if client_id is not None:
            clauses.append("client_id = ?")
            args.append(client_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM runs {where} ORDER BY seq ASC LIMIT ?", [*args, limit + 1]
            ).fetchall()
        records = [RunRecord(*row) for row in rows]
        return records[:limit], len(records) > limit


@dataclass
class ServerSideCursors(RunsApi):
    """A cursor names a server-side iterator that advances each time it is read."""

    positions: dict[str, int] = field(default_factory=dict)

    async def list_runs(self, request: Request) -> Response:
        query = _query(request)
        before = None
        if query.cursor is not None:
            if query.cursor not in self.positions:
                raise ProblemError("invalid-cursor", "unknown cursor")
            before = self.positions[query.cursor]
        runs, more = self.store.list_runs(query.status, query.client_id, before, query.limit)
        if not (more and runs):
            return _page(runs, None)
        token = query.cursor or secrets.token_urlsafe(12)
        self.positions[token] = runs[-1].seq
        return _page(runs, token)


class FiltersUnvalidated(RunsApi):
    """Takes status and clientId as given: a value no run can have is an empty page, not a 400."""

    async def list_runs(self, request: Request) -> Response:
        raw = request.query_params.multi_items()
        query = parse_list_query([(k, v) for k, v in raw if k not in {"status", "clientId"}])
        status = request.query_params.get("status")
        client_id = request.query_params.get("clientId")
        filters = Filters(status=status, client_id=client_id)
        before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        runs, more = self.store.list_runs(status, client_id, before, query.limit)
        return _page(runs, self.cursors.encode(runs[-1].seq, filters) if more and runs else None)


class LimitCoerced(RunsApi):
    """Coerces limit into 1..200 (AIP-158 style) instead of refusing it; non-numbers mean the default."""

    async def list_runs(self, request: Request) -> Response:
        raw = request.query_params.get("limit")
        if raw is not None:
            try:
                limit = min(200, max(1, int(float(raw))))
            except ValueError:
                limit = 50
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "limit"] + [("limit", str(limit))]
            request.scope["query_string"] = "&".join(f"{k}={v}" for k, v in params).encode()
            request = Request(request.scope, request.receive)
        return await super().list_runs(request)


# --- correct variants -----------------------------------------------------------------------------


class HexCursorCodec(CursorCodec):
    """Another opaque, signed cursor: hex fields and a full HMAC, filters bound by a digest."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret)
        self._key = secret

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _bound(self, after: int, filters: Filters) -> str:
        scope = hashlib.sha256(f"{filters.status}|{filters.client_id}".encode()).hexdigest()[:16]
        return f"{after:x}-{scope}"

    def encode(self, after: int, filters: Filters) -> str:
        body = self._bound(after, filters)
        return f"{body}-{self._sign(body)}"

    def decode(self, cursor: str, filters: Filters) -> int:
        invalid = ProblemError("invalid-cursor", "The cursor is malformed or was not issued by this server.")
        parts = cursor.split("-")
        if len(parts) != 3:
            raise invalid
        body = f"{parts[0]}-{parts[1]}"
        if not hmac.compare_digest(parts[2], self._sign(body)):
            raise invalid
        after = int(parts[0], 16)
        if body != self._bound(after, filters):
            raise ProblemError("invalid-cursor", "The cursor was issued for other filters.")
        return after


class ListJitter:
    """Delays each listRuns answer by 0–20 ms (seeded), as a loaded server or a proxy would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.random = random.Random(158)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/api/v1/runs":
            await asyncio.sleep(self.random.uniform(0.0, 0.02))
        await self.app(scope, receive, send)


class SlowStartExecutor(Executor):
    """Starts each run `delay` seconds after it is submitted: runs are visibly queued, and cancelled while queued."""

    def __init__(self, store: RunStore, actions: Mapping[str, Action], delay: float) -> None:
        super().__init__(store, actions)
        self.delay = delay

    async def _execute(self, run_id: str) -> None:
        await asyncio.sleep(self.delay)
        await super()._execute(run_id)


# --- the catalog ----------------------------------------------------------------------------------


def _app(**kwargs: Any) -> AppFactory:
    return lambda: create_app(TOKENS, **kwargs)


def _store(cls: type[RunStore]) -> AppFactory:
    return lambda: create_app(TOKENS, store=cls())


def _codec(cls: type[CursorCodec]) -> AppFactory:
    return lambda: create_app(TOKENS, cursor_codec=cls(_secret()))


FAULTS: dict[str, AppFactory] = {
    # cancel
    "cancel_of_unknown_accepted": _app(api_class=CancelOfUnknownAccepted),
    "cancel_flips_terminal": _store(CancelFlipsTerminalStore),
    "cancel_restamps": _store(CancelRestampsStore),
    "cancel_ignored": _app(api_class=CancelIgnored),
    "cancel_never_stops": _app(executor_factory=lambda store, actions: CancelNeverStopsExecutor(store, actions)),
    "cancel_answers_old_status": _app(api_class=CancelAnswersOldStatus),
    "queued_cancel_forgotten": lambda: create_app(
        TOKENS,
        store=QueuedCancelForgottenStore(),
        # A second in queue: the suite's immediate cancel reaches a queued run even on a loaded machine.
        executor_factory=lambda store, actions: SlowStartExecutor(store, actions, delay=1.0),
    ),
    # lifecycle
    "stale_list_status": _store(StaleListStore),
    "failed_without_finished_at": _store(FailedWithoutFinishedAtStore),
    "started_at_rewritten": _store(StartedAtRewrittenStore),
    "failures_swallowed": _app(actions=SWALLOWED_FAILURES),
    "runs_never_start": _app(workers=0),
    # pagination
    "offset_cursors": _app(api_class=OffsetCursors),
    "boundary_dropped": _app(api_class=BoundaryDropped),
    "boundary_repeated": _store(InclusiveCursorStore),
    "limit_ignored": _app(api_class=LimitIgnored),
    "filters_lost_after_first_page": _app(api_class=FiltersLostAfterFirstPage),
    "tampered_cursor_500": _codec(UnsignedCursorCodec),
    "bad_cursor_restarts": _app(api_class=BadCursorRestarts),
    "cursor_ignores_filters": _codec(FilterBlindCodec),
    "cursor_on_full_last_page": _app(api_class=CursorOnFullPage),
    "oldest_first": _store(OldestFirstStore),
    "server_side_cursors": _app(api_class=ServerSideCursors),
    "filters_unvalidated": _app(api_class=FiltersUnvalidated),
    "limit_coerced": _app(api_class=LimitCoerced),
}

CORRECT_VARIANTS: dict[str, AppFactory] = {
    "hex_cursors_with_list_jitter": lambda: ListJitter(create_app(TOKENS, cursor_codec=HexCursorCodec(_secret()))),
    "slow_start": _app(executor_factory=lambda store, actions: SlowStartExecutor(store, actions, delay=0.5)),
}
