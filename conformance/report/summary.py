"""The run's Markdown summary (`--summary FILE`, or GitHub's job summary): one glance at a run.

Read from the RunReport alone, like every writer: the verdict and why, counts by level and status,
each failed or unverified requirement on one line with its fingerprints, coverage, the baseline
entries in force (those expiring within EXPIRY_WARNING_DAYS flagged), the seed and the replay command.
Plain GFM only (tables, lists, inline code): GitHub and GitLab both strip raw HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from conformance.report._common import STATUS_ORDER, scrub
from conformance.report.markdown import code, escape, first_line, table
from conformance.results import RequirementResult, RunReport, Status, Verdict

__all__ = ["EXPIRY_WARNING_DAYS", "MAX_LINES_PER_LIST", "render_summary", "write_summary"]

EXPIRY_WARNING_DAYS = 14
# A broken server can fail most of the catalog; a job summary that long is read by no one.
MAX_LINES_PER_LIST = 50
_LEVELS = ("MUST", "SHOULD", "MAY")
_VERDICT_WORDS = {
    Verdict.CONFORMANT: "conformant",
    Verdict.NOT_CONFORMANT: "not conformant",
    Verdict.INCOMPLETE: "incomplete",
    Verdict.UNREACHABLE: "server unreachable",
}
# What each list holds, in the order they are shown: what gates first.
_LISTS: tuple[tuple[str, frozenset[Status]], ...] = (
    ("Failed", frozenset({Status.FAILED, Status.ERROR})),
    ("Warnings (SHOULD)", frozenset({Status.WARNING})),
    ("Not verified", frozenset({Status.NOT_RUN, Status.SKIPPED})),
)


def render_summary(report: RunReport, *, today: dt.date | None = None, secrets: Iterable[str] = ()) -> str:
    """The summary of `report` as Markdown; `today` (UTC by default) decides which entries expire soon."""
    clean = scrub(report, secrets)
    today = today or dt.datetime.now(dt.UTC).date()
    lines = [
        f"## Runs API conformance: {_VERDICT_WORDS.get(clean.verdict, clean.verdict.value)} (exit {clean.exit_code})",
        "",
        escape(clean.reason) if clean.reason else "",
        "",
        f"Server {code(clean.base_url)}, profile {clean.profile}{', strict' if clean.strict else ''}, "
        f"suite {clean.suite_version}, spec {escape(clean.spec_version)}, {clean.duration_s:.1f} s",
        "",
        *_counts(clean),
    ]
    for title, statuses in _LISTS:
        lines += _requirement_list(title, [r for r in clean.requirements if r.status in statuses])
    coverage = clean.coverage.summary().removeprefix("coverage: ") if clean.coverage.responses else "not measured"
    lines += ["", f"Coverage: {escape(coverage)}"]
    lines += _baseline(clean, today)
    lines += ["", f"Seed {clean.seed}; replay with:", "", "```sh", clean.command, "```", ""]
    return "\n".join(lines)


def write_summary(
    report: RunReport, path: Path, *, append: bool = False, today: dt.date | None = None, secrets: Iterable[str] = ()
) -> Path:
    """Write (or append, for GitHub's job summary file, which other steps share) the summary to `path`."""
    text = render_summary(report, today=today, secrets=secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _counts(report: RunReport) -> list[str]:
    shown = [
        s for s in STATUS_ORDER if s is not Status.NOT_SELECTED and any(r.status is s for r in report.requirements)
    ]
    if not shown:
        return ["No requirement was selected."]
    rows = []
    for level in _LEVELS:
        of_level = [r for r in report.requirements if r.level == level and r.status is not Status.NOT_SELECTED]
        if of_level:
            cells = [str(sum(1 for r in of_level if r.status is s)) for s in shown]
            rows.append([level, *cells, str(len(of_level))])
    totals = [str(sum(1 for r in report.requirements if r.status is s)) for s in shown]
    rows.append(["all", *totals, str(sum(int(t) for t in totals))])
    return table(["level", *(s.value.replace("_", " ") for s in shown), "selected"], rows)


def _requirement_line(req: RequirementResult) -> str:
    parts = [f"**{req.id}** ({req.level}, {req.status.value.replace('_', ' ')})"]
    detail = first_line(req.message) or first_line(req.statement)
    if detail:
        parts.append(escape(detail))
    fingerprints = list(dict.fromkeys(e.fingerprint for e in req.evidence if e.fingerprint))
    if fingerprints:
        parts.append("fingerprints " + ", ".join(code(f) for f in fingerprints))
    return "- " + " — ".join(parts)


def _requirement_list(title: str, reqs: list[RequirementResult]) -> list[str]:
    if not reqs:
        return []
    lines = ["", f"### {title}: {len(reqs)}", ""]
    lines += [_requirement_line(r) for r in reqs[:MAX_LINES_PER_LIST]]
    if len(reqs) > MAX_LINES_PER_LIST:
        lines.append(f"- … and {len(reqs) - MAX_LINES_PER_LIST} more: see conformance.html in the reports")
    return lines


def _baseline(report: RunReport, today: dt.date) -> list[str]:
    if not report.baseline:
        return []
    in_force = [n for n in report.baseline if n.state != "expired"]
    expired = [n for n in report.baseline if n.state == "expired"]
    lines = ["", f"### Baseline entries in force: {len(in_force)}", ""]
    rows = []
    for note in in_force:
        expires = escape(note.expires)
        try:
            left = (dt.date.fromisoformat(note.expires) - today).days
        except ValueError:
            left = None
        if left is not None and left <= EXPIRY_WARNING_DAYS:
            expires = f"**{expires}: expires in {left} day{'s' if left != 1 else ''}**"
        rows.append([note.id, escape(note.state), expires, escape(first_line(note.reason, 120))])
    if rows:
        lines += table(["requirement", "state", "expires", "reason"], rows)
    if expired:
        lines += ["", "Expired, covering nothing: " + ", ".join(f"{n.id} ({escape(n.expires)})" for n in expired)]
    return lines
