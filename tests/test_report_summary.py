"""The run's Markdown summary (`--summary`, GitHub's job summary): golden against reports of faulty
servers, and parsed by a real Markdown parser so its tables are tables.

The reports are tests/data/reports/*.json: runs of the faults below, their exchanges dropped.
`RUNS_UPDATE_SNAPSHOTS=1 pytest tests/test_report_summary.py` runs the faults again and rewrites
them and the golden files in tests/snapshots/ (read the diff).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from support.harness import quick_args, run_suite
from support.markdown import html_of, markdown, table_rows
from support.servers import build
from support.tokens import TOKEN
from support.tooling import ROOT

from conformance.report.summary import render_summary
from conformance.results import RunReport

DATA = ROOT / "tests" / "data" / "reports"
SNAPSHOTS = ROOT / "tests" / "snapshots"
UPDATE = os.environ.get("RUNS_UPDATE_SNAPSHOTS") == "1"
# The baseline's entries expire in 2099; the summary is rendered as if it were nine days before.
TODAY = dt.date(2099, 1, 1)
BASELINE = """\
- id: AUTH-004
  accepts: failed
  fingerprints: [{fingerprints}]
  reason: "data without credentials: fixed in #42 | tracked"
  expires: 2099-01-10
- id: AUTH-002
  accepts: failed
  fingerprints: ["0000000000000000"]
  reason: long-standing
  expires: 2099-06-30
"""
# name -> (fault, extra arguments): every report the Markdown tests read.
REPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "auth-401-without-challenge": ("auth-401-without-challenge", ()),
    "auth-missing-token-accepted": ("auth-missing-token-accepted", ()),
    "auth-missing-token-accepted-baselined": ("auth-missing-token-accepted", ("--baseline",)),
}


def _normalised(data: dict[str, object]) -> dict[str, object]:
    """A report with what changes between runs of one server pinned: its port, its times, the exchanges."""
    url = str(data["base_url"])
    text = json.dumps(data).replace(url, "http://127.0.0.1:8080")
    clean: dict[str, object] = json.loads(text)
    clean.update(started_at="2099-01-01T00:00:00Z", duration_s=1.5, session_client_id="rc-session")
    for req in clean["requirements"]:  # type: ignore[attr-defined]
        req["duration_s"] = 0.0
        for ev in req["evidence"]:
            ev["exchanges"], ev["timeline"] = [], []
    return clean


def _generate(name: str, tmp: Path) -> None:
    fault, extra = REPORTS[name]
    args = list(extra)
    if "--baseline" in args:
        first = RunReport.read(DATA / f"{fault}.json")
        [auth4] = [r for r in first.requirements if r.id == "AUTH-004"]
        path = tmp / "baseline.yaml"
        path.write_text(BASELINE.format(fingerprints=", ".join(f'"{e.fingerprint}"' for e in auth4.evidence)))
        args = ["--baseline", str(path)]
    run = run_suite(build(fault), *quick_args(["auth"], *args), report_dir=tmp / name)
    assert run.report is not None, run.explain()
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / f"{name}.json").write_text(json.dumps(_normalised(run.report), indent=1) + "\n", encoding="utf-8")


def report(name: str) -> RunReport:
    return RunReport.read(DATA / f"{name}.json")


def golden(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: RUNS_UPDATE_SNAPSHOTS=1 and read the diff"


@pytest.mark.skipif(not UPDATE, reason="regenerates the report fixtures (RUNS_UPDATE_SNAPSHOTS=1)")
def test_regenerate_the_report_fixtures(tmp_path: Path) -> None:
    for name in REPORTS:  # in order: the baselined run reads the fingerprints of the plain one
        _generate(name, tmp_path)
        assert (DATA / f"{name}.json").is_file()


@pytest.mark.parametrize("name", list(REPORTS))
def test_the_summary_matches_its_golden_file(name: str) -> None:
    golden(f"summary-{name}.md", render_summary(report(name), today=TODAY))


def test_the_counts_parse_as_a_table_by_level_and_status() -> None:
    rows = table_rows(render_summary(report("auth-missing-token-accepted"), today=TODAY))
    assert rows[0] == ["level", "failed", "passed", "selected"]
    assert ["MUST", "2", "2", "4"] in rows
    assert ["SHOULD", "0", "1", "1"] in rows
    assert rows[-1] == ["all", "2", "3", "5"]


def test_failures_are_one_line_each_with_their_fingerprints() -> None:
    rep = report("auth-missing-token-accepted")
    text = render_summary(rep, today=TODAY)
    for req in rep.requirements:
        if req.status.value == "failed":
            [line] = [li for li in text.splitlines() if li.startswith(f"- **{req.id}**")]
            for ev in req.evidence:
                assert f"`{ev.fingerprint}`" in line
    assert "### Failed: 2" in text


def test_a_not_run_requirement_is_listed_with_its_reason() -> None:
    text = render_summary(report("auth-401-without-challenge"), today=TODAY)
    assert "### Not verified: 1" in text
    [line] = [li for li in text.splitlines() if li.startswith("- **AUTH-005**")]
    assert "not run" in line and "not evaluated" in line


def test_baseline_entries_in_force_show_their_expiry_and_the_close_ones_are_flagged() -> None:
    text = render_summary(report("auth-missing-token-accepted-baselined"), today=TODAY)
    rows = {row[0]: row for row in table_rows(text) if row and row[0].startswith("AUTH-")}
    assert rows["AUTH-004"][1] == "applied"
    assert "expires in 9 days" in rows["AUTH-004"][2]
    assert rows["AUTH-002"][2] == "2099-06-30"  # far off: not flagged
    # A pipe in the reason stays inside its cell.
    assert rows["AUTH-004"][3] == "data without credentials: fixed in #42 | tracked"


def test_the_summary_has_no_raw_html_and_no_token() -> None:
    rep = report("auth-missing-token-accepted")
    rep.requirements[0].message = "<script>alert(1)</script> with " + TOKEN
    rep.command += f" --token {TOKEN}"
    text = render_summary(rep, today=TODAY, secrets=[TOKEN])
    assert TOKEN not in text
    assert "<script>" not in html_of(text)
    assert "html_block" not in {t.type for t in markdown().parse(text)}


def test_the_seed_and_replay_command_close_the_summary() -> None:
    rep = report("auth-missing-token-accepted")
    text = render_summary(rep, today=TODAY)
    assert f"Seed {rep.seed}; replay with:" in text
    fences = [t for t in markdown().parse(text) if t.type == "fence"]
    assert [f.content.strip() for f in fences] == [rep.command]


def test_run_writes_the_summary_file_and_the_job_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    run = run_suite(build("auth-missing-token-accepted"), *quick_args(["auth"]), report_dir=tmp_path / "r")
    assert run.exit_code == 1
    text = step.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## Runs API conformance: not conformant (exit 1)")  # appended
    assert "**AUTH-001**" in text
    # Given a file, the summary goes there and GitHub's file is left alone.
    given = tmp_path / "out" / "summary.md"
    run = run_suite(build("auth-missing-token-accepted"), *quick_args(["auth"], "--summary", str(given)))
    assert run.exit_code == 1
    assert step.read_text(encoding="utf-8") == text
    assert given.read_text(encoding="utf-8").startswith("## Runs API conformance: not conformant")
