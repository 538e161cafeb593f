"""The results model: what a run found, per requirement. Written as DIR/conformance.json.

The runner produces it; the report writers (HTML, JUnit, diff) read only this model, never the
runner. The JSON form is documented in docs/results-format.md; bump SCHEMA_VERSION on any
incompatible change.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from conformance.catalog import Requirement

__all__ = [
    "RESPONSE_KEY",
    "SCHEMA_VERSION",
    "UNVERIFIED",
    "BaselineNote",
    "Cleanup",
    "Coverage",
    "Evidence",
    "Exchange",
    "HeaderCoverage",
    "RequirementResult",
    "ResponseCoverage",
    "RunReport",
    "Status",
    "TimelineEntry",
    "Verdict",
    "response_key",
]

SCHEMA_VERSION = 2  # 2: evaluations, not_selected, the incomplete verdict (version 1 files still read)


class Status(StrEnum):
    """A requirement's status. Kept apart on purpose: a skip is not a pass, an error is the suite's."""

    PASSED = "passed"  # evaluated in this run (evaluations >= 1), and nothing failed
    FAILED = "failed"  # the server breaks a MUST (or a SHOULD under --strict)
    WARNING = "warning"  # the server breaks a SHOULD
    SKIPPED = "skipped"  # could not be checked here; the message says why
    NOT_RUN = "not_run"  # selected, but nothing evaluated it: not reached, or cut by --deadline
    ERROR = "error"  # the suite itself broke; says nothing about the server
    BASELINED = "baselined"  # failed, skipped or not run, and accepted by the --baseline file
    NOT_SELECTED = "not_selected"  # left out by --select


# A requirement in one of these was selected but not verified: for a MUST (or any level under
# --strict) the run is incomplete, never green, unless a baseline entry accepts it.
UNVERIFIED = frozenset({Status.SKIPPED, Status.NOT_RUN, Status.ERROR})


class Verdict(StrEnum):
    CONFORMANT = "conformant"  # exit 0
    NOT_CONFORMANT = "not_conformant"  # exit 1: a requirement failed
    INCOMPLETE = "incomplete"  # exit 1: nothing failed, but a MUST was not verified
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
    # When the request was sent, in seconds since the epoch (None: not known, as for Schemathesis'
    # requests): what lets `observe` order a recording's exchanges in real time.
    started: float | None = None


@dataclass
class TimelineEntry:
    """One operation of a concurrent history, as a finding's timeline draws it (times in seconds from
    the history's start; completed None: no answer)."""

    index: int
    client: int
    kind: str
    invoked: float
    completed: float | None
    status: int | None
    highlight: bool = False  # one of the operations that prove the finding


@dataclass
class Evidence:
    """Why a check failed: its message and the exchanges that show it."""

    check: str
    message: str
    exchanges: list[Exchange] = field(default_factory=list)
    falsifying_example: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)  # concurrency findings: who did what when
    fingerprint: str = ""  # the defect's identity across runs and seeds (conformance/fingerprints.py)
    count: int = 1  # findings of this run with this fingerprint: this one is the first
    also_in: list[str] = field(default_factory=list)  # the other checks that met the same finding


@dataclass
class RequirementResult:
    id: str
    level: str
    area: str
    statement: str
    citation: str
    status: Status
    message: str = ""
    instance: str = ""  # from the catalog: what one evaluation of it is
    evaluations: int = 0  # assertions about it evaluated in this run; a pass has at least one
    duration_s: float = 0.0
    checks: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    rerun: str = ""  # the one-line command that reruns just this requirement
    baseline_entry: str = ""  # a --baseline entry ready to paste, for a new failure or an unverified MUST
    baselined_status: str = ""  # what a baselined requirement was before the baseline accepted it

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
            instance=requirement.instance,
        )


@dataclass
class Cleanup:
    """The cleanup phase, reported on its own: never a failure of a check."""

    runs_started: int = 0
    runs_cancelled: int = 0
    errors: list[str] = field(default_factory=list)


# How a baseline entry names a documented response it accepts never to observe.
RESPONSE_KEY = re.compile(r"^response:[A-Za-z][A-Za-z0-9_]*:[1-5][0-9][0-9]$")


def response_key(operation: str, status: str) -> str:
    return f"response:{operation}:{status}"


@dataclass
class ResponseCoverage:
    """One response: an operation (its operationId, or `METHOD /path` the spec does not declare) and a status."""

    operation: str
    status: str  # the HTTP status code, as the spec keys it ("304")
    documented: bool  # the spec documents it for this operation
    observed: int  # exchanges of this run that got it
    accepted: str = ""  # never observed, and a baseline entry accepts that: its reason


@dataclass
class HeaderCoverage:
    name: str  # a response header the spec defines (ETag, Location, WWW-Authenticate)
    seen: int  # responses of this run that carried it
    checked: int  # assertions of this run about it: the evaluations of the requirements that name it


@dataclass
class Coverage:
    """What the run exercised: the spec's documented responses, its headers, and each requirement's evaluations."""

    responses: list[ResponseCoverage] = field(default_factory=list)
    headers: list[HeaderCoverage] = field(default_factory=list)
    requirements: dict[str, int] = field(default_factory=dict)  # requirement ID -> evaluations

    def missing(self) -> list[ResponseCoverage]:
        """Documented responses never observed and not accepted by the baseline."""
        return [r for r in self.responses if r.documented and not r.observed and not r.accepted]

    def summary(self) -> str:
        """One line of totals, for the console and JUnit."""
        documented = [r for r in self.responses if r.documented]
        seen = sum(1 for r in documented if r.observed)
        extra = [r for r in self.responses if not r.documented]
        missing = self.missing()
        shown = ", ".join(f"{r.operation} {r.status}" for r in missing[:4]) + (" …" if len(missing) > 4 else "")
        parts = [f"coverage: {seen} of {len(documented)} documented responses observed"]
        if missing:
            parts.append(f"never: {shown}")
        if extra:
            parts.append(f"{len(extra)} undocumented observed")
        parts.append(", ".join(f"{h.name} seen {h.seen}, checked {h.checked}" for h in self.headers))
        return "; ".join(parts)


@dataclass
class BaselineNote:
    """One --baseline entry as this run found it (see conformance/baseline.py).

    state: "applied" (it covered a failure or an unverified requirement), "expired" (past its date:
    it covers nothing), "passing" (the requirement passes now: remove the entry), "outgrown" (the
    requirement fails with a finding whose fingerprint the entry does not list: a new defect, not
    covered), or "unused" (nothing to cover here: a warning, a suite error). Expired and passing
    are stale.
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
    coverage: Coverage = field(default_factory=Coverage)
    require_coverage: bool = False  # --require-coverage: a documented response never observed fails the gate
    disruptions: list[dict[str, Any]] = field(default_factory=list)  # --disrupt: each command run, and its window

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
        version = data.get("schema_version")
        if version not in (1, SCHEMA_VERSION):
            raise ValueError(f"results schema_version {version!r}, expected {SCHEMA_VERSION} (or 1)")
        reqs = [
            RequirementResult(
                **{
                    **r,
                    "status": _read_status(r, version),
                    "evidence": [
                        Evidence(
                            **{
                                **e,
                                "exchanges": [Exchange(**x) for x in e["exchanges"]],
                                "timeline": [TimelineEntry(**t) for t in e.get("timeline", [])],
                            }
                        )
                        for e in r["evidence"]
                    ],
                }
            )
            for r in data["requirements"]
        ]
        fields = {
            k: v
            for k, v in data.items()
            if k not in {"requirements", "cleanup", "counts", "verdict", "baseline", "schema_version", "coverage"}
        }
        coverage = data.get("coverage") or {}
        return cls(
            **fields,
            verdict=Verdict(data["verdict"]),
            requirements=reqs,
            cleanup=Cleanup(**data["cleanup"]),
            baseline=[BaselineNote(**n) for n in data.get("baseline", [])],
            coverage=Coverage(
                responses=[ResponseCoverage(**r) for r in coverage.get("responses", [])],
                headers=[HeaderCoverage(**h) for h in coverage.get("headers", [])],
                requirements=dict(coverage.get("requirements", {})),
            ),
        )

    @classmethod
    def read(cls, path: Path) -> RunReport:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def _read_status(row: dict[str, Any], version: Any) -> Status:
    # Version 1 said "not_run" for a requirement left out by --select.
    if version == 1 and row.get("status") == "not_run":
        return Status.NOT_SELECTED
    return Status(row["status"])


def _enum_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")
