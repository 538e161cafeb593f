"""The few small helpers that checks of several modules share: lifecycle facts, messages, fixture runs, keys.

A check module imports no other check module (tests/test_architecture.py): what two of them need
lives here, or in a module of conformance/ named for what it holds (watcher.py, listing.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from conformance.catalog import requirement
from conformance.client import ApiResponse
from conformance.context import CheckContext
from conformance.spec import terminal_statuses

__all__ = [
    "CANCEL_ANSWERS",
    "LIFE_IDS",
    "TERMINAL",
    "new_key",
    "problem_type",
    "rule_of",
    "show",
    "start_fixture",
    "start_fixtures",
]

TERMINAL = terminal_statuses()
LIFE_IDS = ("LIFE-001", "LIFE-002", "LIFE-003", "LIFE-004")
# What a cancel of a run that is not terminal answers (CANCEL-002).
CANCEL_ANSWERS = frozenset({"cancelling", "cancelled"})


def rule_of(requirement_id: str) -> str:
    """The catalog's statement of a requirement, for a failure message: what the contract says."""
    return f"the contract: {requirement(requirement_id).statement} ({requirement_id})"


def show(response: ApiResponse, limit: int = 300) -> str:
    """One line for a failure message: what was sent and what came back."""
    exchange = response.exchange
    path = exchange.url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else path
    body = (exchange.response_body or "").replace("\n", " ")
    if len(body) > limit:
        body = body[:limit] + "…"
    return f"{exchange.method} {path} → {response.status_code} {body}".rstrip()


def start_fixture(ctx: CheckContext, fixture: str, client_id: str, **kwargs: Any) -> str:
    """Start a run of a fixture workflow; when it is refused, the check cannot go on.

    A 4xx says the fixtures do not suit this server (skipped, with its answer); a 5xx is a failure
    of ERR-001, never a skip.
    """
    started = ctx.start_run(ctx.fixtures.workflow(fixture), client_id=client_id, **kwargs)
    if started.run_id is None:
        raise ctx.refused(
            f"startRun of the '{fixture}' fixture ({ctx.fixtures.source})",
            started.response,
            "give workflows this server accepts with --fixtures",
        )
    return started.run_id


def start_fixtures(ctx: CheckContext, count: int, client_id: str, fixture: str = "quick") -> list[str]:
    """Start `count` runs of a fixture under `client_id`, oldest first."""
    return [start_fixture(ctx, fixture, client_id) for _ in range(count)]


def new_key() -> str:
    # Random, never from the seed: a server keeps its keys, and a rerun with the same seed must not meet them.
    return f"rc-{uuid.uuid4()}"


def problem_type(response: ApiResponse) -> str | None:
    data = response.json_or_none()
    value = data.get("type") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
