"""Faults only the final reads catch (conformance/final_reads.py): promises kept at first and broken later.

Every check judges a promise right after it is made, so each of these servers answers every check
correctly; what it gets wrong shows only when the run reads back, at its end, what it established.

- `keys-bounded-cache`: idempotency records live in a cache of the last KEY_CACHE keys; older
  keys are evicted, so a retry of an early startRun makes a second run (and another body a 202).
- `keys-expire-in-seconds`: a key is forgotten KEY_TTL_S seconds after its first use, where the
  contract promises no expiry at all (IDEM-001 has no time limit in it).
- `terminal-run-rewritten`: a background job "normalises" finished runs REWRITE_AFTER_S seconds
  after they end, stamping finishedAt again, a second later: a terminal run changes (LIFE-002).
- `runs-purged-after-ending`: a retention job meant to keep finished runs for days is set in
  seconds: a run is deleted (with its definition and keys) PURGE_AFTER_S after it ends, where the
  contract sets no retention limit (LIFE-006).
- `cursor-expires-in-seconds`: a cursor carries the instant it was issued (signed with it) and is
  refused with 400 CURSOR_TTL_S seconds later ("page tokens expire", as some APIs document), where
  the contract gives a cursor no lifetime (PAGE-011).

The delays are chosen so that no check re-reads a promise that late (seen: each passes on main
under `--select` of its area at the quick profile), and the self-check runs each with
`--final-reads-after` a second longer than its delay, so the final reads always do, however
quickly the checks ran.

One more, `runs-consumed-when-read-finished`, is not late but the proof that a run selecting
LIFE-006 alone catches a forgotten run (tests/test_isolation_matrix.py): its checks read a run
right after it ends, in a run too short for any delay above. A run is consumed by the lookup that
shows it finished (a consume-once result backend): the very next getRun finds nothing. So is
`cursors-single-use` for PAGE-011: a cursor is a server-side token deleted when a page is read with
it, so a second request with it (a client retrying a page, the final reads) gets 400.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Scope

from reference_impl.app import create_app
from reference_impl.cursors import CursorCodec, Filters
from reference_impl.problems import ProblemError
from reference_impl.store import IdempotencyClaim, RunRecord, RunStore, StartOutcome
from reference_impl.timestamps import format_timestamp, parse_timestamp

from .asgi import rewrite_json

if TYPE_CHECKING:
    from .faults import Fault

__all__ = ["CURSOR_TTL_S", "KEY_CACHE", "KEY_TTL_S", "PURGE_AFTER_S", "REWRITE_AFTER_S", "final_faults"]

SOURCE = "tests/support/faults_final.py"
KEY_CACHE = 20  # keys a bounded cache remembers
KEY_TTL_S = 5.0  # seconds a key lives in the expiring one
REWRITE_AFTER_S = 5.0  # seconds after a run ends that its finishedAt is stamped again
PURGE_AFTER_S = 5.0  # seconds after a run ends that the eager retention job deletes it
CURSOR_TTL_S = 3.0  # seconds a cursor is accepted after it was issued


def cursor_clock() -> float:
    """The expiring cursors' clock: a test sets the time itself, so a loaded machine cannot age a cursor."""
    return time.time()


_ISSUED_SHIFT = 64  # a cursor's position packs its issue time (ms), or a token id, above the run's seq
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def lapsed(seconds: float) -> tuple[str, ...]:
    """The final reads after the delay: every promise the run's checks made is then older than it, however
    quickly or slowly the checks ran (a run's own length once decided it, and a short run passed)."""
    return ("--final-reads-after", f"{seconds + 1:g}")


class BoundedKeyCache(RunStore):
    """Idempotency records in an LRU-less cache of KEY_CACHE entries: the oldest are evicted first."""

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        outcome = super().start_run(client_id, workflow, inputs, definition_hash, claim)
        if claim is not None:
            with self._transaction() as db:
                db.execute(
                    "DELETE FROM idempotency_keys WHERE rowid NOT IN "
                    "(SELECT rowid FROM idempotency_keys ORDER BY rowid DESC LIMIT ?)",
                    (KEY_CACHE,),
                )
        return outcome


class ExpiringKeys(RunStore):
    """A key is dropped KEY_TTL_S seconds after its first use (a cache with a short TTL)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_use: dict[tuple[str, str], float] = {}
        self._uses = threading.Lock()

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        if claim is not None:
            now = time.monotonic()
            with self._uses:
                born = self._first_use.setdefault((claim.scope, claim.key), now)
                expired = now - born > KEY_TTL_S
                if expired:
                    self._first_use[(claim.scope, claim.key)] = now  # the key starts a new life
            if expired:
                with self._transaction() as db:
                    db.execute("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?", (claim.scope, claim.key))
        return super().start_run(client_id, workflow, inputs, definition_hash, claim)


class EagerRetention(RunStore):
    """`DELETE FROM runs WHERE finished_at < now() - retention`, with the retention PURGE_AFTER_S seconds
    (days were meant), run before every read: a finished run, its definition and its keys vanish."""

    def _purge(self) -> None:
        # finishedAt is fixed width (reference_impl.timestamps), so timestamps compare as strings.
        cutoff = format_timestamp(datetime.now(UTC) - timedelta(seconds=PURGE_AFTER_S))
        with self._transaction() as db:
            gone = "SELECT run_id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?"
            db.execute(f"DELETE FROM idempotency_keys WHERE run_id IN ({gone})", (cutoff,))
            db.execute(f"DELETE FROM runs WHERE run_id IN ({gone})", (cutoff,))

    def get(self, run_id: str) -> RunRecord | None:
        self._purge()
        return super().get(run_id)

    def list_runs(
        self, status: str | None, client_id: str | None, before_seq: int | None, limit: int
    ) -> tuple[list[RunRecord], bool]:
        self._purge()
        return super().list_runs(status, client_id, before_seq, limit)


class ConsumedWhenReadFinished(RunStore):
    """A finished run is consumed by the read that shows it finished (a result backend that pops
    results): from then on no lookup by its runId finds it, though listRuns still shows it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._consumed: set[str] = set()
        self._consuming = threading.Lock()

    def get(self, run_id: str) -> RunRecord | None:
        with self._consuming:
            if run_id in self._consumed:
                return None
        record = super().get(run_id)
        if record is not None and record.status in TERMINAL:
            with self._consuming:
                self._consumed.add(run_id)
        return record


def runs_purged_after_ending(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), store=EagerRetention(None))


def runs_consumed_when_read_finished(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), store=ConsumedWhenReadFinished(None))


def bounded_key_cache(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), store=BoundedKeyCache(None))


def keys_expire_in_seconds(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), store=ExpiringKeys(None))


def terminal_run_rewritten(tokens: Sequence[str]) -> ASGIApp:
    """Every Run shown (getRun and listRuns) with finishedAt a second later once REWRITE_AFTER_S have
    passed since this server first showed it terminal: the order createdAt ≤ startedAt ≤ finishedAt holds."""
    ended: dict[str, float] = {}
    lock = threading.Lock()

    def rewrite(scope: Scope, status: int, data: Any) -> Any:
        runs = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) else [data]
        now = time.monotonic()
        for run in runs:
            if not isinstance(run, dict) or run.get("status") not in TERMINAL:
                continue
            if not isinstance(run.get("finishedAt"), str) or not isinstance(run.get("runId"), str):
                continue
            with lock:
                first = ended.setdefault(run["runId"], now)
            if now - first > REWRITE_AFTER_S:
                run["finishedAt"] = format_timestamp(parse_timestamp(run["finishedAt"]) + timedelta(seconds=1))
        return data

    return rewrite_json(create_app(list(tokens)), rewrite)


class ExpiringCursors(CursorCodec):
    """The reference codec with the issue time signed into the position: refused CURSOR_TTL_S later."""

    def encode(self, after: int, filters: Filters) -> str:
        return super().encode((int(cursor_clock() * 1000) << _ISSUED_SHIFT) | after, filters)

    def decode(self, cursor: str, filters: Filters) -> int:
        issued, after = divmod(super().decode(cursor, filters), 1 << _ISSUED_SHIFT)
        if cursor_clock() * 1000 - issued > CURSOR_TTL_S * 1000:
            raise ProblemError("invalid-cursor", "The cursor has expired; list again from the first page.")
        return after


class SingleUseCursors(CursorCodec):
    """The reference codec, but a cursor read once is spent: the token table deletes it on use."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret)
        self._spent: set[str] = set()
        self._lock = threading.Lock()

    def encode(self, after: int, filters: Filters) -> str:
        # A token per page served (a random id above the seq): two walks never share one.
        return super().encode((secrets.randbits(64) << _ISSUED_SHIFT) | after, filters)

    def decode(self, cursor: str, filters: Filters) -> int:
        after = super().decode(cursor, filters) % (1 << _ISSUED_SHIFT)  # refused for its filters: not spent
        with self._lock:
            if cursor in self._spent:
                raise ProblemError("invalid-cursor", "The cursor was already used.")
            self._spent.add(cursor)
        return after


def cursor_expires_in_seconds(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), cursor_codec=ExpiringCursors(secrets.token_bytes(32)))


def cursors_single_use(tokens: Sequence[str]) -> ASGIApp:
    return create_app(list(tokens), cursor_codec=SingleUseCursors(secrets.token_bytes(32)))


def final_faults() -> list[Fault]:
    """The faults, as faults.py's SINGLE_CLIENT_FAULTS splices them in (while it is being built)."""
    from .faults import Fault  # late: faults.py imports this module

    return [
        Fault("keys-bounded-cache", "idempotency",
              f"idempotency records in a cache of the last {KEY_CACHE} keys: an early key replays as a new run",
              ("IDEM-001", "IDEM-003"), bounded_key_cache, SOURCE),
        Fault("keys-expire-in-seconds", "idempotency",
              f"a key is forgotten {KEY_TTL_S:g} s after its first use",
              ("IDEM-001", "IDEM-003"), keys_expire_in_seconds, SOURCE, cli_args=lapsed(KEY_TTL_S)),
        Fault("terminal-run-rewritten", "lifecycle",
              f"{REWRITE_AFTER_S:g} s after a run ends, its finishedAt is stamped again, a second later",
              ("LIFE-002",), terminal_run_rewritten, SOURCE, cli_args=lapsed(REWRITE_AFTER_S)),
        Fault("runs-purged-after-ending", "lifecycle",
              f"a retention job deletes a run {PURGE_AFTER_S:g} s after it ends (days were meant)",
              ("LIFE-006",), runs_purged_after_ending, SOURCE, cli_args=lapsed(PURGE_AFTER_S)),
        Fault("runs-consumed-when-read-finished", "lifecycle",
              "a finished run is deleted once getRun has shown it finished (a consume-once result backend)",
              ("LIFE-006",), runs_consumed_when_read_finished, SOURCE,
              # The cancel checks wait for runs they can no longer look up: the default 30 s each, else.
              cli_args=("--timeout", "3")),
        Fault("cursor-expires-in-seconds", "pagination",
              f"a cursor is refused with 400 {CURSOR_TTL_S:g} s after it was issued",
              ("PAGE-011",), cursor_expires_in_seconds, SOURCE, cli_args=lapsed(CURSOR_TTL_S)),
        Fault("cursors-single-use", "pagination",
              "a cursor is a server-side token deleted on use: asked for again, its page is a 400",
              ("PAGE-011",), cursors_single_use, SOURCE),
    ]  # fmt: skip
