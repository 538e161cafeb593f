"""Runs and idempotency records in SQLite: in memory by default, or a file that survives restarts.

One schema serves both modes, so the in-memory server has exactly the durable server's semantics
(transactions, the unique key that makes idempotency atomic) minus the file. Every method is one
transaction; status changes are guarded UPDATEs (`WHERE status IN (...)`), so no caller can move
a run backwards whatever it races with.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .timestamps import MonotonicTimestamps, parse_timestamp

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RUN_ID_PATTERN = r"run_[0-9A-HJKMNP-TV-Z]{26}"

RESTART_FAILURE_REASON = "The server stopped while this run was in flight; its steps were not resumed."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    workflow TEXT NOT NULL,
    inputs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    cancel_requested_at TEXT,
    failure_reason TEXT
);
-- Keyset pagination reads these newest first; seq order is createdAt order (see docs).
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, seq);
CREATE INDEX IF NOT EXISTS runs_by_client ON runs (client_id, seq);
CREATE INDEX IF NOT EXISTS runs_by_client_status ON runs (client_id, status, seq);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    created_at TEXT NOT NULL,
    -- The database, not the request handler, makes one key give one run.
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""

_COLUMNS = (
    "seq, run_id, client_id, status, definition_hash, workflow, inputs, created_at, "
    "started_at, finished_at, cancel_requested_at, failure_reason"
)


def new_run_id() -> str:
    """`run_` + a ULID (48-bit milliseconds, 80 random bits) in Crockford base32."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "run_" + "".join(reversed(chars))


@dataclass(frozen=True)
class RunRecord:
    seq: int
    run_id: str
    client_id: str
    status: str
    definition_hash: str
    workflow_json: str
    inputs_json: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    cancel_requested_at: str | None
    failure_reason: str | None

    def to_api(self) -> dict[str, Any]:
        """The Run as the spec shows it; failureReason is this server's extra field."""
        return {
            "runId": self.run_id,
            "clientId": self.client_id,
            "status": self.status,
            "definitionHash": self.definition_hash,
            "inputs": json.loads(self.inputs_json),
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "cancelRequestedAt": self.cancel_requested_at,
            "failureReason": self.failure_reason,
        }

    def workflow(self) -> Any:
        return json.loads(self.workflow_json)


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key: str
    fingerprint: str


class IdempotencyKeyReused(Exception):
    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


@dataclass(frozen=True)
class StartOutcome:
    run: RunRecord
    created: bool


def _dumps(value: Any) -> str:
    # Key order and values as submitted: the snapshot is the workflow as sent, JSON-equal.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class RunStore:
    """The durable state. A seam: faulty variants subclass it and override one method."""

    def __init__(
        self,
        path: str | None = None,
        timestamps: MonotonicTimestamps | None = None,
        id_factory: Callable[[], str] = new_run_id,
    ) -> None:
        self.path = path
        self._timestamps = timestamps or MonotonicTimestamps()
        self._new_id = id_factory
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._open()

    # --- connection ---------------------------------------------------------------------------

    def _open(self) -> None:
        if self.path is not None:
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory):
                raise FileNotFoundError(f"no directory {directory!r} for the database file")
        # Autocommit mode with explicit BEGIN: every transaction boundary is visible in this file.
        conn = sqlite3.connect(self.path or ":memory:", isolation_level=None, check_same_thread=False, timeout=10.0)
        if self.path is not None:
            # WAL + NORMAL: a committed run survives a crash of this process (not a power cut).
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
        self._conn = conn
        with self._transaction() as db:
            row = db.execute(
                "SELECT max(t) FROM (SELECT max(created_at) AS t FROM runs "
                "UNION ALL SELECT max(started_at) FROM runs UNION ALL SELECT max(finished_at) FROM runs "
                "UNION ALL SELECT max(cancel_requested_at) FROM runs)"
            ).fetchone()
        if row and row[0]:
            # After a restart the clock may be behind what was stored; never hand out less.
            self._timestamps.raise_floor(parse_timestamp(row[0]))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                # Closed by an app shutdown and used again (the same app served twice).
                self._open()
            conn = self._conn
            assert conn is not None
            # IMMEDIATE takes the write lock up front: two connections to one file serialise here.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _fetch(self, db: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return RunRecord(*row) if row else None

    # --- secrets ------------------------------------------------------------------------------

    def cursor_secret(self) -> bytes:
        """Random per store; kept in the file with --db so that cursors survive a restart."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'cursor_secret'").fetchone()
            if row:
                return bytes(row[0])
            secret = secrets.token_bytes(32)
            db.execute("INSERT INTO meta (name, value) VALUES ('cursor_secret', ?)", (secret,))
            return secret

    # --- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        """Creates a queued run, or with a claim returns the run its key already made.

        Raises IdempotencyKeyReused when the key was used with a different body.
        """
        with self._transaction() as db:
            if claim is not None:
                existing = db.execute(
                    "SELECT fingerprint, run_id FROM idempotency_keys WHERE scope = ? AND key = ?",
                    (claim.scope, claim.key),
                ).fetchone()
                if existing is not None:
                    if existing[0] != claim.fingerprint:
                        raise IdempotencyKeyReused(existing[1])
                    run = self._fetch(db, existing[1])
                    assert run is not None
                    return StartOutcome(run=run, created=False)
            run_id = self._new_id()
            created_at = self._timestamps.now()
            db.execute(
                "INSERT INTO runs (run_id, client_id, status, definition_hash, workflow, inputs, created_at) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (run_id, client_id, definition_hash, _dumps(workflow), _dumps(inputs), created_at),
            )
            if claim is not None:
                # In the same transaction as the run: both exist, or neither. The primary key
                # refuses a second record for the key should another writer get here first.
                db.execute(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, run_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    (claim.scope, claim.key, claim.fingerprint, run_id, created_at),
                )
            run = self._fetch(db, run_id)
            assert run is not None
            return StartOutcome(run=run, created=True)

    def get(self, run_id: str) -> RunRecord | None:
        with self._transaction() as db:
            return self._fetch(db, run_id)

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        """Up to `limit` runs newest first after the keyset position, and whether more follow."""
        clauses: list[str] = []
        args: list[Any] = []
        if before_seq is not None:
            clauses.append("seq < ?")
            args.append(before_seq)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if client_id is not None:
            clauses.append("client_id = ?")
            args.append(client_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        # One row more than asked: a next cursor only when a run really follows.
        args.append(limit + 1)
        with self._transaction() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM runs {where} ORDER BY seq DESC LIMIT ?", args).fetchall()
        records = [RunRecord(*row) for row in rows]
        return records[:limit], len(records) > limit

    def count(self) -> int:
        with self._transaction() as db:
            return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])

    # --- lifecycle ----------------------------------------------------------------------------

    def mark_running(self, run_id: str) -> bool:
        """queued -> running; False if the run is no longer queued (e.g. cancelled meanwhile)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'running', started_at = ? WHERE run_id = ? AND status = 'queued'",
                (self._timestamps.now(), run_id),
            )
            return cursor.rowcount == 1

    def finish(self, run_id: str, status: str, from_statuses: tuple[str, ...], reason: str | None = None) -> bool:
        """Moves a run to a terminal status if it is in one of `from_statuses`."""
        marks = ",".join("?" * len(from_statuses))
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE runs SET status = ?, finished_at = ?, failure_reason = ? "
                f"WHERE run_id = ? AND status IN ({marks})",
                (status, self._timestamps.now(), reason, run_id, *from_statuses),
            )
            return cursor.rowcount == 1

    def request_cancel(self, run_id: str) -> RunRecord | None:
        """queued -> cancelled at once, running -> cancelling; a terminal run is left as it is.

        cancelRequestedAt keeps its first value (COALESCE), so repeated cancels change nothing.
        """
        with self._transaction() as db:
            now = self._timestamps.now()
            db.execute(
                "UPDATE runs SET status = 'cancelled', cancel_requested_at = ?, finished_at = ? "
                "WHERE run_id = ? AND status = 'queued'",
                (now, now, run_id),
            )
            db.execute(
                "UPDATE runs SET status = 'cancelling', cancel_requested_at = coalesce(cancel_requested_at, ?) "
                "WHERE run_id = ? AND status = 'running'",
                (now, run_id),
            )
            return self._fetch(db, run_id)

    def recover(self) -> list[str]:
        """After a restart: settle the runs that were in flight, return the queued ones to run.

        A `running` run fails with a reason (its steps' effects are unknown, so they are not
        replayed), a `cancelling` one becomes `cancelled` (its work stopped with the server), and
        a `queued` one had not started, so it is run now. No status moves backwards.
        """
        with self._transaction() as db:
            now = self._timestamps.now()
            db.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, failure_reason = ? WHERE status = 'running'",
                (now, RESTART_FAILURE_REASON),
            )
            db.execute(
                "UPDATE runs SET status = 'cancelled', finished_at = ? WHERE status = 'cancelling'",
                (now,),
            )
            rows = db.execute("SELECT run_id FROM runs WHERE status = 'queued' ORDER BY seq").fetchall()
            return [row[0] for row in rows]
