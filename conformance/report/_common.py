"""What every report writer shares: a last redaction pass, and evidence as plain text."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable

from conformance.redaction import redact_headers, redact_text
from conformance.results import Evidence, Exchange, RequirementResult, RunReport, Status

__all__ = ["STATUS_ORDER", "evidence_text", "scrub", "sorted_areas"]

# Worst first: the order of the counts tables and of the failure details.
STATUS_ORDER = (
    Status.FAILED,
    Status.ERROR,
    Status.WARNING,
    Status.BASELINED,
    Status.NOT_RUN,
    Status.SKIPPED,
    Status.PASSED,
    Status.NOT_SELECTED,
)

# A credential written into a curl line instead of a shell variable: `Authorization: Bearer abc`.
_CURL_CREDENTIAL = re.compile(r"((?:Proxy-)?Authorization:\s*[A-Za-z]+\s+)(?!\$)([^\s\"']+)", re.IGNORECASE)


def _scrub_text(text: str | None, secrets: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    return _CURL_CREDENTIAL.sub(r"\1[redacted]", redact_text(text, secrets))


def _scrub_exchange(x: Exchange, secrets: tuple[str, ...]) -> None:
    x.url = _scrub_text(x.url, secrets) or ""
    x.request_headers = redact_headers(x.request_headers, secrets)
    x.response_headers = redact_headers(x.response_headers, secrets)
    x.request_body = _scrub_text(x.request_body, secrets)
    x.response_body = _scrub_text(x.response_body, secrets)
    x.error = _scrub_text(x.error, secrets)
    x.curl = _scrub_text(x.curl, secrets) or ""


def scrub(report: RunReport, secrets: Iterable[str] = ()) -> RunReport:
    """A copy of `report` with credentials removed once more, whatever the recorder let through.

    The client redacts as it records; this pass is the writers' own guarantee: Authorization,
    Cookie and Set-Cookie values are masked in every exchange, credentials written literally in
    a curl line are masked, and any of `secrets` is replaced wherever it appears.
    """
    found = tuple(s for s in secrets if s)
    clean = copy.deepcopy(report)
    clean.command = _scrub_text(clean.command, found) or ""
    clean.reason = _scrub_text(clean.reason, found) or ""
    clean.base_url = _scrub_text(clean.base_url, found) or ""
    clean.cleanup.errors = [_scrub_text(e, found) or "" for e in clean.cleanup.errors]
    # The --disrupt command and what it printed are the user's text, which may hold a token.
    clean.disruptions = [
        {k: _scrub_text(v, found) if isinstance(v, str) else v for k, v in record.items()}
        for record in clean.disruptions
    ]
    for req in clean.requirements:
        req.message = _scrub_text(req.message, found) or ""
        req.rerun = _scrub_text(req.rerun, found) or ""
        req.baseline_entry = _scrub_text(req.baseline_entry, found) or ""
        for ev in req.evidence:
            ev.message = _scrub_text(ev.message, found) or ""
            ev.falsifying_example = _scrub_text(ev.falsifying_example, found)
            for x in ev.exchanges:
                _scrub_exchange(x, found)
            for entry in ev.timeline:
                entry.kind = _scrub_text(entry.kind, found) or ""
    return clean


def sorted_areas(report: RunReport) -> list[str]:
    """Areas in the order they first appear (the catalog's order)."""
    return list(dict.fromkeys(r.area for r in report.requirements))


def _exchange_text(x: Exchange) -> str:
    lines = [f"> {x.method} {x.url}"]
    lines += [f"> {k}: {v}" for k, v in x.request_headers.items()]
    if x.request_body:
        lines += ["", x.request_body]
    if x.error:
        lines.append(f"! {x.error}")
    if x.status is not None:
        lines.append(f"< {x.status}  ({x.elapsed_ms:.0f} ms)")
        lines += [f"< {k}: {v}" for k, v in x.response_headers.items()]
        if x.response_body:
            lines += ["", x.response_body]
    if x.curl:
        lines += ["", f"reproduce: {x.curl}"]
    return "\n".join(lines)


def _one_evidence(ev: Evidence) -> str:
    parts = [f"[{ev.check}] {ev.message}"]
    if ev.fingerprint:
        more = f"; {ev.count} findings like it in this run" if ev.count > 1 else ""
        more += f", also met by {', '.join(ev.also_in)}" if ev.also_in else ""
        parts.append(f"fingerprint {ev.fingerprint}{more}")
    if ev.falsifying_example:
        parts += ["falsifying example:", ev.falsifying_example]
    for i, x in enumerate(ev.exchanges, 1):
        parts += [f"--- exchange {i} of {len(ev.exchanges)}", _exchange_text(x)]
    return "\n".join(parts)


def evidence_text(req: RequirementResult) -> str:
    """A requirement's failure as plain text: for JUnit and terminals."""
    parts = [
        f"{req.id} ({req.level}, {req.area}): {req.statement}",
        f"citation: {req.citation}",
        f"status: {req.status.value}" + (f": {req.message}" if req.message else ""),
    ]
    if req.rerun:
        parts.append(f"rerun: {req.rerun}")
    parts += [_one_evidence(ev) for ev in req.evidence]
    if req.baseline_entry:
        parts += ["to accept this failure for now, add to the --baseline file:", req.baseline_entry.rstrip()]
    return "\n".join(parts)
