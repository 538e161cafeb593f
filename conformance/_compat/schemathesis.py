"""Schemathesis internals the suite relies on (tested against the version pinned in pyproject.toml).

- `build_operation_test`: Schemathesis' own composition of its examples, coverage and fuzzing
  phases for one operation, as its pytest integration builds it; the public API offers it only
  inside pytest collection (`schema.parametrize()`) or the CLI, and the suite runs checks itself.
- A case's generation metadata (`case._meta`): whether a case is negative and which parameters it
  mutated, so a "negative data accepted" failure is charged to the right requirement (a bad
  `limit` is PAGE-003's, a bad `status` PAGE-010's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["build_operation_test", "is_negative"]


def build_operation_test(config: Any, operation: Any, test_func: Callable[[Any], None], settings: Any) -> Any:
    """A Hypothesis test running `test_func(case)` over the operation's examples, coverage and fuzzing phases."""
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.pytest._test_builder import build_operation_test as build

    return build(
        config=config,
        operation=operation,
        test_func=test_func,
        given_kwargs={},
        feedback=FeedbackSources(),
        explicit_settings=settings,
    )


def is_negative(case: Any) -> bool:
    """The case was generated to break the schema (negative data)."""
    meta = case._meta
    return meta is not None and bool(meta.generation.mode.is_negative)
