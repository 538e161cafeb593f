"""`runs-conformance diff OLD.json NEW.json`: what changed between two runs, as a release gate.

Failing means failed or error (a check that broke proves nothing, so it cannot pass a gate).
Warnings and baselined failures are not failing: the run that produced them already decided
they do not gate. A new failure is a requirement failing in NEW that was not failing in OLD,
including one that OLD did not have (a suite upgrade that adds a requirement the server breaks),
or one failing in both with a finding whose fingerprint OLD did not have: a new defect, not a new
seed (two runs of one faulty server with different seeds find the same fingerprints).

Exit codes: 0 no new failures, 1 new failures, 2 usage error (unreadable or invalid file), whatever
the format: text, JSON, or Markdown for a pull request comment (`--format markdown`, cut to fit
GitHub's limit for a comment).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from conformance.report.markdown import code, escape, first_line, table
from conformance.results import Evidence, RequirementResult, RunReport, Status

__all__ = [
    "COMMENT_LIMIT",
    "Change",
    "ReportDiff",
    "add_arguments",
    "diff_reports",
    "format_diff",
    "format_markdown",
    "main",
    "run",
]

FAILING = frozenset({Status.FAILED, Status.ERROR})
NOT_VERIFIED = frozenset({Status.NOT_RUN, Status.SKIPPED})
_NEWLY_PASSING_FROM = frozenset({Status.FAILED, Status.ERROR, Status.WARNING, Status.BASELINED})


@dataclass(frozen=True)
class Change:
    id: str
    statement: str
    old: Status | None  # None: not in OLD
    new: Status | None  # None: not in NEW
    message: str = ""  # NEW's message, if any


@dataclass
class ReportDiff:
    newly_failing: list[Change] = field(default_factory=list)
    newly_passing: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)  # every other status change
    added: list[Change] = field(default_factory=list)  # in NEW only (also in newly_failing if failing)
    removed: list[Change] = field(default_factory=list)  # in OLD only
    still_failing: int = 0
    still_failing_changes: list[Change] = field(default_factory=list)  # the still_failing, one each
    newly_not_run: list[Change] = field(default_factory=list)  # not run or skipped in NEW, verified in OLD
    notes: list[str] = field(default_factory=list)  # e.g. different server or spec

    @property
    def exit_code(self) -> int:
        return 1 if self.newly_failing else 0


def _change(old: RequirementResult | None, new: RequirementResult | None, message: str | None = None) -> Change:
    some = new or old
    assert some is not None
    return Change(
        some.id,
        some.statement,
        old.status if old else None,
        new.status if new else None,
        message if message is not None else (new.message if new else ""),
    )


def _new_findings(old: RequirementResult | None, new: RequirementResult) -> list[Evidence]:
    """NEW's findings whose fingerprint OLD lacks; none when OLD had no fingerprints to compare (an older file)."""
    known = {e.fingerprint for e in old.evidence if e.fingerprint} if old is not None else set()
    if not known:
        return []
    return [e for e in new.evidence if e.fingerprint and e.fingerprint not in known]


def diff_reports(old: RunReport, new: RunReport) -> ReportDiff:
    result = ReportDiff()
    olds = {r.id: r for r in old.requirements}
    news = {r.id: r for r in new.requirements}
    for req_id in [*news, *(i for i in olds if i not in news)]:
        o, n = olds.get(req_id), news.get(req_id)
        change = _change(o, n)
        if n is None:
            result.removed.append(change)
            continue
        if o is None:
            result.added.append(change)
        if n.status in FAILING:
            fresh = _new_findings(o, n)
            if o is None or o.status not in FAILING:
                result.newly_failing.append(change)
            elif fresh:
                result.newly_failing.append(
                    _change(o, n, f"a new finding ({fresh[0].fingerprint}): {fresh[0].message}")
                )
            else:
                result.still_failing += 1
                result.still_failing_changes.append(change)
                if o.status is not n.status:
                    result.changed.append(change)
        elif o is None:
            if n.status in NOT_VERIFIED:
                result.newly_not_run.append(change)
            continue
        elif n.status is Status.PASSED and o.status in _NEWLY_PASSING_FROM:
            result.newly_passing.append(change)
        elif n.status is not o.status:
            result.changed.append(change)
            if n.status in NOT_VERIFIED and o.status not in NOT_VERIFIED:
                result.newly_not_run.append(change)
    for label, a, b in (
        ("server", old.base_url, new.base_url),
        ("suite version", old.suite_version, new.suite_version),
        ("spec version", old.spec_version, new.spec_version),
        ("spec sha256", old.spec_sha256, new.spec_sha256),
        ("profile", old.profile, new.profile),
        ("strict", str(old.strict), str(new.strict)),
    ):
        if a != b:
            result.notes.append(f"{label} differs: {a} → {b}")
    return result


def _status(s: Status | None) -> str:
    return s.value if s else "absent"


def format_diff(d: ReportDiff, old: RunReport, new: RunReport) -> str:
    lines = [
        f"OLD {old.verdict.value} ({old.started_at}, {old.base_url})",
        f"NEW {new.verdict.value} ({new.started_at}, {new.base_url})",
    ]
    lines += [f"note: {n}" for n in d.notes]

    def section(title: str, changes: list[Change], with_message: bool = False) -> None:
        lines.append("")
        lines.append(f"{title}: {len(changes)}")
        for c in changes:
            lines.append(f"  {c.id:<11} {_status(c.old)} → {_status(c.new)}  {c.statement}")
            if with_message and c.message:
                lines.append(f"  {'':<11} {c.message.splitlines()[0]}")

    section("Newly failing", d.newly_failing, with_message=True)
    section("Newly passing", d.newly_passing)
    section("Other status changes", d.changed)
    if d.added:
        section("Added requirements", d.added)
    if d.removed:
        section("Removed requirements", d.removed)
    lines.append("")
    if d.newly_failing:
        lines.append(f"GATE FAILED: {len(d.newly_failing)} new failure(s); {d.still_failing} still failing")
    else:
        lines.append(f"GATE PASSED: no new failures; {d.still_failing} still failing")
    return "\n".join(lines) + "\n"


COMMENT_LIMIT = 65_536  # GitHub's limit for the body of a comment, in characters
_FINGERPRINTS_PER_ROW = 5


def _word(status: Status | None) -> str:
    return status.value.replace("_", " ") if status else "absent"


def _fingerprints(req: RequirementResult | None, only: set[str] | None = None) -> str:
    found = list(dict.fromkeys(e.fingerprint for e in req.evidence if e.fingerprint)) if req else []
    found = [f for f in found if only is None or f in only]
    shown = ", ".join(code(f) for f in found[:_FINGERPRINTS_PER_ROW])
    return shown + (f" and {len(found) - _FINGERPRINTS_PER_ROW} more" if len(found) > _FINGERPRINTS_PER_ROW else "")


def format_markdown(
    d: ReportDiff, old: RunReport, new: RunReport, *, report_url: str | None = None, limit: int = COMMENT_LIMIT
) -> str:
    """The diff as a pull request comment: a table per kind of change, rows left out past `limit` characters."""
    olds = {r.id: r for r in old.requirements}
    news = {r.id: r for r in new.requirements}
    pointer = f"[the full report]({report_url})" if report_url else "the full report (conformance.html of this run)"
    verdict = (
        f"**{len(d.newly_failing)} new failure{'s' if len(d.newly_failing) != 1 else ''}**"
        if d.newly_failing
        else "No new failures"
    )
    head = [
        "## Runs API conformance: what this change does",
        "",
        f"{verdict}; {len(d.newly_passing)} fixed, {d.still_failing} still failing, "
        f"{len(d.newly_not_run)} newly not run. Base {_word_verdict(old)}, this change {_word_verdict(new)}; "
        f"see {pointer}.",
    ]
    head += [f"- note: {escape(n)}" for n in d.notes]

    def row(c: Change, fingerprints: str, text: str) -> list[str]:
        level = (news.get(c.id) or olds[c.id]).level
        return [f"**{c.id}**", level, _word(c.old), _word(c.new), fingerprints, escape(first_line(text, 160))]

    def new_failure(c: Change) -> list[str]:
        known = {e.fingerprint for e in olds[c.id].evidence} if c.id in olds and c.old in FAILING else set()
        fresh = {e.fingerprint for e in news[c.id].evidence if e.fingerprint not in known}
        return row(c, _fingerprints(news[c.id], fresh), c.message or c.statement)

    header = ["requirement", "level", "base", "this change", "fingerprints", "what"]
    sections = [
        ("New failures", [new_failure(c) for c in d.newly_failing]),
        ("Fixed", [row(c, _fingerprints(olds.get(c.id)), c.statement) for c in d.newly_passing]),
        ("Still failing", [row(c, _fingerprints(news.get(c.id)), c.message) for c in d.still_failing_changes]),
        ("Newly not run", [row(c, "", c.message or c.statement) for c in d.newly_not_run]),
    ]
    lines = list(head)
    budget = limit - 400  # what the note about rows left out takes, with room to spare
    size = sum(len(line) + 1 for line in lines)
    left_out = 0
    for title, rows in sections:
        if not rows:
            continue
        block = ["", f"### {title}: {len(rows)}", "", *table(header, [])]
        block_size = sum(len(line) + 1 for line in block)
        if size + block_size > budget:
            left_out += len(rows)
            continue
        lines += block
        size += block_size
        for cells in rows:
            line = table(header, [cells])[-1]
            if size + len(line) + 1 > budget:
                left_out += 1
                continue
            lines.append(line)
            size += len(line) + 1
    if left_out:
        lines += [
            "",
            f"{left_out} more rows left out to keep this comment under GitHub's {limit:,} characters: "
            f"every one is in {pointer}, or run `runs-conformance diff OLD.json NEW.json` on the two conformance.json.",
        ]
    return "\n".join(lines) + "\n"


def _word_verdict(report: RunReport) -> str:
    return report.verdict.value.replace("_", " ")


def _read(path: Path, role: str) -> RunReport:
    try:
        return RunReport.read(path)
    except OSError as exc:
        raise ValueError(f"cannot read {role} {path}: {exc.strerror or type(exc).__name__}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{role} {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{role} {path} is not a runs-conformance result file ({detail})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Compare two conformance.json files; exit 1 if NEW has failures OLD did not have."
    parser.add_argument("old", type=Path, metavar="OLD.json", help="the earlier run, e.g. the last release's")
    parser.add_argument("new", type=Path, metavar="NEW.json", help="the run to gate")
    parser.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text (default), json, or markdown: a pull request comment, cut to fit GitHub's 65,536 characters",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument(
        "--report-url", metavar="URL", help="where the full report is (a CI run's artifacts): markdown links to it"
    )


def _as_json(d: ReportDiff) -> str:
    def items(changes: list[Change]) -> list[dict[str, str | None]]:
        return [
            {"id": c.id, "old": c.old.value if c.old else None, "new": c.new.value if c.new else None} for c in changes
        ]

    data = {
        "newly_failing": items(d.newly_failing),
        "newly_passing": items(d.newly_passing),
        "changed": items(d.changed),
        "added": items(d.added),
        "removed": items(d.removed),
        "still_failing": d.still_failing,
        # The lists the text and markdown forms show: a count alone cannot say which IDs a gate carried.
        "still_failing_ids": items(d.still_failing_changes),
        "newly_not_run": items(d.newly_not_run),
        "notes": d.notes,
        "exit_code": d.exit_code,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        old = _read(args.old, "OLD")
        new = _read(args.new, "NEW")
    except ValueError as exc:
        print(f"runs-conformance diff: {exc}", file=err)
        return 2
    d = diff_reports(old, new)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        out.write(_as_json(d))
    elif fmt == "markdown":
        out.write(format_markdown(d, old, new, report_url=args.report_url))
    else:
        out.write(format_diff(d, old, new))
    return d.exit_code


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (python -m conformance.diff); the CLI registers the same subcommand."""
    parser = argparse.ArgumentParser(prog="runs-conformance diff")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
