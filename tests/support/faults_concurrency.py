"""Faults that only a concurrent history shows: the reference server with one race or stale read each.

The reference server runs every handler on one event loop and every store method as one SQLite
transaction, so nothing interleaves unless a handler awaits. Each fault here adds the await a real
server has (an async driver's round trip between a SELECT and an INSERT, an RPC to the workers,
a read from object storage) at the place where it opens a race, or serves reads from a copy that
lags the primary. Either way a single client, waiting for each answer before it sends the next
request, almost never sees the bug: that is what the concurrent workload (checks/concurrency.py)
is for.

The stale copies are built from one change log (tests/support/replicas.py): a replica lagging by
L seconds answers with the versions committed at least L seconds ago. Reads go to replicas only
while the server is busy, as a deployment that offloads reads under load does (replicas.py says
what busy means); a single client on one keep-alive connection is always served by the primary.

`breaks` names the CONC IDs each fault fails in at least 19 of 20 default-profile runs
(docs/concurrency-score.md, from scripts/concurrency_score.py); other IDs may fail as well.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from reference_impl.app import create_app
from reference_impl.auth import TOKEN_STATE_KEY
from reference_impl.cursors import Filters
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.problems import ProblemError, problem_response
from reference_impl.store import IdempotencyClaim, RunRecord, RunStore, StartOutcome
from reference_impl.validation import parse_list_query

from . import faults_cancel_page
from .faults import Fault
from .faults_idem_etag import key_slot
from .replicas import VersionedStore, tracking_load

__all__ = ["CONCURRENCY_FAULTS"]

SOURCE = "tests/support/faults_concurrency.py"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ROUND_TRIP_S = 0.03  # one await on another service: a database, a message bus, object storage
LOCK_TTL_S = 2.0  # how long a forgotten key lock holds: longer than a retry takes, shorter than a run


def _primary(api: RunsApi) -> VersionedStore:
    store = api.store
    assert isinstance(store, VersionedStore)
    return store


# --- idempotency: the key looked up in one transaction, recorded in another -----------------------------

_LOOKED_UP: contextvars.ContextVar[bool] = contextvars.ContextVar("key_looked_up", default=False)


class KeyUpsertStore(RunStore):
    """Runs and keys in separate statements, the key recorded by an upsert once the run exists."""

    def has_key(self, scope: str, key: str) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT 1 FROM idempotency_keys WHERE scope = ? AND key = ?", (scope, key)).fetchone()
            return row is not None

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        if claim is None or not _LOOKED_UP.get():
            return super().start_run(client_id, workflow, inputs, definition_hash, claim)
        outcome = super().start_run(client_id, workflow, inputs, definition_hash, None)
        with self._transaction() as db:
            # Last writer wins: the upsert stops the primary key from refusing the second racer's record.
            db.execute(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, run_id, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, run_id = excluded.run_id",
                (claim.scope, claim.key, claim.fingerprint, outcome.run.run_id, outcome.run.created_at),
            )
        return outcome


class LookupThenInsertApi(RunsApi):
    """A key it has not seen is looked up, the handler awaits, then the run and the key are written."""

    async def start_run(self, request: Request) -> Response:
        store = self.store
        assert isinstance(store, KeyUpsertStore)
        try:
            key = self.idempotency.key(request.headers.get(self.idempotency.header))
        except ProblemError:
            key = None  # the reference path refuses it, in its own order
        if key is None:
            return await super().start_run(request)
        scope = self.idempotency.scope(str(request.scope["state"][TOKEN_STATE_KEY]))
        if store.has_key(scope, key):
            return await super().start_run(request)  # a known key: replay or 409, atomically
        await asyncio.sleep(ROUND_TRIP_S)  # the bug: nothing holds the key between the lookup and the insert
        looked_up = _LOOKED_UP.set(True)
        try:
            return await super().start_run(request)
        finally:
            _LOOKED_UP.reset(looked_up)


class SingleFlightApi(RunsApi):
    """Coalesces concurrent requests with one Idempotency-Key into the first (a single-flight keyed by the key
    alone): a request that arrives while another with its key is in flight gets that one's answer, whatever
    its body. One request at a time reaches the store, which compares bodies and answers 409 as it should."""

    async def start_run(self, request: Request) -> Response:
        flights: dict[tuple[str, str], asyncio.Future[Response]] = self.__dict__.setdefault("flights", {})
        slot = key_slot(request)
        if slot is None:
            return await super().start_run(request)
        if slot in flights:
            return await asyncio.shield(flights[slot])  # the bug: the body is never compared
        flight: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        flights[slot] = flight
        try:
            await asyncio.sleep(ROUND_TRIP_S)  # scheduling the run takes a round trip
            response = await _answer(super().start_run(request))
            flight.set_result(response)
            return response
        finally:
            del flights[slot]
            if not flight.done():
                flight.cancel()


async def _answer(started: Awaitable[Response]) -> Response:
    """The response a Problem would have become: waiters on a flight get it as the first request did."""
    try:
        return await started
    except ProblemError as problem:
        return problem_response(problem.slug, problem.detail, problem.headers)


# --- reads from lagging copies ------------------------------------------------------------------------

REPLICA_LAGS_S = (0.0, 0.03, 0.1)  # three replicas behind a load balancer, each as far behind as it is
REPLICA_SEED = 20261130


class ReplicaReadsApi(RunsApi):
    """Under load getRun and listRuns read a replica picked per request, each as far behind as it is.

    A run the replica lacks is read from the primary by getRun (read-your-writes for the client that
    just started it); a listing is whatever the replica holds.
    """

    def _lag_ns(self) -> int:
        pick: random.Random = self.__dict__.setdefault("pick", random.Random(REPLICA_SEED))
        return int(pick.choice(REPLICA_LAGS_S) * 1e9)

    async def get_run(self, request: Request) -> Response:
        store = _primary(self)
        if not store.busy:
            return await super().get_run(request)
        record = store.as_of(str(request.path_params["runId"]), time.monotonic_ns() - self._lag_ns())
        if record is None:
            return await super().get_run(request)
        return json_response(record.to_api())

    async def list_runs(self, request: Request) -> Response:
        store = _primary(self)
        if not store.busy:
            return await super().list_runs(request)
        query = parse_list_query(request.query_params.multi_items())
        filters = Filters(status=query.status, client_id=query.client_id)
        before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        moment = time.monotonic_ns() - self._lag_ns()
        runs, more = store.list_as_of(moment, query.status, query.client_id, before, query.limit)
        next_cursor = self.cursors.encode(runs[-1].seq, filters) if more and runs else None
        return json_response({"items": [run.to_api() for run in runs], "nextCursor": next_cursor})


REPLICA_404_LAG_S = 0.05


class ReplicaLookupApi(RunsApi):
    """Under load the run in the path is looked up on a replica 50 ms behind: a newer run is 404."""

    def find_run(self, request: Request) -> RunRecord:
        store = _primary(self)
        if not store.busy:
            return super().find_run(request)
        run_id = str(request.path_params["runId"])
        record = store.lagging(run_id, REPLICA_404_LAG_S)
        if record is None:
            raise ProblemError("not-found", f"There is no run {run_id[:64]!r}.")
        return record


INDEX_LAG_S = 0.05


class LaggingIndexStore(VersionedStore):
    """Under load listRuns finds runs through an index the indexer updates 50 ms after each commit.

    The index holds which runs exist (and their seq); their rows, status included, come from the
    primary, so only runs younger than the lag are missing.
    """

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        if self.busy:
            indexed = self.last_seq_as_of(time.monotonic_ns() - int(INDEX_LAG_S * 1e9)) + 1
            before_seq = indexed if before_seq is None else min(before_seq, indexed)
        return super().list_runs(status, client_id, before_seq, limit)


# --- cancel -------------------------------------------------------------------------------------------


class CancelAsSeenStore(RunStore):
    """Writes the cancel its caller decided on from an earlier read, with no status guard."""

    def cancel_as_seen(self, run_id: str, seen: str) -> RunRecord | None:
        with self._transaction() as db:
            now = self._timestamps.now()
            if seen == "queued":
                db.execute(
                    "UPDATE runs SET status = 'cancelled', cancel_requested_at = coalesce(cancel_requested_at, ?), "
                    "finished_at = ? WHERE run_id = ?",
                    (now, now, run_id),
                )
            else:
                db.execute(
                    "UPDATE runs SET status = 'cancelling', cancel_requested_at = coalesce(cancel_requested_at, ?) "
                    "WHERE run_id = ?",
                    (now, run_id),
                )
            return self._fetch(db, run_id)


class CancelWithoutRecheckApi(RunsApi):
    """Reads the status, tells the workers (an await), then writes the cancel that status called for."""

    async def cancel_run(self, request: Request) -> Response:
        store = self.store
        assert isinstance(store, CancelAsSeenStore)
        run = self.find_run(request)
        if run.status in TERMINAL:
            return json_response(self.run_ref(run), status=202)
        await asyncio.sleep(ROUND_TRIP_S)  # the bug: the run may finish meanwhile, and nothing checks again
        updated = store.cancel_as_seen(run.run_id, run.status)
        assert updated is not None
        if updated.status == "cancelling":
            self.executor.cancel(updated.run_id)
            updated = self.store.get(updated.run_id) or updated
        return json_response(self.run_ref(updated), status=202)


class CancelStampStore(RunStore):
    def now(self) -> str:
        return self._timestamps.now()

    def stamp_cancel(self, run_id: str, requested_at: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET cancel_requested_at = ? WHERE run_id = ?", (requested_at, run_id))


class CancelStampRaceApi(RunsApi):
    """Keeps the first cancelRequestedAt by reading it first: two cancels that both read null both write."""

    async def cancel_run(self, request: Request) -> Response:
        store = self.store
        assert isinstance(store, CancelStampStore)
        run = self.find_run(request)
        if run.cancel_requested_at is None and run.status not in TERMINAL:
            requested_at = store.now()
            await asyncio.sleep(ROUND_TRIP_S)  # the bug: the guard was the read above, not the write
            store.stamp_cancel(run.run_id, requested_at)
        return await super().cancel_run(request)


# --- idempotency conflicts ----------------------------------------------------------------------------


class InFlightAsReusedApi(RunsApi):
    """Holds a key while its request is processed, and answers a second request meanwhile with the
    key-reused 409 (one Problem type for every key conflict), whatever its body."""

    async def start_run(self, request: Request) -> Response:
        held: set[tuple[str, str]] = self.__dict__.setdefault("held", set())
        slot = key_slot(request)
        if slot is None:
            return await super().start_run(request)
        if slot in held:
            raise ProblemError("idempotency-key-reused", "This Idempotency-Key is being used by another request.")
        held.add(slot)
        try:
            await asyncio.sleep(ROUND_TRIP_S)  # scheduling the run takes a round trip
            return await super().start_run(request)
        finally:
            held.discard(slot)


class InFlightLockExpiresApi(RunsApi):
    """Takes a lock per key with a time to live (a Redis SET NX PX) and never deletes it: it expires
    LOCK_TTL_S later, so a retry sent after the first answer, within that time, gets the in-flight 409."""

    async def start_run(self, request: Request) -> Response:
        locks: dict[tuple[str, str], float] = self.__dict__.setdefault("locks", {})
        slot = key_slot(request)
        if slot is None:
            return await super().start_run(request)
        now = time.monotonic()
        if locks.get(slot, 0.0) > now:
            raise ProblemError("idempotency-key-in-flight", "A request with this Idempotency-Key is in progress.")
        locks[slot] = now + LOCK_TTL_S  # the bug: nothing releases it when the request is answered
        return await super().start_run(request)


# --- the definition -----------------------------------------------------------------------------------


class SharedHandlerStateApi(RunsApi):
    """Keeps the run it is serving on the handler object, which every request shares, across an await."""

    async def get_run_definition(self, request: Request) -> Response:
        self.__dict__["serving"] = self.find_run(request)  # 404 before 304
        await asyncio.sleep(ROUND_TRIP_S)  # the snapshot is read from object storage
        run: RunRecord = self.__dict__["serving"]  # the bug: another request may have replaced it
        etag = self.etags.etag_for(run.definition_hash)
        if self.etags.none_match(", ".join(request.headers.getlist("if-none-match")) or None, etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(run.workflow_json.encode("utf-8"), media_type="application/json", headers={"ETag": etag})


# --- the catalog --------------------------------------------------------------------------------------


def _app(**options: Any) -> Callable[[Sequence[str]], ASGIApp]:
    """create_app with replaced parts, a fresh store per server; a VersionedStore learns the load."""

    def build(tokens: Sequence[str]) -> ASGIApp:
        made = {k: v() if k == "store" else v for k, v in options.items()}
        app = create_app(list(tokens), **made)
        store = made.get("store")
        return tracking_load(app, store) if isinstance(store, VersionedStore) else app

    return build


def _offset_cursors(tokens: Sequence[str]) -> ASGIApp:
    if list(tokens) != list(faults_cancel_page.TOKENS):
        raise ValueError(f"faults_cancel_page serves the tokens {faults_cancel_page.TOKENS}, not these")
    app: ASGIApp = faults_cancel_page.FAULTS["offset_cursors"]()
    return app


# What the self-check gives each: the default profile's clients for 3 s (quick's 4 clients miss the rarer races).
SELF_CHECK_BUDGET = ("--workload-clients", "8", "--workload-seconds", "3")


def _fault(name: str, description: str, breaks: tuple[str, ...], build: Callable[[Sequence[str]], ASGIApp]) -> Fault:
    return Fault(name, "concurrency", description, breaks, build, SOURCE, cli_args=SELF_CHECK_BUDGET)


# fmt: off
CONCURRENCY_FAULTS: list[Fault] = [
    _fault("conc-key-lookup-then-insert",
           "a new Idempotency-Key is looked up, the handler awaits, then the run and the key are written "
           "(an upsert): concurrent first uses of a key start a run each",
           ("CONC-001",), _app(store=KeyUpsertStore, api_class=LookupThenInsertApi)),
    _fault("conc-single-flight-ignores-body",
           "concurrent requests with one Idempotency-Key are coalesced into the first (a single-flight keyed "
           "by the key alone): one sent meanwhile with another body gets the first one's 202",
           ("CONC-002",), _app(api_class=SingleFlightApi)),
    _fault("conc-replica-reads",
           "under load getRun and listRuns read one of three replicas 0, 30 or 100 ms behind (getRun reads the "
           "primary for a run its replica lacks): a read after a newer one may show an older status",
           ("CONC-005", "CONC-006"), _app(store=VersionedStore, api_class=ReplicaReadsApi)),
    _fault("conc-replica-lookup-404",
           "under load the run in the path (getRun, getRunDefinition, cancelRun) is looked up on a replica "
           "50 ms behind: a run just created is 404",
           ("CONC-009",), _app(store=VersionedStore, api_class=ReplicaLookupApi)),
    _fault("conc-list-index-lag",
           "under load listRuns finds runs through an index updated 50 ms after each commit: a walk begun "
           "just after a run's 202 misses it",
           ("CONC-011",), _app(store=LaggingIndexStore)),
    _fault("conc-cancel-overwrites-terminal",
           "cancel reads the status, tells the workers (an await), then writes cancelled/cancelling without "
           "checking again: a run that finished meanwhile is flipped",
           ("CONC-006", "CONC-008"), _app(store=CancelAsSeenStore, api_class=CancelWithoutRecheckApi)),
    _fault("conc-in-flight-as-reused",
           "a key is held while its request is processed, and a request meanwhile gets the key-reused 409, "
           "not the in-flight one, even with the same body",
           ("CONC-003",), _app(api_class=InFlightAsReusedApi)),
    _fault("conc-definition-shared-state",
           "getRunDefinition keeps the run it serves on the shared handler object across an await: "
           "concurrent requests get each other's workflow and ETag",
           ("CONC-012",), _app(api_class=SharedHandlerStateApi)),
    _fault("conc-offset-cursors",
           "cursors hold an offset (tests/support/faults_cancel_page.py: offset_cursors): runs created during a "
           "walk shift it, and the walk repeats runs",
           ("CONC-010",), _offset_cursors),
    _fault("conc-in-flight-lock-expires",
           "a key's in-flight lock is taken with a time to live and never released (a Redis SET NX PX without "
           "DEL): a retry sent after the first answer gets the in-flight 409 until the lock expires",
           ("CONC-004",), _app(api_class=InFlightLockExpiresApi)),
    _fault("conc-cancel-requested-at-race",
           "cancel keeps the first cancelRequestedAt by reading it before an await, then writes it "
           "unconditionally: of two concurrent cancels the second overwrites the first",
           ("CONC-007",), _app(store=CancelStampStore, api_class=CancelStampRaceApi)),
]
# fmt: on

from .faults_stall import STALL_FAULTS  # noqa: E402  (it builds on this module's neighbours: imported last)

CONCURRENCY_FAULTS += STALL_FAULTS
