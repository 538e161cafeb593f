"""Baselines: accepted failures and gaps, each entry naming the one status it accepts, with a reason and an
expiry; stale entries reported, failing under --strict."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from conformance.baseline import apply_baseline, baseline_entry_for, gate_verdict, load_baseline, parse_baseline
from conformance.report._demo import demo_report
from conformance.results import Evidence, RunReport, Status, Verdict

TODAY = dt.date(2026, 3, 1)
PRINT = "0123456789abcdef"  # the fingerprint of every failure only_failures makes


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def entry(req_id: str, accepts: str = "failed", expires: str = "2026-12-31", reason: str = "r") -> str:
    """One entry of a baseline file; a failed one lists PRINT."""
    prints = f"  fingerprints: [{PRINT}]\n" if accepts == "failed" else ""
    return f"- id: {req_id}\n  accepts: {accepts}\n{prints}  reason: {reason}\n  expires: {expires}\n"


def status(report: RunReport, req_id: str) -> Status:
    return next(r.status for r in report.requirements if r.id == req_id)


def only_failures(*ids: str) -> RunReport:
    """The demo run with every non-pass turned into a pass, except `ids`, which fail."""
    report = demo_report()
    for req in report.requirements:
        if req.id in ids:
            req.status, req.message = Status.FAILED, f"{req.id} broke"
            req.evidence = [Evidence("a_check", f"{req.id} broke", fingerprint=PRINT)]
        elif req.status is not Status.NOT_SELECTED:
            req.status, req.message, req.evidence = Status.PASSED, "", []
    return report


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: PAGE-008\n  accepts: failed\n  fingerprints: [0123456789abcdef]\n"
        "  reason: cursors are not bound to filters yet\n"
        "  issue: https://example.com/tracker/123\n  expires: 2027-01-31\n"
        "- id: ERR-001\n  accepts: not_run\n  reason: '  spaces   collapse  '\n  expires: '2027-02-01'\n",
    )
    baseline = load_baseline(path)
    assert [e.id for e in baseline.entries] == ["PAGE-008", "ERR-001"]
    assert baseline.entries[0].expires == dt.date(2027, 1, 31)
    assert baseline.entries[0].issue == "https://example.com/tracker/123"
    assert baseline.entries[1].reason == "spaces collapse"
    assert baseline.entries[1].issue is None
    assert load_baseline(write(tmp_path, "# nothing accepted yet\n")).entries == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- id: NOPE-001\n  reason: x\n  expires: 2027-01-01\n", "NOPE-001: no such requirement"),
        ("- id: ERR-001\n  reason: x\n  expires: 2027-13-01\n", "expires must be a date"),
        ("- id: ERR-001\n  accepts: skipped\n  reason: x\n  expires: soon\n", "ERR-001: expires must be a date"),
        ("- id: ERR-001\n  accepts: skipped\n  reason: x\n  expires: 2027-01-01T10:00:00\n", "not a date and time"),
        ("- id: ERR-001\n  expires: 2027-01-01\n", "ERR-001: missing reason"),
        ("- id: ERR-001\n  reason: '  '\n  expires: 2027-01-01\n", "ERR-001: missing reason"),
        ("- id: ERR-001\n  reason: x\n", "ERR-001: missing expires"),
        ("- reason: x\n  expires: 2027-01-01\n", "entry 1: missing id"),
        ("- id: ERR-001\n  accepts: skipped\n  reason: x\n  expires: 2027-01-01\n  owner: me\n", "unknown key 'owner'"),
        ("- id: ERR-001\n  accepts: skipped\n  reason: x\n  expires: 2027-01-01\n  issue: 12\n", "issue must be"),
        ("- ERR-001\n", "entry 1: must be a mapping"),
        ("- id: ERR-001\n  accepts: passed\n  reason: x\n  expires: 2027-01-01\n", "accepts must be one of failed"),
        ("- id: ERR-001\n  accepts: failed\n  reason: x\n  expires: 2027-01-01\n", "needs the fingerprints"),
        (
            "- id: ERR-001\n  accepts: not_run\n  reason: x\n  expires: 2027-01-01\n"
            "  fingerprints: [0123456789abcdef]\n",
            "fingerprints belong to accepts: failed",
        ),
        (
            "- id: 'response:getRunDefinition:304'\n  accepts: skipped\n  reason: x\n  expires: 2027-01-01\n",
            "a response entry accepts only that it is never observed",
        ),
        ("id: ERR-001\n", "must be a YAML list"),
        ("- id: ERR-001\n  accepts: skipped\n  reason: [unclosed\n", "not valid YAML at line"),
        (
            "- id: ERR-001\n  accepts: skipped\n  reason: x\n  expires: 2027-01-01\n"
            "- id: ERR-001\n  accepts: skipped\n  reason: y\n  expires: 2027-01-01\n",
            "ERR-001 is listed twice",
        ),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_baseline(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert str(path) in message


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read the baseline file: No such file") as info:
        load_baseline(tmp_path / "absent.yaml")
    assert "\n" not in str(info.value)


def test_a_listed_failure_is_baselined_and_does_not_fail_the_gate(tmp_path: Path) -> None:
    report = only_failures("PAGE-008")
    path = write(tmp_path, entry("PAGE-008", reason="cursors are not bound yet", expires="2026-06-30"))
    apply_baseline(report, path, strict=False, today=TODAY)
    assert status(report, "PAGE-008") is Status.BASELINED
    assert (report.verdict, report.exit_code) == (Verdict.CONFORMANT, 0)
    assert "baseline" in report.reason
    [note] = report.baseline
    assert (note.id, note.state, note.stale) == ("PAGE-008", "applied", False)
    assert report.baseline_file == str(path)


def test_an_unlisted_failure_still_fails_and_gets_a_paste_ready_entry(tmp_path: Path) -> None:
    report = only_failures("PAGE-008", "ERR-001")
    path = write(tmp_path, entry("PAGE-008", reason="cursors are not bound yet", expires="2026-06-30"))
    apply_baseline(report, path, strict=False, today=TODAY)
    assert (report.verdict, report.exit_code) == (Verdict.NOT_CONFORMANT, 1)
    err = next(r for r in report.requirements if r.id == "ERR-001")
    page = next(r for r in report.requirements if r.id == "PAGE-008")
    assert err.status is Status.FAILED
    assert page.baseline_entry == ""
    # Pasted into the file, the entry is accepted and baselines the failure.
    pasted = parse_baseline(path.read_text() + err.baseline_entry)
    assert pasted.get("ERR-001") is not None
    assert pasted.get("ERR-001").expires == TODAY + dt.timedelta(days=90)  # type: ignore[union-attr]
    again = only_failures("PAGE-008", "ERR-001")
    apply_baseline(again, pasted, strict=True, today=TODAY)
    assert (again.verdict, again.exit_code) == (Verdict.CONFORMANT, 0)


def test_failures_get_paste_ready_entries_without_a_baseline() -> None:
    report = only_failures("ERR-001")
    apply_baseline(report, None, strict=False, today=TODAY)
    err = next(r for r in report.requirements if r.id == "ERR-001")
    assert err.baseline_entry.startswith("- id: ERR-001\n")
    assert report.baseline == [] and report.baseline_file == ""
    assert (report.verdict, report.exit_code) == (Verdict.NOT_CONFORMANT, 1)


def test_a_paste_ready_entry_survives_a_hostile_message() -> None:
    report = only_failures("ERR-001")
    req = next(r for r in report.requirements if r.id == "ERR-001")
    req.message = "answered: {\"a\": '#1'} & *alias !tag\n- id: AUTH-001\n  reason: injected"
    entry = baseline_entry_for(req, TODAY)
    [parsed] = yaml.safe_load(entry)
    assert parsed["id"] == "ERR-001"
    assert parsed["reason"].startswith("accepted for now: answered:")
    assert "AUTH-001" not in parsed["reason"]  # only the first line of the message
    assert [e.id for e in parse_baseline(entry).entries] == ["ERR-001"]


def test_an_expired_entry_covers_nothing_and_is_reported(tmp_path: Path) -> None:
    report = only_failures("PAGE-008")
    path = write(tmp_path, entry("PAGE-008", reason="old excuse", expires="2026-02-28"))
    apply_baseline(report, path, strict=False, today=TODAY)
    assert status(report, "PAGE-008") is Status.FAILED
    assert (report.verdict, report.exit_code) == (Verdict.NOT_CONFORMANT, 1)
    [note] = report.baseline
    assert note.state == "expired" and note.stale
    assert "2026-02-28" in note.message and "still fails" in note.message
    page = next(r for r in report.requirements if r.id == "PAGE-008")
    assert page.baseline_entry.startswith("- id: PAGE-008")  # ready to renew


def test_an_entry_expiring_today_still_applies(tmp_path: Path) -> None:
    report = only_failures("PAGE-008")
    apply_baseline(report, write(tmp_path, entry("PAGE-008", expires="2026-03-01")), False, TODAY)
    assert status(report, "PAGE-008") is Status.BASELINED


@pytest.mark.parametrize(
    ("strict", "verdict", "code"), [(False, Verdict.CONFORMANT, 0), (True, Verdict.NOT_CONFORMANT, 1)]
)
def test_an_entry_whose_requirement_passes_is_stale_and_fails_only_under_strict(
    tmp_path: Path, strict: bool, verdict: Verdict, code: int
) -> None:
    report = only_failures()
    path = write(tmp_path, entry("IDEM-003", reason="was broken"))
    apply_baseline(report, path, strict=strict, today=TODAY)
    [note] = report.baseline
    assert (note.state, note.stale) == ("passing", True)
    assert "delete the entry" in note.message
    assert (report.verdict, report.exit_code) == (verdict, code)
    assert "stale baseline" in report.reason


def test_expired_entry_of_a_passing_requirement_fails_only_under_strict(tmp_path: Path) -> None:
    path = write(tmp_path, entry("IDEM-003", reason="was broken", expires="2025-12-31"))
    lax, strict = only_failures(), only_failures()
    apply_baseline(lax, path, strict=False, today=TODAY)
    apply_baseline(strict, path, strict=True, today=TODAY)
    assert lax.exit_code == 0 and strict.exit_code == 1
    assert lax.baseline[0].state == "expired"


def test_suite_errors_are_never_baselined_but_skips_can_be_accepted(tmp_path: Path) -> None:
    report = demo_report()  # ETAG-004 error, CANCEL-004 skipped, LIFE-005 not run
    path = write(
        tmp_path,
        entry("ETAG-004") + entry("CANCEL-004", "skipped") + entry("LIFE-005", "not_run"),
    )
    apply_baseline(report, path, strict=True, today=TODAY)
    assert status(report, "ETAG-004") is Status.ERROR
    # A skip or a requirement not reached is accepted only explicitly, by an entry in force.
    assert status(report, "CANCEL-004") is Status.BASELINED
    assert status(report, "LIFE-005") is Status.BASELINED
    assert {n.id: n.state for n in report.baseline} == {
        "ETAG-004": "unused",
        "CANCEL-004": "applied",
        "LIFE-005": "applied",
    }
    assert report.exit_code == 1  # the error and the unlisted failures still fail the run


def test_an_unverified_must_makes_the_run_incomplete_until_a_baseline_accepts_it(tmp_path: Path) -> None:
    report = only_failures()
    skipped = next(r for r in report.requirements if r.id == "IDEM-007")
    skipped.status, skipped.message = Status.SKIPPED, "needs a second credential: give --other-token"
    apply_baseline(report, None, strict=False, today=TODAY)
    assert (report.verdict, report.exit_code) == (Verdict.INCOMPLETE, 1), report.reason
    assert "IDEM-007 skipped (needs a second credential" in report.reason
    assert skipped.baseline_entry.startswith("- id: IDEM-007\n")  # ready to paste, as for a failure
    apply_baseline(report, write(tmp_path, entry("IDEM-007", "skipped", reason="one token in CI")),
                   strict=False, today=TODAY)  # fmt: skip
    assert skipped.status is Status.BASELINED and skipped.baselined_status == "skipped"
    assert (report.verdict, report.exit_code) == (Verdict.CONFORMANT, 0), report.reason
    # Once the entry expires, the skip counts again.
    apply_baseline(report, write(tmp_path, entry("IDEM-007", "skipped", "2026-01-31", "one token in CI")),
                   strict=False, today=TODAY)  # fmt: skip
    assert skipped.status is Status.SKIPPED
    assert report.verdict is Verdict.INCOMPLETE


def test_the_verdict_survives_a_json_round_trip_with_notes(tmp_path: Path) -> None:
    report = only_failures("PAGE-008")
    apply_baseline(report, write(tmp_path, entry("PAGE-008")), False, TODAY)
    report.write(tmp_path / "conformance.json")
    again = RunReport.read(tmp_path / "conformance.json")
    assert again.baseline == report.baseline
    assert again.baseline_file == report.baseline_file
    assert gate_verdict(again) == (report.verdict, report.exit_code, report.reason)


def test_results_without_baseline_fields_still_load(tmp_path: Path) -> None:
    data = only_failures().to_json()
    del data["baseline"], data["baseline_file"]
    assert RunReport.from_json(data).baseline == []


def test_unreachable_stays_unreachable(tmp_path: Path) -> None:
    report = only_failures()
    report.verdict, report.exit_code, report.reason = Verdict.UNREACHABLE, 3, "connection refused"
    apply_baseline(report, None, strict=True, today=TODAY)
    assert (report.verdict, report.exit_code, report.reason) == (Verdict.UNREACHABLE, 3, "connection refused")


def test_a_run_that_checked_nothing_is_not_green() -> None:
    report = only_failures()
    for req in report.requirements:
        req.status = Status.SKIPPED
    apply_baseline(report, None, strict=False, today=TODAY)
    assert (report.verdict, report.exit_code) == (Verdict.INCOMPLETE, 1)
    assert "no requirement was checked" in report.reason


# --- an entry accepts the one status it names ----------------------------------------------------------


def only(req_id: str, actual: Status) -> RunReport:
    """The demo run with every requirement passed but `req_id`, which has status `actual`."""
    report = only_failures(req_id)
    row = next(r for r in report.requirements if r.id == req_id)
    if actual is not Status.FAILED:
        row.status, row.message, row.evidence = actual, f"{req_id} {actual.value}", []
    return report


@pytest.mark.parametrize("accepts", ["failed", "skipped", "not_run"])
@pytest.mark.parametrize("actual", [Status.FAILED, Status.SKIPPED, Status.NOT_RUN])
def test_an_entry_accepts_the_status_it_names_and_nothing_else(tmp_path: Path, accepts: str, actual: Status) -> None:
    # Before entries named a status, one written for a skip (no second token) later hid a failure, and
    # one written for a failure hid the requirement being cut by --deadline.
    report = only("IDEM-007", actual)
    apply_baseline(report, write(tmp_path, entry("IDEM-007", accepts)), strict=False, today=TODAY)
    [note] = report.baseline
    if accepts == actual.value:
        assert status(report, "IDEM-007") is Status.BASELINED
        assert (note.state, report.verdict, report.exit_code) == ("applied", Verdict.CONFORMANT, 0)
    else:
        assert status(report, "IDEM-007") is actual
        verdict = Verdict.NOT_CONFORMANT if actual is Status.FAILED else Verdict.INCOMPLETE
        assert (note.state, report.verdict, report.exit_code) == ("outgrown", verdict, 1)
        assert f"accepts {accepts.replace('_', ' ')} only" in note.message, note.message


def test_a_failure_with_a_finding_the_entry_does_not_list_still_fails(tmp_path: Path) -> None:
    report = only_failures("PAGE-008")
    row = next(r for r in report.requirements if r.id == "PAGE-008")
    row.evidence.append(Evidence("a_check", "a new defect", fingerprint="fedcba9876543210"))
    apply_baseline(report, write(tmp_path, entry("PAGE-008")), strict=False, today=TODAY)
    assert status(report, "PAGE-008") is Status.FAILED
    [note] = report.baseline
    assert note.state == "outgrown" and "fedcba9876543210" in note.message


def test_a_failure_without_fingerprints_is_not_accepted(tmp_path: Path) -> None:
    report = only_failures("PAGE-008")
    row = next(r for r in report.requirements if r.id == "PAGE-008")
    row.evidence = []
    apply_baseline(report, write(tmp_path, entry("PAGE-008")), strict=False, today=TODAY)
    assert status(report, "PAGE-008") is Status.FAILED
    # Nor does the entry the report offers pretend to: pasted, it is refused with the reason.
    assert "no entry can accept this failure" in row.baseline_entry
    with pytest.raises(ValueError, match="needs the fingerprints"):
        parse_baseline(row.baseline_entry)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (
            "- id: IDEM-007\n  reason: one token\n  expires: 2027-01-01\n",
            "add `accepts: one of failed, skipped, not_run`",
        ),
        (
            "- id: PAGE-008\n  reason: r\n  expires: 2027-01-01\n  fingerprints: [0123456789abcdef]\n",
            "add `accepts: failed (keeping its fingerprints)`",
        ),
    ],
)
def test_an_old_entry_without_accepts_is_refused_saying_how_to_write_it(tmp_path: Path, text: str, hint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_baseline(path)
    message = str(info.value)
    assert hint in message and "baseline_entry" in message and str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize("actual", [Status.FAILED, Status.SKIPPED, Status.NOT_RUN])
def test_a_pasted_entry_accepts_exactly_what_the_run_found(actual: Status) -> None:
    report = only("IDEM-007", actual)
    apply_baseline(report, None, strict=False, today=TODAY)
    row = next(r for r in report.requirements if r.id == "IDEM-007")
    [pasted] = parse_baseline(row.baseline_entry).entries
    assert pasted.accepts is actual
    assert pasted.fingerprints == ((PRINT,) if actual is Status.FAILED else ())
