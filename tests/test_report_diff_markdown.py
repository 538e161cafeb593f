"""`runs-conformance diff OLD NEW --format markdown`: the PR comment. Golden against reports of faulty
servers (tests/data/reports, see tests/test_report_summary.py), parsed by a real Markdown parser,
and kept under GitHub's limit for a comment.
"""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path

import pytest
from support.markdown import headings, table_rows
from support.tooling import ROOT

from conformance.cli import main
from conformance.diff import COMMENT_LIMIT, diff_reports, format_markdown
from conformance.results import Evidence, RequirementResult, RunReport, Status

DATA = ROOT / "tests" / "data" / "reports"
SNAPSHOTS = ROOT / "tests" / "snapshots"
OLD = DATA / "auth-401-without-challenge.json"
NEW = DATA / "auth-missing-token-accepted.json"


def report(path: Path) -> RunReport:
    return RunReport.read(path)


def _every_kind(old: RunReport, new: RunReport) -> tuple[RunReport, RunReport]:
    """OLD failing AUTH-004 as NEW does (same findings: still failing), NEW with AUTH-002 cut by the deadline."""
    old, new = copy.deepcopy(old), copy.deepcopy(new)
    news = {r.id: r for r in new.requirements}
    old.requirements = [copy.deepcopy(news["AUTH-004"]) if r.id == "AUTH-004" else r for r in old.requirements]
    news["AUTH-002"].status, news["AUTH-002"].message = Status.NOT_RUN, "not run: the --deadline passed first"
    return old, new


def render(old: RunReport, new: RunReport, **kwargs: object) -> str:
    return format_markdown(diff_reports(old, new), old, new, **kwargs)  # type: ignore[arg-type]


def test_the_markdown_diff_matches_its_golden_file() -> None:
    text = render(*_every_kind(report(OLD), report(NEW)), report_url="https://ci.example/run/7")
    path = SNAPSHOTS / "diff-auth.md"
    if os.environ.get("RUNS_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: RUNS_UPDATE_SNAPSHOTS=1 and read the diff"


def test_each_kind_of_change_is_a_table_with_its_fingerprints() -> None:
    old, new = _every_kind(report(OLD), report(NEW))
    text = render(old, new)
    assert [h.split(":")[0] for h in headings(text)[1:]] == ["New failures", "Fixed", "Still failing", "Newly not run"]
    rows = {row[0].strip("*"): row for row in table_rows(text)}
    auth1 = next(r for r in new.requirements if r.id == "AUTH-001")
    assert rows["AUTH-001"][1:4] == ["MUST", "passed", "failed"]
    assert all(f"`{e.fingerprint}`" in rows["AUTH-001"][4] for e in auth1.evidence)
    assert rows["AUTH-004"][2:4] == ["failed", "failed"]  # still failing: the same findings as OLD
    assert rows["AUTH-002"][2:4] == ["passed", "not run"]
    # Fixed: OLD failed AUTH-003, NEW passes it; OLD's fingerprints say which findings went away.
    assert rows["AUTH-003"][2:4] == ["failed", "passed"]
    assert "e12d99cc923a7259" in rows["AUTH-003"][4]


def test_a_huge_diff_is_cut_under_githubs_comment_limit_with_a_count_and_a_pointer() -> None:
    old, new = report(OLD), report(NEW)
    template = next(r for r in new.requirements if r.id == "AUTH-001")
    for n in range(3000):  # a suite with thousands of requirements, all newly failing, with long messages
        req: RequirementResult = copy.deepcopy(template)
        req.id, req.message = f"BIG-{n:04d}", "x" * 300
        req.evidence = [Evidence("c", "m", fingerprint=f"{n:016x}")]
        new.requirements.append(req)
    text = render(old, new, report_url="https://ci.example/run/7")
    assert len(text) <= COMMENT_LIMIT
    assert "New failures: 3002" in text  # the heading counts all of them
    rows = [row for row in table_rows(text) if row[0] != "requirement"]
    assert 0 < sum(1 for row in rows if row[0].startswith("**BIG-")) < 3000
    # 3002 new failures and AUTH-003 fixed: every row not shown is counted.
    assert f"{3003 - len(rows)} more rows left out" in text and "https://ci.example/run/7" in text


def test_the_cli_writes_markdown_and_keeps_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", str(OLD), str(NEW), "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 1  # new failures: the gate fails, whatever the format
    assert out.startswith("## ") and "New failures: 2" in out
    assert main(["diff", str(NEW), str(NEW), "--format", "markdown"]) == 0
    assert "No new failures" in capsys.readouterr().out
    # --json stays what it was.
    assert main(["diff", str(OLD), str(NEW), "--json"]) == 1
    assert json.load(io.StringIO(capsys.readouterr().out))["exit_code"] == 1
