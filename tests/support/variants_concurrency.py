"""Correct variants that differ from the reference where concurrency shows: the suite must pass them.

Each keeps the contract in a way the reference server does not, where a checker that assumed more
than real-time order would raise a false alarm: a key held while its request is in flight (the
in-flight 409), and reads served from copies that lag the primary but wait until they have caught
up with the moment each read arrived, with every listRuns walk read from one snapshot.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from reference_impl.app import create_app
from reference_impl.cursors import Filters
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.problems import ProblemError
from reference_impl.validation import parse_list_query

from . import faults_idem_etag
from .replicas import VersionedStore
from .variants import Variant

__all__ = ["CONCURRENCY_VARIANTS", "SnapshotReadsApi"]

SOURCE = "tests/support/variants_concurrency.py"
CATCH_UP_S = (0.0, 0.05)  # how far behind the primary a replica is when a read arrives: it waits that long
LAG_SEED = 20261201
_SNAPSHOT_SHIFT = 40  # a cursor's position packs the walk's snapshot time above the seq (seqs stay below 2**40)


def _in_flight_conflicts(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    if list(tokens) != list(faults_idem_etag.TOKENS):
        raise ValueError(f"faults_idem_etag serves the tokens {faults_idem_etag.TOKENS}, not these")
    app: ASGIApp = faults_idem_etag.CORRECT_VARIANTS["in_flight_conflicts"](db_path)
    return app


class SnapshotReadsApi(RunsApi):
    """getRun and listRuns from replicas that lag the primary, each read waiting for its replica to catch
    up with the moment it arrived (a read barrier: the answer is the state at arrival, sent late); a
    walk's pages all come from the snapshot its first page was read at, which the cursor carries.

    Both are linearizable reads: the state shown is the one at an instant between the request and its
    answer (for a walk's later pages, an instant since the walk began).
    """

    def _store(self) -> VersionedStore:
        store = self.store
        assert isinstance(store, VersionedStore)
        return store

    async def _caught_up(self) -> int:
        """The moment the read arrived, once the replica serving it has applied the log that far."""
        arrived = time.monotonic_ns()
        lags: random.Random = self.__dict__.setdefault("lags", random.Random(LAG_SEED))
        await asyncio.sleep(lags.uniform(*CATCH_UP_S))
        return arrived

    async def get_run(self, request: Request) -> Response:
        run_id = str(request.path_params["runId"])
        record = self._store().as_of(run_id, await self._caught_up())
        if record is None:
            raise ProblemError("not-found", f"There is no run {run_id[:64]!r}.")
        return json_response(record.to_api())

    async def list_runs(self, request: Request) -> Response:
        query = parse_list_query(request.query_params.multi_items())
        filters = Filters(status=query.status, client_id=query.client_id)
        if query.cursor is None:
            snapshot, before = await self._caught_up(), None
        else:
            snapshot, before = divmod(self.cursors.decode(query.cursor, filters), 1 << _SNAPSHOT_SHIFT)
        runs, more = self._store().list_as_of(snapshot, query.status, query.client_id, before, query.limit)
        position = (snapshot << _SNAPSHOT_SHIFT) + runs[-1].seq if more and runs else None
        next_cursor = self.cursors.encode(position, filters) if position is not None else None
        return json_response({"items": [run.to_api() for run in runs], "nextCursor": next_cursor})


def _snapshot_reads(tokens: Sequence[str], db_path: str | None = None) -> ASGIApp:
    return create_app(list(tokens), store=VersionedStore(db_path), api_class=SnapshotReadsApi)


CONCURRENCY_VARIANTS: list[Variant] = [
    Variant(
        "in-flight-409",
        "a key is held while its request is processed (50 ms); a same-key request meanwhile gets the in-flight 409",
        _in_flight_conflicts,
        "tests/support/faults_idem_etag.py: in_flight_conflicts",
    ),
    Variant(
        "snapshot-reads",
        "getRun and listRuns from replicas 0-50 ms behind that wait to catch up with each read's arrival; "
        "every page of a walk from the snapshot of its first page",
        _snapshot_reads,
        SOURCE,
    ),
]
