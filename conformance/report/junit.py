"""DIR/junit.xml: one testcase per requirement, so CI systems list them in their test views.

Mapping (docs/ci-gate.md):
- one <testsuite> per area; classname = area, name = "ID: statement";
- passed → a plain testcase; failed → <failure> with the evidence (exchanges, curl, rerun);
- error (the suite broke) → <error>;
- skipped → <skipped message=reason>;
- warning (a SHOULD broken) → a passing testcase whose <system-out> starts with "WARNING":
  CI test views have no warning state, and a red test with a green exit code would mislead;
  under --strict the runner already made it a failure;
- baselined → <skipped message="baselined: reason"> with the evidence in <system-out>: an
  accepted failure, which must not look green;
- not_run (selected, but nothing evaluated it: not reached, cut by --deadline) → <skipped
  message="not run: reason">: never a pass;
- not_selected → omitted.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.report._common import evidence_text, sorted_areas
from conformance.results import RequirementResult, RunReport, Status

__all__ = ["render_junit", "write_junit"]

# Characters XML 1.0 cannot carry at all; a hostile server can put them in a body.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MESSAGE_LIMIT = 1000


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text)


def _message(text: str) -> str:
    line = " ".join(text.split())
    return _clean(line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 1] + "…")


def _testcase(parent: ET.Element, req: RequirementResult) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        classname=req.area,
        name=_clean(f"{req.id}: {req.statement}"),
        time=f"{req.duration_s:.3f}",
    )
    summary = req.message or req.statement
    if req.status is Status.FAILED:
        node = ET.SubElement(case, "failure", message=_message(summary), type=f"{req.level} failed")
        node.text = _clean(evidence_text(req))
    elif req.status is Status.ERROR:
        node = ET.SubElement(case, "error", message=_message(summary), type="suite error")
        node.text = _clean(evidence_text(req))
    elif req.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=_message(req.message or "skipped"))
    elif req.status is Status.NOT_RUN:
        ET.SubElement(case, "skipped", message=_message(f"not run: {req.message}"))
    elif req.status is Status.BASELINED:
        ET.SubElement(case, "skipped", message=_message(f"baselined: {req.message}"))
        ET.SubElement(case, "system-out").text = _clean(evidence_text(req))
    elif req.status is Status.WARNING:
        out = ET.SubElement(case, "system-out")
        out.text = _clean(f"WARNING: {req.level} requirement not met: {summary}\n\n{evidence_text(req)}")


def render_junit(report: RunReport) -> bytes:
    counted = [r for r in report.requirements if r.status is not Status.NOT_SELECTED]
    root = ET.Element("testsuites", name="runs-conformance", time=f"{report.duration_s:.3f}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for area in sorted_areas(report):
        reqs = [r for r in counted if r.area == area]
        if not reqs:
            continue
        stats = {
            "tests": len(reqs),
            "failures": sum(r.status is Status.FAILED for r in reqs),
            "errors": sum(r.status is Status.ERROR for r in reqs),
            "skipped": sum(r.status in {Status.SKIPPED, Status.NOT_RUN, Status.BASELINED} for r in reqs),
        }
        for key, value in stats.items():
            totals[key] += value
        attrs = {
            "name": area,
            **{k: str(v) for k, v in stats.items()},
            "timestamp": report.started_at,
            "time": f"{sum(r.duration_s for r in reqs):.3f}",
        }
        suite = ET.SubElement(root, "testsuite", attrs)
        props = ET.SubElement(suite, "properties")
        for prop, text in (
            ("base_url", report.base_url),
            ("suite_version", report.suite_version),
            ("spec_version", report.spec_version),
            ("spec_sha256", report.spec_sha256),
            ("profile", report.profile),
            ("seed", str(report.seed)),
            ("verdict", report.verdict.value),
            ("command", report.command),
            ("coverage", report.coverage.summary() if report.coverage.responses else ""),
        ):
            ET.SubElement(props, "property", name=prop, value=_clean(text))
        for req in reqs:
            _testcase(suite, req)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write_junit(report: RunReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_junit(report))
    return path
