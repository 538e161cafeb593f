"""Baselines: known failures and gaps a team accepts for a while, with a reason and an expiry date.

A baseline file is YAML, a list of entries, each naming the one status it accepts:

    - id: PAGE-008
      accepts: failed                          # this failure, and only with these findings
      fingerprints: [3f9c0d2a41b7e655]
      reason: cursors are not bound to filters yet
      issue: https://example.com/tracker/123   # optional
      expires: 2027-01-31
    - id: IDEM-007
      accepts: skipped                         # or not_run: a requirement this run cannot verify
      reason: our CI has one token
      expires: 2027-01-31

Applying it to a report:
- a requirement whose status is the one its entry in force accepts becomes BASELINED: it no longer
  fails the gate (a skipped or not-run MUST otherwise makes a run incomplete);
- `accepts: failed` needs fingerprints, and accepts a failure only when it has findings and each one
  is listed: a new defect of the same requirement (another fingerprint) still fails, reported as
  outgrown;
- any other status is not accepted and the entry is reported as outgrown: an entry written for a
  skip does not hide a failure, and one written for a failure does not hide the requirement being
  cut by --deadline (not_run) or skipped;
- an entry past its date covers nothing: the failure stays FAILED (an exemption that lapses
  silently is no exemption), and the entry is reported as expired;
- an entry whose requirement now passes is reported as passing: delete it;
- expired and passing entries are stale; under --strict a stale entry fails the run;
- every failure left, and every MUST left unverified, gets `baseline_entry`, an entry ready to paste.

An entry without `accepts` (files written before it existed) is refused with a one-line error that
says how to write it: what it meant cannot be told from the file (the old format accepted any of the
three), and guessing would bring back the gap the field closes.

`response:<operationId>:<status>` entries (for --require-coverage) accept one thing, a documented
response never observed, and take no `accepts`.

Suite errors are never baselined: they say nothing about the server, and hiding them would hide
a broken suite.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.catalog import catalog
from conformance.gate import gate_verdict, unverified
from conformance.results import (
    RESPONSE_KEY,
    BaselineNote,
    RequirementResult,
    ResponseCoverage,
    RunReport,
    Status,
    response_key,
)

__all__ = [
    "DEFAULT_EXPIRY_DAYS",
    "Baseline",
    "BaselineEntry",
    "apply_baseline",
    "baseline_entry_for",
    "gate_verdict",
    "load_baseline",
]

DEFAULT_EXPIRY_DAYS = 90  # the expiry a pasted entry proposes
# What an entry in force may accept, one per entry: a failure, or a requirement this run could not verify.
_ACCEPTABLE = (Status.FAILED, Status.SKIPPED, Status.NOT_RUN)
_ACCEPTS_VALUES = ", ".join(s.value for s in _ACCEPTABLE)
_KEYS = {"id", "accepts", "reason", "issue", "expires", "fingerprints"}
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class BaselineEntry:
    id: str
    reason: str
    expires: dt.date
    # The one status it accepts; None for a response:<operationId>:<status> entry (never observed).
    accepts: Status | None = None
    issue: str | None = None
    fingerprints: tuple[str, ...] = ()  # accepts failed: the findings accepted (never empty then)


@dataclass(frozen=True)
class Baseline:
    entries: tuple[BaselineEntry, ...]
    source: str = ""

    def get(self, req_id: str) -> BaselineEntry | None:
        for entry in self.entries:
            if entry.id == req_id:
                return entry
        return None


def _parse_date(value: object, where: str) -> dt.date:
    # YAML reads an unquoted 2027-01-31 as a date already; a quoted one arrives as a string.
    if isinstance(value, dt.datetime):
        raise ValueError(f"{where}: expires must be a date like 2027-01-31, not a date and time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{where}: expires must be a date like 2027-01-31, got {value!r}")


def _parse_entry(index: int, raw: object, known: set[str], source: str) -> BaselineEntry:
    where = f"{source}: entry {index + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with id, reason and expires")
    req_id = raw.get("id")
    if not isinstance(req_id, str) or not req_id.strip():
        raise ValueError(f"{where}: missing id")
    req_id = req_id.strip()
    where = f"{source}: {req_id}"
    if req_id not in known and not RESPONSE_KEY.match(req_id):
        raise ValueError(
            f"{where}: no such requirement in the catalog, nor a documented response (response:<operationId>:<status>)"
        )
    unknown = sorted(set(map(str, raw)) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{where}: missing reason (say why this failure is accepted)")
    if "expires" not in raw:
        raise ValueError(f"{where}: missing expires (a date like 2027-01-31)")
    issue = raw.get("issue")
    if issue is not None and (not isinstance(issue, str) or not issue.strip()):
        raise ValueError(f"{where}: issue must be a link or text, got {issue!r}")
    fingerprints = raw.get("fingerprints", [])
    if not isinstance(fingerprints, list) or not all(
        isinstance(f, str) and _FINGERPRINT.match(f) for f in fingerprints
    ):
        raise ValueError(f"{where}: fingerprints must be a list of 16-hex-digit fingerprints from a report")
    accepts = _parse_accepts(raw, req_id, tuple(fingerprints), where)
    return BaselineEntry(
        id=req_id,
        reason=" ".join(reason.split()),
        expires=_parse_date(raw["expires"], where),
        accepts=accepts,
        issue=issue.strip() if isinstance(issue, str) else None,
        fingerprints=tuple(fingerprints),
    )


def _parse_accepts(raw: dict[Any, Any], req_id: str, fingerprints: tuple[str, ...], where: str) -> Status | None:
    """The status an entry accepts, checked against its fingerprints; None for a response entry."""
    if RESPONSE_KEY.match(req_id):
        if "accepts" in raw or fingerprints:
            raise ValueError(
                f"{where}: a response entry accepts only that it is never observed: drop accepts and fingerprints"
            )
        return None
    if "accepts" not in raw:
        # Files from before `accepts` existed: say how to write the line, since the old entry accepted
        # any of the three and its meaning cannot be recovered from it.
        hint = "accepts: failed (keeping its fingerprints)" if fingerprints else f"accepts: one of {_ACCEPTS_VALUES}"
        raise ValueError(
            f"{where}: the entry must say which status it accepts ({_ACCEPTS_VALUES}); add `{hint}`, "
            "or regenerate it from a new run's report (conformance.json: requirements[].baseline_entry)"
        )
    value = raw["accepts"]
    accepts = next((s for s in _ACCEPTABLE if s.value == value), None)
    if accepts is None:
        raise ValueError(f"{where}: accepts must be one of {_ACCEPTS_VALUES}, got {value!r}")
    if accepts is Status.FAILED and not fingerprints:
        raise ValueError(
            f"{where}: accepts: failed needs the fingerprints of the findings it accepts "
            "(conformance.json: the failure's evidence, or its baseline_entry)"
        )
    if accepts is not Status.FAILED and fingerprints:
        raise ValueError(
            f"{where}: fingerprints belong to accepts: failed; a {accepts.value} requirement has no findings"
        )
    return accepts


def parse_baseline(text: str, source: str = "baseline") -> Baseline:
    """Parse baseline YAML; ValueError with a one-line message on anything wrong."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{source}: not valid YAML{at}") from None
    except ValueError as exc:  # PyYAML reads 2027-13-01 as a timestamp and rejects it itself
        raise ValueError(f"{source}: expires must be a date like 2027-01-31 ({exc})") from None
    if data is None:
        return Baseline((), source)
    if not isinstance(data, list):
        raise ValueError(f"{source}: must be a YAML list of entries (- id: …, reason: …, expires: …)")
    known = set(catalog())
    entries = [_parse_entry(i, raw, known, source) for i, raw in enumerate(data)]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise ValueError(f"{source}: {entry.id} is listed twice")
        seen.add(entry.id)
    return Baseline(tuple(entries), source)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; ValueError with a one-line message on anything wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"{path}: cannot read the baseline file: {reason}") from None
    return parse_baseline(text, str(path))


def _yaml_scalar(text: str) -> str:
    # A one-line, quoted YAML scalar: safe for any message a server provoked.
    dumped: str = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=10_000)
    return dumped.strip().removesuffix("...").strip()


def baseline_entry_for(result: RequirementResult, today: dt.date | None = None) -> str:
    """A --baseline entry for this failure, ready to paste: edit the reason, add the issue."""
    today = today or dt.date.today()
    expires = today + dt.timedelta(days=DEFAULT_EXPIRY_DAYS)
    first_line = (result.message or result.statement).strip().splitlines()
    summary = first_line[0] if first_line else result.statement
    if len(summary) > 160:
        summary = summary[:157] + "..."
    status = Status(result.baselined_status or Status.FAILED) if result.status is Status.BASELINED else result.status
    found = sorted({e.fingerprint for e in result.evidence if e.fingerprint})
    lines = [f"- id: {result.id}", f"  accepts: {status.value}"]
    if status is Status.FAILED:
        # A failure is accepted by its findings; one whose findings carry none cannot be (the entry says so).
        note = "only these findings: a new one still fails" if found else "none: no entry can accept this failure"
        lines.append(f"  fingerprints: [{', '.join(found)}]   # {note}")
    lines += [
        f"  reason: {_yaml_scalar('accepted for now: ' + summary)}",
        "  # issue: https://…   (optional: where the fix is tracked)",
        f"  expires: {expires.isoformat()}",
    ]
    return "\n".join(lines) + "\n"


def _accept_response(entry: BaselineEntry, response: ResponseCoverage, today: dt.date) -> BaselineNote:
    """An entry accepting that a documented response is never observed (for --require-coverage)."""
    what = f"{response.operation} {response.status}"
    response.accepted = ""
    if entry.expires < today:
        return _note(entry, "expired", f"expired on {entry.expires.isoformat()}: it no longer accepts {what} unseen")
    if response.observed:
        return _note(entry, "passing", f"{what} was observed {response.observed} times: delete the entry")
    response.accepted = entry.reason
    return _note(entry, "applied", f"accepts that {what} is never observed, until {entry.expires.isoformat()}")


def _outgrown(entry: BaselineEntry, status: Status, result: RequirementResult) -> str:
    """Why the entry does not accept this status of its requirement; empty when it does."""
    shown = status.value.replace("_", " ")
    if status is not entry.accepts:
        assert entry.accepts is not None
        return (
            f"{entry.id} is {shown}, but the entry accepts {entry.accepts.value.replace('_', ' ')} only: "
            f"not accepted (write an entry for what happens now, if it is to be accepted)"
        )
    if status is not Status.FAILED:
        return ""
    found = {e.fingerprint for e in result.evidence if e.fingerprint}
    if not found:
        return f"{entry.id} fails with findings that carry no fingerprint: the entry cannot tell them from a new defect"
    unlisted = sorted(found - set(entry.fingerprints))
    if unlisted:
        return f"{entry.id} fails with findings the entry does not list: {', '.join(unlisted)}"
    return ""


def _note(entry: BaselineEntry, state: str, message: str) -> BaselineNote:
    return BaselineNote(entry.id, entry.reason, entry.expires.isoformat(), state, entry.issue, message)


def _run_date(report: RunReport) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(report.started_at).date()
    except (TypeError, ValueError):
        return None


def apply_baseline(
    report: RunReport, baseline: Baseline | Path | None, strict: bool, today: dt.date | None = None
) -> None:
    """Apply a baseline to `report` in place and recompute its verdict and exit code.

    Pass None to apply no baseline: the failures still get their paste-ready entries.
    """
    today = today or _run_date(report) or dt.date.today()
    if isinstance(baseline, Path):
        baseline = load_baseline(baseline)
    notes: list[BaselineNote] = []
    by_id = {r.id: r for r in report.requirements}
    responses = {response_key(r.operation, r.status): r for r in report.coverage.responses if r.documented}
    for entry in baseline.entries if baseline else ():
        if RESPONSE_KEY.match(entry.id):
            found = responses.get(entry.id)
            notes.append(
                _accept_response(entry, found, today)
                if found is not None
                else _note(
                    entry, "unused", f"this run's spec documents no response {entry.id.removeprefix('response:')}"
                )
            )
            continue
        result = by_id.get(entry.id)
        status = result.status if result else Status.NOT_SELECTED
        if result is not None and status is Status.BASELINED:
            status = Status(result.baselined_status or Status.FAILED)
        if entry.expires < today:
            message = f"expired on {entry.expires.isoformat()}: it no longer covers {entry.id}"
            if status is Status.PASSED:
                message += ", which passes now: delete the entry"
            elif status is Status.FAILED:
                message += ", which still fails: fix it, or renew the entry with a reason"
            elif status in _ACCEPTABLE:
                message += f", which is still {status.value.replace('_', ' ')}: renew the entry, or verify it"
            notes.append(_note(entry, "expired", message))
        elif status is Status.PASSED:
            notes.append(_note(entry, "passing", f"{entry.id} passes now: delete the entry"))
        elif status in _ACCEPTABLE and result is not None and (why := _outgrown(entry, status, result)):
            notes.append(_note(entry, "outgrown", why))
        elif status in _ACCEPTABLE:
            assert result is not None
            what = "failure" if status is Status.FAILED else f"{status.value.replace('_', ' ')} requirement"
            result.baselined_status = status.value
            result.status = Status.BASELINED
            result.baseline_entry = ""
            notes.append(_note(entry, "applied", f"covers this {what} until {entry.expires.isoformat()}"))
        else:
            notes.append(_note(entry, "unused", f"{entry.id} did not fail in this run ({status.value})"))
    # An expired entry no longer covers a failure that an earlier application baselined.
    expired = {n.id for n in notes if n.state == "expired"}
    for result in report.requirements:
        if result.id in expired and result.status is Status.BASELINED:
            result.status = Status(result.baselined_status or Status.FAILED)
            result.baselined_status = ""
        if result.status is Status.FAILED and not result.baseline_entry:
            result.baseline_entry = baseline_entry_for(result, today)
    for result in unverified(report, strict or report.strict):
        if result.status is not Status.ERROR and not result.baseline_entry:
            result.baseline_entry = baseline_entry_for(result, today)
    report.baseline = notes
    report.baseline_file = baseline.source if baseline else ""
    report.strict = report.strict or strict
    report.verdict, report.exit_code, report.reason = gate_verdict(report, strict)
