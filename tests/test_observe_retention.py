"""--key-retention: a key's later uses are not judged against its earlier ones once the server may have forgotten it.

The contract is silent on how long a server keeps Idempotency-Keys; the IETF draft lets it expire
them, and Stripe prunes keys once at least 24 h old. Observe assumes 24 h unless told otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.observe import Observer, observe
from conformance.observe_live import LiveObserver
from conformance.observe_traffic import read_traffic
from conformance.results import RunReport, Status

FIRST, OTHER = "run_first", "run_other"
BODY = {"clientId": "a", "workflow": {"name": "w", "steps": [{"id": "s", "action": "noop"}]}}
ANOTHER = {**BODY, "clientId": "b"}
KEY_IDS = {"CONC-001", "CONC-002", "IDEM-003"}


def _start(time: str | None, body: dict[str, Any], run_id: str, status: str = "queued") -> dict[str, Any]:
    line = {
        "duration_ms": 5,
        "method": "POST",
        "path": "/api/v1/runs",
        "status": 202,
        "request_headers": {"Authorization": "Bearer retention-token", "Idempotency-Key": "k-1"},
        "request_body": json.dumps(body),
        "response_headers": {"Content-Type": "application/json"},
        "response_body": json.dumps({"runId": run_id, "status": status}),
    }
    return line if time is None else {"time": time, **line}


def _file(tmp_path: Path, name: str, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"{name}.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _violated(report: RunReport) -> set[str]:
    return {r.id for r in report.requirements if r.status in (Status.FAILED, Status.WARNING)}


def _reused(tmp_path: Path, name: str, second: str | None, **options: Any) -> RunReport:
    """A key used for one body, then for another that got 202 with a new run: a conflict, if the key was kept."""
    first = None if second is None else "2026-12-05T12:00:00Z"
    path = _file(tmp_path, name, [_start(first, BODY, FIRST), _start(second, ANOTHER, OTHER)])
    report, _ = observe([path], tmp_path / name, complete=True, **options)
    return report


def test_a_key_reused_a_day_after_its_first_use_is_judged_only_if_kept_forever(tmp_path: Path) -> None:
    report = _reused(tmp_path, "default", "2026-12-06T13:00:00Z")
    assert not KEY_IDS & _violated(report), _violated(report)
    conc_003 = next(r for r in report.requirements if r.id == "CONC-003")
    assert conc_003.evaluations == 1, conc_003  # the second could not have failed it: it is no instance
    assert _violated(_reused(tmp_path, "forever", "2026-12-06T13:00:00Z", key_retention=None)) >= KEY_IDS
    assert _violated(_reused(tmp_path, "longer", "2026-12-06T13:00:00Z", key_retention=2 * 86400.0)) >= KEY_IDS


def test_a_key_reused_within_the_retention_is_judged(tmp_path: Path) -> None:
    assert _violated(_reused(tmp_path, "hour", "2026-12-05T13:00:00Z")) >= KEY_IDS
    assert not KEY_IDS & _violated(_reused(tmp_path, "short", "2026-12-05T13:00:00Z", key_retention=1800.0))


def test_untimed_uses_of_a_key_are_judged_only_if_keys_are_kept_forever(tmp_path: Path) -> None:
    # With no time, a use may have come any time after the key could have expired: nothing to judge.
    assert not {"CONC-001", "CONC-002"} & _violated(_reused(tmp_path, "untimed", None))
    assert {"CONC-001", "CONC-002"} <= _violated(_reused(tmp_path, "untimed-forever", None, key_retention=None))


def test_a_late_replay_may_still_show_the_first_answer(tmp_path: Path) -> None:
    # The server may still hold the key a day on and replay its first 202 (queued): no status went backwards.
    read = {
        "time": "2026-12-05T13:00:00Z",
        "duration_ms": 5,
        "method": "GET",
        "path": f"/api/v1/runs/{FIRST}",
        "status": 200,
        "request_headers": {"Authorization": "Bearer retention-token"},
        "response_headers": {"Content-Type": "application/json"},
        "response_body": json.dumps({"runId": FIRST, "status": "succeeded", "finishedAt": "2026-12-05T12:00:01Z"}),
    }
    lines = [_start("2026-12-05T12:00:00Z", BODY, FIRST), read, _start("2026-12-06T13:00:00Z", BODY, FIRST)]
    report, _ = observe([_file(tmp_path, "late", lines)], tmp_path / "late", complete=True)
    assert not {"CONC-005", "CONC-006", *KEY_IDS} & _violated(report), _violated(report)


def test_the_option_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [_start("2026-12-05T12:00:00Z", BODY, FIRST), _start("2026-12-06T13:00:00Z", ANOTHER, OTHER)]
    path = str(_file(tmp_path, "cli", lines))
    out = ["--report-dir", str(tmp_path / "out")]
    assert main(["observe", path, "--complete-recording", *out]) == 0
    assert main(["observe", path, "--complete-recording", "--key-retention", "forever", *out]) == 1
    assert main(["observe", path, "--complete-recording", "--key-retention", "172800", *out]) == 1
    capsys.readouterr()
    for bad in ("0", "-1", "nan", "inf", "a day"):
        assert main(["observe", path, "--key-retention", bad, *out]) == 2, bad
        err = capsys.readouterr().err.strip()
        assert "--key-retention" in err and len(err.splitlines()) == 1, err


def _timed(line: dict[str, Any], time: str, duration_ms: float, **changes: Any) -> dict[str, Any]:
    return {**line, "time": time, "duration_ms": duration_ms, **changes}


def test_a_use_in_flight_across_the_retention_leaves_the_key_unjudged(tmp_path: Path) -> None:
    # The second use was sent before the key could expire and answered after: it was in flight when the third
    # got 409 in-flight, so the third's 409 had a cause, and taking the second out of the key would hide it.
    in_flight = {
        "type": "https://scheduler.example.com/problems/idempotency-key-in-flight",
        "title": "t",
        "status": 409,
    }
    lines = [
        _timed(_start(None, BODY, FIRST), "2026-12-05T12:00:00.000Z", 5),
        _timed(_start(None, BODY, FIRST), "2026-12-06T11:59:58.000Z", 5000),
        _timed(
            _start(None, BODY, FIRST),
            "2026-12-06T11:59:59.000Z",
            5,
            status=409,
            response_headers={"Content-Type": "application/problem+json"},
            response_body=json.dumps(in_flight),
        ),
    ]
    report, _ = observe([_file(tmp_path, "straddle", lines)], tmp_path / "straddle", complete=True)
    assert "CONC-004" not in _violated(report), report.reason


def test_a_use_whose_body_the_recording_lacks_may_have_stored_the_key(tmp_path: Path) -> None:
    # The first use's body was not recorded, so it is judged on nothing; but it may have stored the key a day
    # before the third use, which may then have found it gone.
    unknown = {k: v for k, v in _start("2026-12-04T13:30:00Z", BODY, FIRST).items() if k != "request_body"}
    lines = [unknown, _start("2026-12-05T12:00:00Z", BODY, FIRST), _start("2026-12-05T14:00:00Z", ANOTHER, OTHER)]
    report, _ = observe([_file(tmp_path, "unknown", lines)], tmp_path / "unknown", complete=True)
    assert not KEY_IDS & _violated(report), _violated(report)
    report, _ = observe(
        [_file(tmp_path, "unknown", lines)], tmp_path / "unknown-forever", key_retention=None, complete=True
    )
    assert _violated(report) >= {"CONC-001", "CONC-002", "IDEM-003"}


def test_the_live_proxy_judges_keys_with_the_retention_it_was_given(tmp_path: Path) -> None:
    lines = [_start("2026-12-05T12:00:00Z", BODY, FIRST), _start("2026-12-06T13:00:00Z", ANOTHER, OTHER)]
    path = _file(tmp_path, "live", lines)

    def violated(name: str, **options: Any) -> set[str]:
        live = LiveObserver("http://127.0.0.1:9", tmp_path / name, complete=True, **options)
        with live:
            for item in read_traffic(path):
                live.put(item)
        return _violated(live.close())

    assert not KEY_IDS & violated("default")
    assert violated("forever", key_retention=None) >= KEY_IDS


def test_listen_refuses_a_bad_retention_before_it_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["observe", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--key-retention", "never"]
    assert main([*args, "--report-dir", str(tmp_path)]) == 2
    assert "--key-retention 'never'" in capsys.readouterr().err


def test_a_key_first_used_in_an_earlier_history_segment_expires_from_that_use(tmp_path: Path) -> None:
    # With a history limit the live observer forgets earlier segments; the key's first use is in the first,
    # so the day counts from it: the third use may have found the key gone and made a new run.
    read = {**_start("2026-12-05T12:00:01Z", BODY, FIRST), "method": "GET", "path": f"/api/v1/runs/{FIRST}"}
    read |= {"status": 200, "response_body": json.dumps({"runId": FIRST, "status": "queued"})}
    lines = [
        _start("2026-12-05T12:00:00Z", BODY, FIRST),
        read,
        _start("2026-12-06T11:59:00Z", BODY, FIRST),
        _start("2026-12-06T12:01:00Z", BODY, OTHER),
    ]
    path = _file(tmp_path, "segments", lines)

    def violated(**options: Any) -> set[str]:
        observer = Observer([str(path)], history_limit=2, complete=True, **options)
        for item in read_traffic(path):
            observer.add(item)
        assert observer.segments == 3
        return {rid for rid, found in observer.observation().findings.items() if found}

    assert not {"CONC-001", "IDEM-001"} & violated()
    assert violated(key_retention=None) >= {"CONC-001", "IDEM-001"}
