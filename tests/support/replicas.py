"""A primary that ships every committed version of a run to a log, and copies of it that lag.

The reference server runs every store method on its event loop without an await, so the time
taken right after a write returns is its commit time: no other request can have written in
between. `VersionedStore` keeps each run's versions with those times, as a replica applying the
primary's log would receive them; `as_of(run, t)` is the run as a copy that has applied the log up
to t holds it. A lagging replica reads at now - lag; a read barrier waits, then reads at the
moment the request arrived; a snapshot reads at one fixed moment.

It also tells whether the server is busy, for faults that offload reads to replicas under load:
busy means `OFFLOAD_AT` or more client connections sent a request in the last `ACTIVE_WINDOW_NS`.
(Not requests in flight: the reference server awaits nothing while it serves a request, so it
serves one at a time, however many clients wait.)
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from reference_impl.store import IdempotencyClaim, RunRecord, RunStore, StartOutcome

__all__ = ["OFFLOAD_AT", "VersionedStore", "tracking_load"]

OFFLOAD_AT = 3  # active client connections (this request's included) from which reads go to replicas
ACTIVE_WINDOW_NS = 20_000_000  # 20 ms


class VersionedStore(RunStore):
    """The primary, shipping each run's committed versions to a log that replicas apply late.

    Every store method runs on the server's event loop without an await, so the time taken right
    after a write returns is its commit time: no other request can have written in between. Times
    are `time.monotonic_ns()`.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(path)
        self.active: dict[Any, int] = {}  # client address -> when it last sent a request (see tracking_load)
        self._times: dict[str, list[int]] = {}
        self._versions: dict[str, list[RunRecord]] = {}
        self._created: list[tuple[int, int, str]] = []  # (commit time, seq, runId) of each insert, in seq order
        if path is not None:
            self._replay_log()

    def _replay_log(self) -> None:
        """With a file the log is kept in it, as replicas outlive a restart of the primary; CLOCK_MONOTONIC
        is the machine's, so its times still order the versions against reads after the restart. Then
        ship what the file holds and the log does not (a process killed between a commit and its ship)."""
        with self._transaction() as db:
            db.execute(_LOG_SCHEMA)
            rows = db.execute("SELECT at_ns, record FROM replica_log ORDER BY at_ns, rowid").fetchall()
        for at, text in rows:
            self._append(RunRecord(*json.loads(text)), at)
        # What was committed but not shipped was committed before the restart: shipped at the log's end,
        # not now, so a read just after the restart (at a snapshot up to 100 ms old) cannot see a run
        # older than a read before it did.
        shipped_by = rows[-1][0] + 1 if rows else time.monotonic_ns()
        for record in super().list_runs(None, None, None, 1 << 62)[0]:
            self._ship(record.run_id, at=shipped_by)

    def _append(self, record: RunRecord, at: int) -> None:
        versions = self._versions.setdefault(record.run_id, [])
        if not versions:
            self._created.append((at, record.seq, record.run_id))
        self._times.setdefault(record.run_id, []).append(at)
        versions.append(record)

    def _ship(self, run_id: str, at: int | None = None) -> None:
        record = super().get(run_id)
        if record is None:
            return
        now = time.monotonic_ns() if at is None else at
        versions = self._versions.get(run_id)
        if versions and versions[-1] == record:
            return
        self._append(record, now)
        if self.path is not None:
            with self._transaction() as db:
                text = json.dumps(dataclasses.astuple(record))
                db.execute("INSERT INTO replica_log (at_ns, record) VALUES (?, ?)", (now, text))

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        outcome = super().start_run(client_id, workflow, inputs, definition_hash, claim)
        self._ship(outcome.run.run_id)
        return outcome

    def mark_running(self, run_id: str) -> bool:
        changed = super().mark_running(run_id)
        self._ship(run_id)
        return changed

    def finish(self, run_id: str, status: str, from_statuses: tuple[str, ...], reason: str | None = None) -> bool:
        changed = super().finish(run_id, status, from_statuses, reason)
        self._ship(run_id)
        return changed

    def request_cancel(self, run_id: str) -> RunRecord | None:
        record = super().request_cancel(run_id)
        self._ship(run_id)
        return record

    # --- load ---------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return len(self.active) >= OFFLOAD_AT

    def request_from(self, client: Any) -> None:
        now = time.monotonic_ns()
        self.active[client] = now
        idle = [address for address, seen in self.active.items() if seen < now - ACTIVE_WINDOW_NS]
        for address in idle:
            del self.active[address]

    # --- copies -------------------------------------------------------------------------------------------

    def as_of(self, run_id: str, moment: int) -> RunRecord | None:
        """The run as a copy that has applied the log up to `moment` holds it (None: not created yet)."""
        position = bisect.bisect_right(self._times.get(run_id, []), moment)
        return self._versions[run_id][position - 1] if position else None

    def lagging(self, run_id: str, lag_s: float) -> RunRecord | None:
        return self.as_of(run_id, time.monotonic_ns() - int(lag_s * 1e9))

    def last_seq_as_of(self, moment: int) -> int:
        """The newest run a copy that has applied the log up to `moment` holds (0: none)."""
        position = bisect.bisect_right(self._created, (moment, _NO_SEQ, ""))
        return self._created[position - 1][1] if position else 0

    def list_as_of(
        self, moment: int, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        """RunStore.list_runs as a copy that has applied the log up to `moment` would answer it."""
        end = bisect.bisect_right(self._created, (moment, _NO_SEQ, ""))
        if before_seq is not None:
            end = min(end, bisect.bisect_left(self._created, before_seq, key=lambda created: created[1]))
        found: list[RunRecord] = []
        for _, _, run_id in reversed(self._created[:end]):
            record = self.as_of(run_id, moment)
            if record is None or (status is not None and record.status != status):
                continue
            if client_id is not None and record.client_id != client_id:
                continue
            found.append(record)
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit


_LOG_SCHEMA = "CREATE TABLE IF NOT EXISTS replica_log (at_ns INTEGER NOT NULL, record TEXT NOT NULL)"
_NO_SEQ = 1 << 62  # sorts after every seq: (moment, _NO_SEQ) bounds the inserts committed by `moment`


def tracking_load(app: ASGIApp, store: VersionedStore) -> ASGIApp:
    """Tells the store which client connection each request came on, for the load-based routing of reads."""

    async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            store.request_from(scope.get("client"))
        await app(scope, receive, send)

    return tracked
