"""How a check runs a Hypothesis property: its budget, its examples side by side, its failures as evidence.

A property is a @given test over @records_example; `run_property` runs it with the check's seed and
records each requirement its failing examples broke, one finding per fingerprint with the smallest
example and its exchanges, and how many examples showed it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import hypothesis
from hypothesis import Phase, settings

from conformance.fingerprints import fingerprint, operation_of
from conformance.outcomes import Violations, first_of
from conformance.results import Exchange

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = ["Found", "property_settings", "record_grouped", "records_example", "run_property"]


F = TypeVar("F", bound=Callable[..., None])


# While Hypothesis runs a property itself (shrinking), each failing call is noted here with its exchanges.
_FAILING: contextvars.ContextVar[_Failing | None] = contextvars.ContextVar("failing", default=None)

# While run_property draws a property's examples to run them side by side, the property's body only
# notes its arguments: drawing is Hypothesis' business, sending them is the suite's.
_DRAWING: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("drawing", default=None)


def records_example(test: F) -> F:
    """Put under @given: a Violations raised by `test` carries the arguments it was called with.

    Hypothesis's own "Failing test case" note does not always show the values (nested in a pytest
    test it prints `body=,`), so the evidence gets them as JSON too.
    """

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        drawn = _DRAWING.get()
        if drawn is not None:
            drawn.append(kwargs)
            return
        failing = _FAILING.get()
        with failing.ctx.recorder.tap() if failing is not None else contextlib.nullcontext() as exchanges:
            try:
                test(*args, **kwargs)
            except Violations as exc:
                exc.example = kwargs
                if failing is not None and exchanges is not None:
                    from conformance.context import EVIDENCE_EXCHANGES

                    failing.found.extend(_found(exc, exchanges[-EVIDENCE_EXCHANGES:]))
                raise

    return cast(F, wrapper)


def _as_json(value: Any) -> str:
    def default(item: Any) -> Any:
        if isinstance(item, bytes):
            return item.decode("utf-8", errors="replace")
        if isinstance(item, tuple):
            return list(item)
        return repr(item)

    return json.dumps(value, ensure_ascii=False, default=default)


def property_settings(ctx: CheckContext) -> settings:
    """Settings for a property of a check: the profile's budget, one report, and shrinking only under `thorough`.

    Every example (and every shrink step) sends requests; shrinking a failure found against a real
    server takes a minute or more (measured: ~80 s for one IDEM-005 failure under `default`), which
    `quick` and `default` do not have. Their reports show the first failing example, which is small
    already: generation starts from the simplest bodies.
    """
    overrides: dict[str, Any] = {"report_multiple_bugs": False}
    if ctx.profile.name != "thorough":
        overrides["phases"] = [phase for phase in Phase if phase is not Phase.shrink]
    return ctx.hypothesis_settings(**overrides)


def run_property(ctx: CheckContext, test: Callable[[], None]) -> None:
    """Run a Hypothesis test of a check (@given over @records_example); record what every failing example broke.

    Every example is judged and every failing one recorded, grouped by fingerprint: one finding per
    defect with how many examples showed it, the smallest of them (and its exchanges) shown. A
    defect one example shows is never hidden behind another's.

    Where nothing is shrunk (every profile but `thorough`) the examples are drawn first, with the
    seed, and then sent: side by side where the server is far enough for it to pay
    (session.fan_out > 1), else one after another; either way the same examples, so the findings do
    not depend on the fan-out or on which answer came first. Under `thorough` Hypothesis runs them
    and shrinks the first failure; every failing example it ran on the way is recorded too.
    """
    seeded = hypothesis.seed(ctx.seed)(test)
    if Phase.shrink in property_settings(ctx).phases:
        _run_shrinking(ctx, seeded)
    else:
        _run_drawn(ctx, seeded, ctx.session.fan_out)


def _run_shrinking(ctx: CheckContext, seeded: Callable[[], None]) -> None:
    seen: list[Found] = []
    token = _FAILING.set(_Failing(ctx, seen))
    try:
        seeded()
    except Exception as exc:
        found = first_of(exc, Violations, group_notes=True)
        if found is None:
            raise
        # The shrunk example is the one Hypothesis reports (its last call): shown for its defects, with the
        # notes Hypothesis added since.
        from conformance.context import EVIDENCE_EXCHANGES

        calls = [item for item in seen if item.origin != id(found)]
        exchanges = next((item.exchanges for item in seen if item.origin == id(found)), None)
        shrunk = _found(found, exchanges or ctx.recorder.last(EVIDENCE_EXCHANGES), size=-1)
        record_grouped(ctx, [*shrunk, *calls])
    finally:
        _FAILING.reset(token)


def _run_drawn(ctx: CheckContext, seeded: Callable[[], None], fan_out: int) -> None:
    from conformance.context import EVIDENCE_EXCHANGES

    drawn: list[dict[str, Any]] = []
    token = _DRAWING.set(drawn)
    try:
        seeded()  # only draws: the body notes each example's arguments
    finally:
        _DRAWING.reset(token)
    body: Callable[..., None] = seeded.hypothesis.inner_test  # type: ignore[attr-defined]
    name = getattr(body, "__name__", "property")

    def one(kwargs: dict[str, Any]) -> list[Found]:
        with ctx.recorder.tap() as exchanges:
            try:
                body(**kwargs)
            except Violations as exc:
                # What Hypothesis would print of it, as a property run by Hypothesis shows it.
                exc.add_note(f"Failing test case (seed {ctx.seed}): {name}({', '.join(kwargs)})")
                return _found(exc, exchanges[-EVIDENCE_EXCHANGES:])
        return []

    if fan_out > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=fan_out, thread_name_prefix="rc-example") as pool:
            outcomes = list(pool.map(one, drawn))
    else:
        outcomes = [one(kwargs) for kwargs in drawn]
    record_grouped(ctx, [item for found in outcomes for item in found])


@dataclass(frozen=True)
class Found:
    """One requirement one example (or scenario) broke, with what to show of it.

    `size` orders the examples of one defect: the smallest is shown (drawing order breaks ties).
    """

    requirement_id: str
    message: str
    site: str
    exchanges: list[Exchange]
    example: str | None
    size: int
    origin: int = field(default=0, compare=False)  # id() of the Violations it came from

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.requirement_id, self.site, operation_of(self.exchanges[-1] if self.exchanges else None))


def _found(found: Violations, exchanges: list[Exchange], size: int | None = None) -> list[Found]:
    lines = [n for n in getattr(found, "__notes__", []) if isinstance(n, str)]
    if found.example is not None:
        lines += [f"{name} = {_as_json(value)}" for name, value in found.example.items()]
    shown = "\n".join(lines) or None
    measured = len(_as_json(found.example)) if size is None else size
    return [
        Found(rid, message, site, exchanges, shown, measured, id(found))
        for (rid, message), site in zip(found.violations, found.sites, strict=True)
    ]


def record_grouped(ctx: CheckContext, found: list[Found]) -> None:
    """Record every failure, one finding per fingerprint: the smallest example shown, the others counted.

    Findings come in the order their defects first appear in `found` (drawing order), never in the
    order answers arrived.
    """
    groups: dict[str, list[Found]] = {}
    for item in found:
        groups.setdefault(item.fingerprint, []).append(item)
    for items in groups.values():
        shown = min(items, key=lambda item: item.size)  # min keeps the first of equals: drawing order
        more = len(items) - 1
        message = shown.message + (f" (and {more} more example{'s' if more != 1 else ''} the same way)" if more else "")
        ctx.record_failure(
            shown.requirement_id, message, shown.exchanges, shown.example, site=shown.site, count=len(items)
        )


@dataclass
class _Failing:
    """Where a property's body, run by Hypothesis, records each failing call (the `thorough` profile)."""

    ctx: CheckContext
    found: list[Found] = field(default_factory=list)
