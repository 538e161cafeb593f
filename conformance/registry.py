"""Checks and the requirements they verify.

A check is a function of a CheckContext, registered with the catalog IDs it verifies::

    @check("IDEM-001", "IDEM-002")
    def replay_with_same_key(ctx: CheckContext) -> None:
        ...
        second = ctx.post_run(raw, key=key)
        ctx.expect("IDEM-001", second.run_id == first.run_id, "the replay got another runId", on=second)

Within a check, `ctx.expect(id, condition, message, on=answer)` records one evaluated assertion
of a requirement about the answer(s) it judges (a failure when the condition is false) and goes
on; over no answer (`on` None) or an absent value (`reads=`) it is no evaluation but a skip of
that ID. `raise ctx.fail(id, message)` records a failure and stops the check; `raise
Skipped(reason)` says the check cannot run here (no second token, a fixture the server lacks, a
premise that did not happen). A requirement passes only on assertions evaluated in this run, and
a named ID only when its check ran to its end or declared it finished (`ctx.finished`;
conformance/outcomes.py). The IDs given here are the only ones a check may assert, besides those
judged on every answer (judges.CROSS_CUTTING): asserting another is a mistake in the suite, and so
is anything else raised, an error of the suite, never a failure of the server.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conformance.catalog import catalog
from conformance.outcomes import Failed, Skipped

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = ["Check", "Failed", "InvalidCheck", "Skipped", "check", "registered_checks"]

CheckFunction = Callable[["CheckContext"], None]

# What a check may need beyond the primary token; the runner skips the check when one is missing.
NEEDS = frozenset({"other_token", "fixture:quick", "fixture:long", "fixture:failing"})


class InvalidCheck(Exception):
    """A check was registered wrongly: an unknown requirement ID, a duplicate name."""


@dataclass(frozen=True)
class Check:
    name: str
    requirements: tuple[str, ...]
    func: CheckFunction
    needs: frozenset[str]
    exclusive: bool = False  # must run alone: no other check side by side (--workers)

    def __call__(self, ctx: CheckContext) -> None:
        self.func(ctx)


_CHECKS: dict[str, Check] = {}


def check(
    *requirement_ids: str, needs: Iterable[str] = (), exclusive: bool = False
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check of the given catalog requirements.

    `exclusive`: the check must run alone, no other beside it, whatever --workers says (a load test,
    or a check that counts what the whole server holds). Every other check runs side by side with
    any other: each works on clientIds and keys of its own.
    """
    known = catalog()
    needs_set = frozenset(needs)

    def register(func: CheckFunction) -> CheckFunction:
        name = func.__name__
        if not requirement_ids:
            raise InvalidCheck(f"check {name} names no requirement; every check verifies at least one ID.")
        unknown = [rid for rid in requirement_ids if rid not in known]
        if unknown:
            raise InvalidCheck(f"check {name} names {', '.join(unknown)}, which the catalog does not have.")
        if not needs_set <= NEEDS:
            raise InvalidCheck(f"check {name} needs {sorted(needs_set - NEEDS)}; known needs: {sorted(NEEDS)}.")
        existing = _CHECKS.get(name)
        if existing is not None and existing.func.__module__ != func.__module__:
            raise InvalidCheck(f"check {name} is defined in {existing.func.__module__} and {func.__module__}.")
        _CHECKS[name] = Check(
            name=name,
            requirements=tuple(requirement_ids),
            func=func,
            needs=needs_set,
            exclusive=exclusive,
        )
        return func

    return register


def registered_checks() -> list[Check]:
    """Every check of the suite, in registration order (modules of conformance.checks, sorted)."""
    import conformance.checks as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return list(_CHECKS.values())
