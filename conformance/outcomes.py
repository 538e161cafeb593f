"""What a check found, assertion by assertion: the evidence behind every outcome.

A check records each assertion it evaluates with `CheckContext.expect(...)` (or `raise ctx.fail(...)`
to record a failure and stop). The Tally counts what was evaluated per requirement, so a
requirement is `passed` only when this run evaluated it and nothing failed; an ID a check names
but never evaluated is not a pass. Inside a Hypothesis property, an `Example` collects one
example's assertions: evaluations count at once, failures are raised as `Violations` so that
Hypothesis reports the example that broke them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from conformance.fingerprints import assertion_site
from conformance.results import Evidence

__all__ = [
    "Cut",
    "Example",
    "Failed",
    "Outcome",
    "RequirementOutcome",
    "Skipped",
    "Tally",
    "Violations",
    "first_of",
    "gist",
    "unjudgeable",
]

E = TypeVar("E", bound=BaseException)


class Failed(AssertionError):
    """The server broke a requirement; the check stops here (`raise ctx.fail(id, message)`)."""

    def __init__(self, requirement_id: str, message: str) -> None:
        super().__init__(f"{requirement_id}: {message}")
        self.requirement_id = requirement_id
        self.message = message


class Skipped(Exception):
    """The check cannot run against this server or configuration; the reason says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cut(Exception):
    """The run's deadline came before the check finished: what it did not finish is not run, never passed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Violations(AssertionError):
    """Raised inside a property: every requirement one example broke, with its message.

    An AssertionError, so Hypothesis shrinks to the smallest example that still breaks something.
    """

    def __init__(self, violations: list[tuple[str, str]], sites: list[str] | None = None) -> None:
        super().__init__("; ".join(f"{rid}: {message}" for rid, message in violations))
        self.violations = violations
        self.sites = sites or ["?"] * len(violations)  # where each was asserted: its fingerprint's part
        self.example: dict[str, object] | None = None  # the property's arguments, set by @records_example


class Outcome(StrEnum):
    """What one check found for one requirement, before the level is applied.

    Ranked: when several checks speak for one requirement, the worst wins, so a requirement that one
    check verified and another could not reach is not reported verified.
    """

    PASSED = "passed"  # evaluated at least once, never failed
    NOT_RUN = "not_run"  # named but not evaluated: the check stopped first, or never started
    SKIPPED = "skipped"  # the check (or this requirement's premise) could not run here
    FAILED = "failed"
    ERROR = "error"  # the suite broke

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Outcome.PASSED: 0, Outcome.NOT_RUN: 1, Outcome.SKIPPED: 2, Outcome.FAILED: 3, Outcome.ERROR: 4}


@dataclass
class RequirementOutcome:
    outcome: Outcome
    evaluations: int = 0
    reason: str = ""  # why it was skipped, not run or broke; empty for a pass or a failure


@dataclass
class Tally:
    """The assertions one check evaluated, per requirement. Thread-safe: checks may fan out."""

    evaluations: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, Evidence]] = field(default_factory=list)
    skips: dict[str, str] = field(default_factory=dict)  # requirement -> why its premise did not happen
    done: set[str] = field(default_factory=set)  # named IDs the check declared finished before it ended
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def evaluated(self, requirement_id: str, count: int = 1) -> None:
        with self._lock:
            self.evaluations[requirement_id] += count

    def failure(self, requirement_id: str, evidence: Evidence) -> None:
        with self._lock:
            self.evaluations[requirement_id] += 1
            self.failures.append((requirement_id, evidence))

    def skip(self, requirement_id: str, reason: str) -> None:
        with self._lock:
            self.skips.setdefault(requirement_id, reason)

    def finished(self, requirement_id: str) -> None:
        with self._lock:
            self.done.add(requirement_id)

    def failed_ids(self) -> set[str]:
        return {rid for rid, _ in self.failures}

    def outcomes(
        self,
        named: Iterable[str],
        *,
        stopped_at: str | None = None,
        skipped: str | None = None,
        broken: str | None = None,
    ) -> dict[str, RequirementOutcome]:
        """Per requirement: what the evidence shows.

        `named`: the IDs the check declares. A failure always stands. A named ID the check
        evaluated passes only if the check ran to its end, or declared the ID finished
        (`CheckContext.finished`) before it stopped: an assertion that held while the rest of the
        check never ran is half a test, and the half it skipped is where a wrong server fails.
        So when the check was skipped (`skipped`), its evaluated named IDs are skipped with that
        reason; when it stopped (`stopped_at`: a failure of another ID, a transport error, the
        deadline) they are not run; when it broke (`broken`), they are the suite's error. Their
        evaluations are kept for the report. IDs judged in passing on every answer (ERR-001, the
        judge's SCHEMA-*), which the check does not name, keep their evaluations whatever ended
        the check: each judged a real answer on its own. A named ID never evaluated is not run (or
        skipped, or an error) with the reason; a check that ran to its end without a word about it
        says nothing (absent), and the runner reports it not run when no check evaluated it.
        """
        result: dict[str, RequirementOutcome] = {}
        failed = self.failed_ids()
        names = set(named)
        for rid, count in self.evaluations.items():
            outcome = Outcome.FAILED if rid in failed else Outcome.PASSED
            result[rid] = RequirementOutcome(outcome, count)
        for rid, reason in self.skips.items():
            if rid not in failed:
                result[rid] = RequirementOutcome(Outcome.SKIPPED, self.evaluations.get(rid, 0), reason)
        unfinished = self._ended_early(stopped_at, skipped, broken)
        if unfinished is None:
            return result
        outcome, reason = unfinished
        for rid in names - failed - self.done:
            found = result.get(rid)
            if found is None or found.outcome is Outcome.PASSED:
                result[rid] = RequirementOutcome(outcome, self.evaluations.get(rid, 0), reason)
        return result

    @staticmethod
    def _ended_early(stopped_at: str | None, skipped: str | None, broken: str | None) -> tuple[Outcome, str] | None:
        """What a named ID the check did not finish is, and why; None when the check ran to its end."""
        if broken is not None:
            return Outcome.ERROR, broken
        if skipped is not None:
            return Outcome.SKIPPED, skipped
        if stopped_at is not None:
            return Outcome.NOT_RUN, f"not reached: the check stopped at {stopped_at}"
        return None


def unjudgeable(on: object, reads: Sequence[object]) -> str | None:
    """Why an assertion over the answer(s) `on` and the values `reads` is no evaluation, or None.

    No answer (None, an empty list, an empty Run) leaves nothing a wrong server could have got
    wrong; a value the condition reads that is None (absent, null, no instant) means its premise
    was not reached: `not before(None, None)` is true and proves nothing.
    """
    answers: Sequence[object] = on if isinstance(on, (list, tuple)) else (on,)
    if not answers or any(a is None or (isinstance(a, Mapping) and not a) for a in answers):
        return "no answer to judge"
    if any(value is None for value in reads):
        return "premise not reached (a value the assertion reads is absent)"
    return None


def gist(message: str, limit: int = 160) -> str:
    """An assertion's message, cut short: what a skipped assertion was about."""
    return message if len(message) <= limit else message[:limit] + "…"


class Example:
    """The assertions of one Hypothesis example: counted at once, failures raised together by `done()`.

    `declared`: raises for an ID the check does not declare (CheckContext passes its own).
    """

    def __init__(self, tally: Tally, declared: Callable[[str], None] | None = None) -> None:
        self._tally = tally
        self._declared = declared or (lambda requirement_id: None)
        self.problems: list[tuple[str, str]] = []
        self._sites: list[str] = []

    def expect(
        self, requirement_id: str, condition: bool, message: str, *, on: object, reads: Sequence[object] = ()
    ) -> bool:
        """As CheckContext.expect: `on` the answer(s) judged; over no answer, no evaluation (a skip)."""
        self._declared(requirement_id)
        missing = unjudgeable(on, reads)
        if missing is not None:
            self._tally.skip(requirement_id, f"{missing}: {gist(message)}")
            return False
        if condition:
            self._tally.evaluated(requirement_id)
        else:
            self.problems.append((requirement_id, message))
            self._sites.append(assertion_site())
        return condition

    def fail(self, requirement_id: str, message: str) -> Violations:
        """`raise example.fail(id, message)`: this example broke `id`; nothing else of it is judged."""
        self._declared(requirement_id)
        return Violations([*self.problems, (requirement_id, message)], [*self._sites, assertion_site()])

    def done(self) -> None:
        if self.problems:
            raise Violations(self.problems, self._sites)


def first_of(exc: BaseException, kind: type[E], *, group_notes: bool = False) -> E | None:
    """The first `kind` in what was raised: itself, or inside an exception group (Hypothesis raises
    a FlakyFailure group when a failure does not reproduce). `group_notes`: one found without notes
    of its own gets the group's (Hypothesis writes the failing example there)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_of(inner, kind, group_notes=group_notes)
            if found is not None:
                if group_notes and not getattr(found, "__notes__", None):
                    for note in getattr(exc, "__notes__", []):
                        found.add_note(note)
                return found
    return None
