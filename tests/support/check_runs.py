"""Run one check of the suite against a server, and what the tests assert about the result.

`assert_caught` and `assert_passed` are the only two verdicts the checks' unit tests give; on
failure both print `explain(run)`, the check's message and every piece of evidence.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

from conformance.execution import CheckRun, run_check
from conformance.outcomes import Outcome
from conformance.registry import registered_checks
from conformance.session import Session

from .tokens import OTHER_TOKEN, TOKEN

__all__ = ["assert_caught", "assert_passed", "explain", "open_session", "run_named_check"]


def run_named_check(name: str, session: Session) -> CheckRun:
    """Run one registered check by name."""
    checks = {c.name: c for c in registered_checks()}
    return run_check(checks[name], session)


@contextlib.contextmanager
def open_session(url: str, **kwargs: Any) -> Iterator[Session]:
    """A suite session like conftest's make_session, for a module-scoped fixture (opening one costs ~0.3 s)."""
    kwargs.setdefault("other_token", OTHER_TOKEN)
    kwargs.setdefault("client_id", f"rc-test-{secrets.token_hex(4)}")
    kwargs.setdefault("timeout", 15.0)
    session = Session.open(url, TOKEN, **kwargs)
    try:
        yield session
    finally:
        session.close()


def explain(run: CheckRun) -> str:
    """The check's message and each requirement's evidence, one line each: what a failed assertion prints."""
    lines = [f"{run.check.name}: {run.message}"]
    for rid, items in run.evidence.items():
        lines += [f"  {rid}: {item.message}" for item in items]
    return "\n".join(lines)


def assert_passed(run: CheckRun) -> None:
    """Every requirement the check ran is passed."""
    assert all(o is Outcome.PASSED for o in run.statuses().values()), f"{run.outcomes}\n{explain(run)}"


def assert_caught(run: CheckRun, targets: set[str], *, cites_id: bool = True) -> None:
    """The check caught the bug: every ID of `targets` is failed (others may fail too), and each failure
    explains itself, with a message and the exchanges that show it; the message cites its ID too.

    `cites_id=False` only for the checks whose messages do not name their ID yet (idempotency and etag:
    the report prints the ID beside the message); everything else holds to it.
    """
    failed = {rid for rid, outcome in run.statuses().items() if outcome is Outcome.FAILED}
    assert targets <= failed, f"expected {sorted(targets)} to fail, got {run.outcomes}\n{explain(run)}"
    for rid in targets:
        for item in run.evidence[rid]:
            # A failure explains itself: what was sent and what came back, with the exchanges to show it.
            assert item.message and item.exchanges, (rid, item)
            if cites_id:
                assert rid in item.message, f"the message does not cite {rid}: {item.message}"
