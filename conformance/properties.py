"""How a check runs a Hypothesis property: its budget, its examples side by side, its failures as evidence.

A property is a @given test over @records_example; `run_property` runs it with the check's seed and
records each requirement its failing example broke, with that example and its exchanges.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import hypothesis
from hypothesis import Phase, settings

from conformance.outcomes import Violations, first_of
from conformance.results import Exchange

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = ["property_settings", "records_example", "run_property"]


F = TypeVar("F", bound=Callable[..., None])


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
        try:
            test(*args, **kwargs)
        except Violations as exc:
            exc.example = kwargs
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
    """Run a Hypothesis test of a check (@given over @records_example); record what its failing example broke.

    Each requirement the example broke becomes a failure of the check, with the example (and
    Hypothesis's notes) as the evidence's falsifying_example and that example's exchanges.

    Where the examples do not depend on one another and nothing is shrunk (every profile but
    `thorough`), and the server is far enough for it to pay (session.fan_out > 1), they are drawn
    first, with the same seed and so the same values, and sent side by side; the first failing one,
    in drawing order, is reported, so the outcome does not depend on which answer came first.
    """
    from conformance.context import EVIDENCE_EXCHANGES

    seeded = hypothesis.seed(ctx.seed)(test)
    fan_out = ctx.session.fan_out
    if fan_out > 1 and Phase.shrink not in property_settings(ctx).phases:
        _run_side_by_side(ctx, seeded, fan_out)
        return
    try:
        seeded()
    except Exception as exc:
        found = first_of(exc, Violations, group_notes=True)
        if found is None:
            raise
        _record(ctx, found, ctx.recorder.last(EVIDENCE_EXCHANGES))


def _run_side_by_side(ctx: CheckContext, seeded: Callable[[], None], fan_out: int) -> None:
    from conformance.context import EVIDENCE_EXCHANGES

    drawn: list[dict[str, Any]] = []
    token = _DRAWING.set(drawn)
    try:
        seeded()  # only draws: the body notes each example's arguments
    finally:
        _DRAWING.reset(token)
    body: Callable[..., None] = seeded.hypothesis.inner_test  # type: ignore[attr-defined]

    def one(kwargs: dict[str, Any]) -> tuple[Violations, list[Exchange]] | None:
        with ctx.recorder.tap() as exchanges:
            try:
                body(**kwargs)
            except Violations as exc:
                return exc, exchanges
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=fan_out, thread_name_prefix="rc-example") as pool:
        outcomes = list(pool.map(one, drawn))
    first = next((outcome for outcome in outcomes if outcome is not None), None)
    if first is not None:
        found, exchanges = first
        _record(ctx, found, exchanges[-EVIDENCE_EXCHANGES:])


def _record(ctx: CheckContext, found: Violations, exchanges: list[Exchange]) -> None:
    lines = [n for n in getattr(found, "__notes__", []) if isinstance(n, str)]
    if found.example is not None:
        lines += [f"{name} = {_as_json(value)}" for name, value in found.example.items()]
    notes = "\n".join(lines) or None
    for (rid, message), site in zip(found.violations, found.sites, strict=True):
        ctx.record_failure(rid, message, exchanges, notes, site=site)
