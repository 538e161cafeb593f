"""The results model: what a run found, per requirement. Written as DIR/conformance.json.

The runner produces it; the report writers (HTML, JUnit, diff) read only this model, never the
runner. The JSON form is documented in docs/results-format.md; bump SCHEMA_VERSION on any
incompatible change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from conformance.catalog import Requirement

__all__ = [
    "SCHEMA_VERSION",
    "BaselineNote",
    "CheckOutcome",
    "Cleanup",
    "Evidence",
    "Exchange",
    "RequirementResult",
    "RunReport",
    "Status",
    "Verdict",
    "gate_verdict",
]

SCHEMA_VERSION = 1


class Status(StrEnum):
    """A requirement's status. Kept apart on purpose: a skip is not a pass, an error is the suite's."""

    PASSED = "passed"
    FAILED = "failed"  # the server breaks a MUST (or a SHOULD under --strict)
    WARNING = "warning"  # the server breaks a SHOULD
    SKIPPED = "skipped"  # could not be checked here; the message says why
    ERROR = "error"  # the suite itself broke; says nothing about the server
    BASELINED = "baselined"  # failed, but listed in the --baseline file
    NOT_RUN = "not_run"  # not selected


class CheckOutcome(StrEnum):
    """What one check found for one requirement, before the level is applied."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def rank(self) -> int:
        # Outcomes only escalate when several checks speak for one requirement.
        return _RANK[self]


_RANK = {CheckOutcome.PASSED: 0, CheckOutcome.SKIPPED: 1, CheckOutcome.FAILED: 2, CheckOutcome.ERROR: 3}


class Verdict(StrEnum):
    CONFORMANT = "conformant"  # exit 0
    NOT_CONFORMANT = "not_conformant"  # exit 1
    UNREACHABLE = "unreachable"  # exit 3: server unreachable or not a Runs API


@dataclass
class Exchange:
    """One HTTP exchange, as recorded: Authorization redacted, large bodies truncated."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str]
    response_body: str | None
    elapsed_ms: float
    error: str | None = None
    curl: str = ""


@dataclass
class Evidence:
    """Why a check failed: its message and the exchanges that show it."""

    check: str
    message: str
    exchanges: list[Exchange] = field(default_factory=list)
    falsifying_example: str | None = None


@dataclass
class RequirementResult:
    id: str
    level: str
    area: str
    statement: str
    citation: str
    status: Status
    message: str = ""
    duration_s: float = 0.0
    checks: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    rerun: str = ""  # the one-line command that reruns just this requirement
    baseline_entry: str = ""  # a --baseline entry ready to paste, for a new failure

    @classmethod
    def of(cls, requirement: Requirement, status: Status, message: str = "") -> RequirementResult:
        """A result row carrying the catalog's words for `requirement`."""
        return cls(
            id=requirement.id,
            level=requirement.level.value,
            area=requirement.area,
            statement=requirement.statement,
            citation=requirement.citation,
            status=status,
            message=message,
        )


@dataclass
class Cleanup:
    """The cleanup phase, reported on its own: never a failure of a check."""

    runs_started: int = 0
    runs_cancelled: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class BaselineNote:
    """One --baseline entry as this run found it (see conformance/baseline.py).

    state: "applied" (it covered a failure), "expired" (past its date: it covers nothing),
    "passing" (the requirement passes now: remove the entry), or "unused" (the requirement did
    not fail here: warning, skipped, not run or a suite error). Expired and passing are stale.
    """

    id: str
    reason: str
    expires: str  # ISO date
    state: str
    issue: str | None = None
    message: str = ""

    @property
    def stale(self) -> bool:
        return self.state in {"expired", "passing"}


@dataclass
class RunReport:
    verdict: Verdict
    exit_code: int
    reason: str  # one line: why this verdict
    suite_version: str
    spec_version: str
    spec_sha256: str
    base_url: str
    profile: str
    strict: bool
    seed: int
    command: str  # the command that replays this run
    started_at: str
    duration_s: float
    requirements: list[RequirementResult]
    cleanup: Cleanup = field(default_factory=Cleanup)
    session_client_id: str = ""
    schema_version: int = SCHEMA_VERSION
    baseline_file: str = ""  # the --baseline file applied, if any
    baseline: list[BaselineNote] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        result = {status.value: 0 for status in Status}
        for req in self.requirements:
            result[req.status.value] += 1
        return result

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = self.counts()
        result: dict[str, Any] = json.loads(json.dumps(data, default=_enum_value))
        return result

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"results schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        reqs = [
            RequirementResult(
                **{
                    **r,
                    "status": Status(r["status"]),
                    "evidence": [
                        Evidence(**{**e, "exchanges": [Exchange(**x) for x in e["exchanges"]]}) for e in r["evidence"]
                    ],
                }
            )
            for r in data["requirements"]
        ]
        fields = {
            k: v for k, v in data.items() if k not in {"requirements", "cleanup", "counts", "verdict", "baseline"}
        }
        return cls(
            **fields,
            verdict=Verdict(data["verdict"]),
            requirements=reqs,
            cleanup=Cleanup(**data["cleanup"]),
            baseline=[BaselineNote(**n) for n in data.get("baseline", [])],
        )

    @classmethod
    def read(cls, path: Path) -> RunReport:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def gate_verdict(
    report: RunReport, strict: bool | None = None, *, interrupted: bool = False
) -> tuple[Verdict, int, str]:
    """The verdict, exit code and one-line reason that the report's statuses call for.

    The one place the gate is decided. Unreachable stays unreachable (exit 3). Otherwise the run
    fails (exit 1) on any failed requirement, any suite error (a broken check proves nothing either
    way, so it cannot pass a gate), an interrupted run, no requirement checked at all, or, under
    strict, a stale baseline entry.
    """
    if report.verdict is Verdict.UNREACHABLE:
        return report.verdict, 3, report.reason
    strict = report.strict if strict is None else strict
    counts = report.counts()
    problems: list[str] = []
    if counts[Status.FAILED]:
        must = sum(1 for r in report.requirements if r.status is Status.FAILED and r.level == "MUST")
        detail = f" ({must} MUST)" if must else ""
        problems.append(f"{_plural(counts[Status.FAILED], 'requirement')} failed{detail}")
    if counts[Status.ERROR]:
        problems.append(
            f"{_plural(counts[Status.ERROR], 'requirement')} could not be checked: the suite itself broke, "
            "which says nothing about the server"
        )
    if interrupted:
        problems.append("the run was interrupted before every check ran")
    stale = [n for n in report.baseline if n.stale]
    if strict and stale:
        problems.append(f"{_plural(len(stale), 'stale baseline entry', 'stale baseline entries')} (--strict)")
    checked = sum(counts[s] for s in (Status.PASSED, Status.FAILED, Status.WARNING, Status.BASELINED))
    if not checked and not counts[Status.ERROR]:
        problems.append("no requirement was checked")
    if problems:
        return Verdict.NOT_CONFORMANT, 1, "; ".join(problems)
    extras = []
    if counts[Status.WARNING]:
        extras.append(_plural(counts[Status.WARNING], "SHOULD warning"))
    if counts[Status.BASELINED]:
        extras.append(f"{counts[Status.BASELINED]} baselined")
    if counts[Status.SKIPPED]:
        extras.append(f"{counts[Status.SKIPPED]} skipped")
    if stale:
        extras.append(_plural(len(stale), "stale baseline entry", "stale baseline entries"))
    tail = f" ({', '.join(extras)})" if extras else ""
    head = "no failure outside the baseline" if counts[Status.BASELINED] else "every checked requirement passed"
    return Verdict.CONFORMANT, 0, head + tail


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _enum_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")
