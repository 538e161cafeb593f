"""junit.xml: one testcase per requirement, with the failure evidence where CI test views show it."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from conformance.baseline import apply_baseline
from conformance.report import render_junit
from conformance.report._demo import DEMO_STATUSES, demo_report
from conformance.results import BaselineNote, RunReport, Status


def parsed(report: RunReport) -> ET.Element:
    return ET.fromstring(render_junit(report))


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name", "").split(":")[0]: c for c in root.iter("testcase")}


def demo() -> RunReport:
    report = demo_report()
    apply_baseline(report, None, strict=False, today=dt.date(2026, 3, 1))
    return report


def test_one_testcase_per_requirement_that_ran() -> None:
    report = demo()
    root = parsed(report)
    ran = [r for r in report.requirements if r.status is not Status.NOT_SELECTED]
    assert list(cases(root)) == [r.id for r in ran]
    first = root.find("testsuite/testcase")
    assert first is not None
    assert first.get("classname") == "schema"
    assert first.get("name") == f"SCHEMA-001: {report.requirements[0].statement}"


def test_counts_match_the_report() -> None:
    root = parsed(demo())
    n = {s: sum(1 for v in DEMO_STATUSES.values() if v is s) for s in Status}
    assert root.get("tests") == str(len(demo_report().requirements) - n[Status.NOT_SELECTED])
    assert root.get("failures") == str(n[Status.FAILED])
    assert root.get("errors") == str(n[Status.ERROR])
    assert root.get("skipped") == str(n[Status.SKIPPED] + n[Status.NOT_RUN])
    suites = root.findall("testsuite")
    assert sum(int(s.get("tests", "0")) for s in suites) == int(root.get("tests", "0"))
    assert sum(int(s.get("failures", "0")) for s in suites) == int(root.get("failures", "0"))
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props["seed"] == "4242" and props["base_url"] == "http://127.0.0.1:8080"


def test_a_failure_carries_message_evidence_curl_and_rerun() -> None:
    failure = cases(parsed(demo()))["ERR-001"].find("failure")
    assert failure is not None
    assert failure.get("message") == "POST /api/v1/runs answered 500 to a request with an out-of-range number"
    assert failure.get("type") == "MUST failed"
    text = failure.text or ""
    assert 'curl -i -X POST -H "Authorization: Bearer $RUNS_TOKEN"' in text
    assert "rerun: runs-conformance run --base-url http://127.0.0.1:8080 --seed 4242 --select ERR-001" in text
    assert "falsifying example:" in text and "1e309" in text
    assert "< 500" in text
    assert "- id: ERR-001" in text  # the baseline entry


def test_error_skip_and_warning_mapping() -> None:
    by_id = cases(parsed(demo()))
    assert by_id["ETAG-004"].find("error") is not None
    skipped = by_id["CANCEL-004"].find("skipped")
    assert skipped is not None and "long enough" in (skipped.get("message") or "")
    warning = by_id["SCHEMA-006"]
    assert warning.find("failure") is None and warning.find("skipped") is None
    out = warning.find("system-out")
    assert out is not None and (out.text or "").startswith("WARNING: SHOULD requirement not met")
    passed = by_id["SCHEMA-001"]
    assert list(passed) == []


def test_a_baselined_failure_is_skipped_not_green() -> None:
    report = demo()
    req = next(r for r in report.requirements if r.id == "PAGE-006")
    req.status, req.message = Status.BASELINED, "the walk returned run-17 twice"
    report.baseline = [BaselineNote("PAGE-006", "known", "2026-12-31", "applied")]
    case = cases(parsed(report))["PAGE-006"]
    skipped = case.find("skipped")
    assert skipped is not None and (skipped.get("message") or "").startswith("baselined:")
    assert "run-17" in (case.findtext("system-out") or "")


def test_characters_xml_cannot_carry_do_not_break_the_file() -> None:
    report = demo()
    req = next(r for r in report.requirements if r.id == "ERR-001")
    req.message = "bad \x00\x07\x1b bytes"
    req.evidence[0].exchanges[-1].response_body = "body \x0b\x0c\ud800 end"
    failure = cases(parsed(report))["ERR-001"].find("failure")
    assert failure is not None
    assert failure.get("message") == "bad \ufffd\ufffd\ufffd bytes"
    assert "body \ufffd\ufffd\ufffd end" in (failure.text or "")
