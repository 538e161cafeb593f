"""Faults that only a disruption shows: state a server keeps in its process, lost when the process restarts.

- `keys-in-memory`: runs are in the SQLite file (--db) and survive a restart; the idempotency
  records are a dict of the process. Between restarts it is the reference server to the byte; after
  one, a replay of a key with its body makes a second run (CONC-001, IDEM-001) and a replay with
  another body gets 202 instead of 409 (CONC-002, IDEM-002).
- `cursor-secret-per-process`: runs and keys in the file, but the HMAC secret that signs cursors is
  drawn when the process starts (the reference server's in-memory default, shipped with a
  database). Between restarts it is the reference server; after one, every cursor issued before it
  is a 400 (PAGE-011, in the final reads: with --disrupt the workload runs after the other checks).

These are processes, not apps: `python -m support.faults_disrupt --fault keys-in-memory --db FILE
--port P` (tests/ on sys.path) serves one, and the disrupt command of support/restarts.py kills
and starts it again. They are not in servers.py's registry: the self-check serves its faults in
threads, without a disruption, where this one is correct.

The same launcher serves any correct variant of servers.py on the file (`--variant NAME`), so that
the variants too are held to the contract across a restart (tests/test_disruption.py,
scripts/flake_check.py --restart).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from reference_impl.app import create_app
from reference_impl.cursors import CursorCodec
from reference_impl.store import IdempotencyClaim, IdempotencyKeyReused, RunStore, StartOutcome

from .servers import VARIANTS, variant
from .tokens import TOKENS

__all__ = ["FAULTS", "KeysInMemoryStore", "main"]


class KeysInMemoryStore(RunStore):
    """Runs on file, key records in a dict: the cache a team adds 'for speed' and forgets to persist."""

    def __init__(self, path: str | None = None, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}  # (scope, key) -> (fingerprint, runId)

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        if claim is None:
            return super().start_run(client_id, workflow, inputs, definition_hash)
        with self._lock:  # one lock for the dict and the insert: between restarts, exactly the reference
            found = self._keys.get((claim.scope, claim.key))
            if found is not None:
                fingerprint, run_id = found
                if fingerprint != claim.fingerprint:
                    raise IdempotencyKeyReused(run_id)
                run = self.get(run_id)
                assert run is not None
                return StartOutcome(run=run, created=False)
            outcome = super().start_run(client_id, workflow, inputs, definition_hash)
            self._keys[(claim.scope, claim.key)] = (claim.fingerprint, outcome.run.run_id)
            return outcome


def _on_file(store: Callable[[str], RunStore]) -> Callable[[str], ASGIApp]:
    return lambda db: create_app(list(TOKENS), store=store(db))


def cursor_secret_per_process(db: str) -> ASGIApp:
    return create_app(list(TOKENS), store=RunStore(db), cursor_codec=CursorCodec(secrets.token_bytes(32)))


FAULTS: dict[str, Callable[[str], ASGIApp]] = {
    "none": _on_file(RunStore),  # the reference server itself, served the same way
    "keys-in-memory": _on_file(KeysInMemoryStore),
    "cursor-secret-per-process": cursor_secret_per_process,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    served = parser.add_mutually_exclusive_group(required=True)
    served.add_argument("--fault", choices=sorted(FAULTS))
    served.add_argument("--variant", choices=[item.name for item in VARIANTS])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = variant(args.variant).build(TOKENS, args.db) if args.variant is not None else FAULTS[args.fault](args.db)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
