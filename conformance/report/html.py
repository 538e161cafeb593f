"""DIR/conformance.html: one self-contained page that a person who did not run the suite can read.

Rendered with Jinja2 from the template shipped in this package, autoescape on: exchanges are
server output and may be hostile. CSS and script are inline, and a Content-Security-Policy with
their hashes lets nothing else run or load, even if something slipped past the escaping. The page
reads in full without script; the filters are an enhancement.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from conformance.report._common import STATUS_ORDER, sorted_areas
from conformance.report.timeline import timeline_svg
from conformance.results import (
    BaselineNote,
    RequirementResult,
    ResponseCoverage,
    RunReport,
    Status,
    TimelineEntry,
    Verdict,
)

__all__ = ["render_html", "write_html"]

_TEMPLATES = resources.files("conformance.report") / "templates"
_RFC = re.compile(r"RFC\s?(\d{3,5})(?:\s*§\s*(\d+(?:\.\d+)*))?")
_LEVELS = ("MUST", "SHOULD", "MAY")
_DETAILED = (Status.FAILED, Status.ERROR, Status.WARNING, Status.BASELINED)

STATUS_LABEL = {
    Status.PASSED: "passed",
    Status.FAILED: "failed",
    Status.WARNING: "warning",
    Status.SKIPPED: "skipped",
    Status.ERROR: "error",
    Status.BASELINED: "baselined",
    Status.NOT_RUN: "not run",
    Status.NOT_SELECTED: "not selected",
}
VERDICT_TITLE = {
    Verdict.CONFORMANT: "Conformant",
    Verdict.NOT_CONFORMANT: "Not conformant",
    Verdict.INCOMPLETE: "Incomplete",
    Verdict.UNREACHABLE: "Unreachable",
}
WHY = {
    "MUST": "the contract requires it; a server that breaks it is not conformant.",
    "SHOULD": "the contract recommends it; breaking it is a warning, and a failure under --strict.",
    "MAY": "the contract allows it; informational.",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.tests["safe_link"] = _safe_link
    return env


def _safe_link(value: object) -> bool:
    """Only plain http(s) links become hrefs; anything else (javascript:, data:) stays text."""
    return isinstance(value, str) and re.fullmatch(r"https?://[^\s\"'<>]+", value) is not None


def _breakable(text: str) -> Markup:
    # Spec locations are long dotted paths: let them wrap after a dot or a slash.
    return Markup("<wbr>").join(escape(part) for part in re.split(r"(?<=[./])", text))


def _cite(citation: str) -> Markup:
    """The citation, with each RFC reference linked to its section at rfc-editor.org (a plain link)."""
    out: list[str] = []
    last = 0
    for match in _RFC.finditer(citation):
        out.append(_breakable(citation[last : match.start()]))
        number, section = match.group(1), match.group(2)
        href = f"https://www.rfc-editor.org/rfc/rfc{number}" + (f"#section-{section}" if section else "")
        out.append(Markup('<a href="{}" rel="noreferrer noopener">{}</a>').format(href, match.group(0)))
        last = match.end()
    out.append(_breakable(citation[last:]))
    return Markup("").join(out)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _details(report: RunReport) -> list[RequirementResult]:
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    picked = [r for r in report.requirements if r.status in _DETAILED]
    return sorted(picked, key=lambda r: order[r.status])  # stable: catalog order within a status


@dataclass
class _Matrix:
    operations: list[str]
    statuses: list[str]
    cells: dict[tuple[str, str], ResponseCoverage]


def _matrix(report: RunReport) -> _Matrix:
    """The coverage's responses as operations × status codes, documented operations first, in spec order."""
    responses = report.coverage.responses
    operations = list(
        dict.fromkeys([r.operation for r in responses if r.documented] + [r.operation for r in responses])
    )
    statuses = sorted({r.status for r in responses}, key=lambda code: (len(code), code))
    return _Matrix(operations, statuses, {(r.operation, r.status): r for r in responses})


def _timeline(entries: list[TimelineEntry]) -> Markup:
    """A concurrency finding's operations as inline SVG (report/timeline.py escapes every text in it)."""
    return Markup(timeline_svg(entries, {e.index for e in entries if e.highlight}, 0.0))


def render_html(report: RunReport) -> str:
    style = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    script = (_TEMPLATES / "report.js").read_text(encoding="utf-8")
    if "</" in script or "</" in style:
        raise ValueError("the inline script and style must not contain '</'")
    csp = (
        "default-src 'none'; "
        f"style-src '{_sha256(style)}'; script-src '{_sha256(script)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    areas = sorted_areas(report)
    by_area = {a: dict.fromkeys(STATUS_ORDER, 0) for a in areas}
    by_level = {lv: dict.fromkeys(STATUS_ORDER, 0) for lv in _LEVELS}
    for req in report.requirements:
        by_area[req.area][req.status] += 1
        by_level.setdefault(req.level, dict.fromkeys(STATUS_ORDER, 0))[req.status] += 1
    details = _details(report)
    notes: dict[str, BaselineNote] = {n.id: n for n in report.baseline}
    template = _environment().get_template("report.html.j2")
    return template.render(
        r=report,
        verdict_title=VERDICT_TITLE[report.verdict],
        statuses=STATUS_ORDER,
        status_label=STATUS_LABEL,
        counts={s: sum(1 for q in report.requirements if q.status is s) for s in STATUS_ORDER},
        areas=areas,
        levels=[lv for lv in by_level if any(by_level[lv].values())],
        by_area=by_area,
        by_level=by_level,
        details=details,
        problem_groups=[
            (s, [q for q in details if q.status is s]) for s in _DETAILED if any(q.status is s for q in details)
        ],
        detailed={q.id for q in details},
        notes=notes,
        why=WHY,
        cite=_cite,
        timeline=_timeline,
        matrix=_matrix(report),
        duration=_duration,
        csp=csp,
        style=Markup(style),
        script=Markup(script),
    )


def write_html(report: RunReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
