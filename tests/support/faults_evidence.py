"""Faulty servers that passed checks whose assertions could not have failed (issue 18).

Each was `conformant` under `--select` of the ID it breaks before the evaluation API bound every
assertion to the answer it judges: a side assertion passed the ID after its premise failed, or a
comparison counted pairs that could not show the bug. SINGLE_CLIENT_FAULTS (faults.py) takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Scope

from reference_impl.app import create_app
from reference_impl.timestamps import MonotonicTimestamps, format_timestamp, parse_timestamp

from .asgi import rewrite_json
from .faults_cancel_page import OldestFirstStore

if TYPE_CHECKING:
    from .faults import Fault

__all__ = [
    "cancel_requested_at_never_set",
    "cancel_stamped_after_finish",
    "evidence_faults",
    "oldest_first_whole_seconds",
    "whole_seconds",
]


def _without_cancel_stamp(scope: Scope, status: int, data: Any) -> Any:
    """Every Run shown with cancelRequestedAt null: the cancel is done, its request never recorded."""
    runs = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) else [data]
    for run in runs:
        if isinstance(run, dict) and "cancelRequestedAt" in run:
            run["cancelRequestedAt"] = None
    return data


def cancel_requested_at_never_set(tokens: Sequence[str]) -> ASGIApp:
    return rewrite_json(create_app(list(tokens)), _without_cancel_stamp)


def _cancel_after_finish(scope: Scope, status: int, data: Any) -> Any:
    """A cancelled Run shows its cancel requested a second after it finished."""
    runs = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) else [data]
    for run in runs:
        if isinstance(run, dict) and run.get("status") == "cancelled" and isinstance(run.get("finishedAt"), str):
            later = parse_timestamp(run["finishedAt"]) + timedelta(seconds=1)
            run["cancelRequestedAt"] = format_timestamp(later)
    return data


def cancel_stamped_after_finish(tokens: Sequence[str]) -> ASGIApp:
    """The cancel is stamped when the executor gets to it, after it marked the run finished: the
    bug the how-to's example check (ARCHITECTURE.md, CANCEL-006) finds."""
    return rewrite_json(create_app(list(tokens)), _cancel_after_finish)


def whole_seconds() -> datetime:
    """A clock that keeps whole seconds only, as a correct server may (many runs share one createdAt)."""
    return datetime.now(UTC).replace(microsecond=0)


def oldest_first_whole_seconds(tokens: Sequence[str]) -> ASGIApp:
    """Oldest first, with createdAt kept to whole seconds: most neighbours share one createdAt, so
    only the pairs whose instants differ can show the order is backwards."""
    return create_app(list(tokens), store=OldestFirstStore(None, MonotonicTimestamps(whole_seconds)))


def evidence_faults() -> list[Fault]:
    """The faults, as faults.py's SINGLE_CLIENT_FAULTS splices them in (while it is being built)."""
    from .faults import Fault  # late: faults.py imports this module

    source = "tests/support/faults_evidence.py"
    return [
        Fault("cancel-requested-at-never-set", "cancel",
              "a cancel takes effect but cancelRequestedAt stays null in every Run",
              ("CANCEL-002", "CANCEL-005"), cancel_requested_at_never_set, source),
        Fault("oldest-first-whole-second", "pagination",
              "listRuns is oldest first and createdAt has whole seconds only",
              ("PAGE-001",), oldest_first_whole_seconds, source),
    ]  # fmt: skip
