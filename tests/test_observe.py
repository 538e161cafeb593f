"""Observe mode: recorded traffic judged against the catalog (conformance/observe.py).

The recordings are the suite's own: its quick run against the reference server and against faults
of the self-check (tests/support/traffic.py), as exchanges.jsonl and as HAR made from it. A few
small recordings are written here by hand where a test needs times the suite does not record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.servers import fault
from support.tokens import OTHER_TOKEN, TOKEN, TOKENS
from support.tooling import _missing, require_command
from support.traffic import record, to_har

from conformance.cli import main
from conformance.observe import NOT_OBSERVED, observe
from conformance.observe_semantics import if_none_match_tags
from conformance.observe_traffic import ReadError, Recorded, read_traffic
from conformance.results import RunReport, Status, Verdict
from reference_impl.app import create_app
from reference_impl.serve import serve_in_thread


def _violated(report: RunReport) -> set[str]:
    return {r.id for r in report.requirements if r.status in (Status.FAILED, Status.WARNING)}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's quick run against the reference server, recorded (about 10 s)."""
    return record(None, tmp_path_factory.mktemp("clean"))


def test_a_clean_recording_of_the_reference_server_shows_no_violation(clean: Path, tmp_path: Path) -> None:
    report, seen = observe([clean], tmp_path)
    assert _violated(report) == set(), [r.message for r in report.requirements if r.evidence]
    assert report.exit_code == 0 and report.verdict is Verdict.INCOMPLETE  # never conformant
    assert "no violation seen" in report.reason and f"observed {seen.exchanges} exchanges" in report.reason
    rows = {r.id: r for r in report.requirements}
    # Judged on what the traffic held: the answers alone, and the history's order-free rules.
    judged = ("SCHEMA-002", "ERR-002", "AUTH-003", "LIFE-003", "PAGE-009", "ETAG-005", "CONC-001", "CONC-012")
    replays = ("IDEM-001", "IDEM-002", "IDEM-003", "IDEM-006", "PAGE-001", "PAGE-002", "CANCEL-002", "CANCEL-005")
    for rid in judged + replays:
        assert rows[rid].status is Status.PASSED and rows[rid].evaluations > 0, rows[rid]
    # Never passed without an instance, and never judged where a probe is needed.
    assert rows["ERR-008"].status is Status.NOT_RUN and rows["ERR-008"].message.startswith(NOT_OBSERVED)
    assert all(r.evaluations > 0 for r in report.requirements if r.status is Status.PASSED)


# Faults of different areas, each caught from its recording alone on the rule that sees its defect in traffic.
CAUGHT = [
    ("idem-key-ignored", {"CONC-001", "IDEM-001"}),  # idempotency: a replay got another run
    ("idem-cached-202-other-body", {"IDEM-003"}),  # another body under a used key got the first 202
    ("idem-bodies-byte-for-byte", {"IDEM-002"}),  # a JSON-equal body in other bytes got key-reused
    ("page-oldest-first", {"PAGE-001"}),  # a page oldest first
    ("cancel-requested-at-never-set", {"CANCEL-002"}),  # a read after the 202 cancelling: cancelRequestedAt null
    ("etag-unstable", {"CONC-012"}),  # etag: one definition, two ETags
    ("conc-single-flight-ignores-body", {"CONC-002"}),  # concurrency: two bodies accepted under one key
    ("cancel-requested-at-overwritten", {"CONC-007", "CANCEL-005"}),  # cancel: cancelRequestedAt moved
    ("schema-misspelled-status", {"SCHEMA-002"}),  # schema: a status outside RunStatus
    ("etag-strong", {"ETAG-004"}),  # conditional GETs: the ETag is not W/"<definitionHash>"
    ("etag-if-none-match-ignored", {"ETAG-005"}),  # a matching If-None-Match got 200
    ("etag-if-none-match-case-insensitive", {"ETAG-006"}),  # a tag in other case got 304
    ("life-failed-without-finished-at", {"LIFE-003"}),  # lifecycle: a failed run without finishedAt
    ("page-client-id-prefix-filter", {"PAGE-009"}),  # pagination: a clientId filter matched a prefix
]


@pytest.mark.parametrize(("name", "expected"), CAUGHT, ids=[name for name, _ in CAUGHT])
def test_a_recorded_fault_is_caught_on_its_ids(name: str, expected: set[str], tmp_path: Path) -> None:
    item = fault(name)
    recording = record(item.build(TOKENS), tmp_path / "run", *item.select)
    report, _ = observe([recording], tmp_path / "observe")
    assert expected <= _violated(report), (name, _violated(report), report.reason)
    assert report.exit_code == 1 and report.verdict is Verdict.NOT_CONFORMANT
    evidence = next(r for r in report.requirements if r.id in expected).evidence[0]
    assert f"{recording}, line " in evidence.message and evidence.exchanges  # names the recorded exchanges


def test_a_har_made_from_a_recording_is_read_and_hides_the_tokens(clean: Path, tmp_path: Path) -> None:
    har = tmp_path / "clean.har"
    entries = to_har(clean, har)
    report, seen = observe([har], tmp_path / "out")
    assert seen.exchanges == entries and not seen.errors
    assert _violated(report) == set(), report.reason
    assert seen.credentials == 2  # the two tokens, told apart
    for name in ("conformance.json", "conformance.html", "junit.xml"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert TOKEN not in text and OTHER_TOKEN not in text, name


def test_a_har_without_bodies_is_read_for_what_it_has(clean: Path, tmp_path: Path) -> None:
    har = tmp_path / "bare.har"
    to_har(clean, har, bodies=False)
    report, seen = observe([har], tmp_path / "out")
    assert seen.exchanges > 0 and not seen.errors and _violated(report) == set()
    rows = {r.id: r for r in report.requirements}
    assert rows["ERR-001"].status is Status.PASSED  # the status alone says it
    # No body, no judgement of one: neither a schema nor a key's body (a replay would look like a conflict).
    assert rows["SCHEMA-002"].status is Status.NOT_RUN and rows["CONC-002"].status is Status.NOT_RUN


def test_a_malformed_line_is_named_and_the_rest_still_judged(tmp_path: Path) -> None:
    item = fault("etag-unstable")
    recording = record(item.build(TOKENS), tmp_path / "run", *item.select)
    lines = recording.read_text(encoding="utf-8").splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join([*lines[:4], '{"method": "GET", "url": \n', '["not", "an", "object"]\n', *lines[4:]]))
    report, seen = observe([broken], tmp_path / "out")
    assert [e.where for e in seen.errors] == ["line 5", "line 6"], seen.errors
    assert f"{broken}, line 5: not JSON" in report.reason
    assert "line 5" in (tmp_path / "out" / "unreadable.txt").read_text(encoding="utf-8")
    assert "CONC-012" in _violated(report) and report.exit_code == 1  # the good lines still judged


def test_nothing_readable_exits_2_with_the_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.har"
    junk.write_text('{"log": {"version": "1.2", "entries": [{"request": ', encoding="utf-8")
    code = main(["observe", str(junk), "--report-dir", str(tmp_path / "out")])
    assert code == 2
    assert f"{junk}, entry 1: the file ends inside log.entries" in capsys.readouterr().err


# --- time, from recordings written here: the suite records none -------------------------------------------------
RUN = "run_01JDQ4Y7V9K2M3N4P5Q6R7S8T9"


def _har_entry(
    started: str, ms: float, method: str, path: str, status: int, body: Any, host: str = "api.test"
) -> dict[str, Any]:
    return {
        "startedDateTime": started,
        "time": ms,
        "request": {
            "method": method,
            "url": f"http://{host}{path}",
            "headers": [{"name": "Authorization", "value": "Bearer tok-a"}],
        },
        "response": {
            "status": status,
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "content": {"size": len(json.dumps(body)), "mimeType": "application/json", "text": json.dumps(body)},
        },
    }


def _started_then_lost(tmp_path: Path, second_start: str, clock_skew: float = 0.0) -> RunReport:
    """startRun answered 202 within [12:00:00.000, 12:00:00.005] ms, then a getRun of that run answered 404."""
    problem = {"type": "about:blank", "title": "Not Found", "status": 404}
    entries = [
        _har_entry("2026-12-06T12:00:00.000Z", 5, "POST", "/api/v1/runs", 202, {"runId": RUN, "status": "queued"}),
        _har_entry(second_start, 2, "GET", f"/api/v1/runs/{RUN}", 404, problem),
    ]
    entries[1]["response"]["headers"] = [{"name": "Content-Type", "value": "application/problem+json"}]
    har = tmp_path / "t.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}), encoding="utf-8")
    report, _ = observe([har], tmp_path / "out", clock_skew=clock_skew)
    return report


def test_a_har_orders_exchanges_only_beyond_its_millisecond_precision(tmp_path: Path) -> None:
    # Sent 3 ms after the 202 ended: beyond the recording's precision, so the 404 follows a shown run.
    assert "CONC-009" in _violated(_started_then_lost(tmp_path, "2026-12-06T12:00:00.008Z"))
    # Sent 1 ms after: within a millisecond either way, the two may have overlapped, so no order and no finding.
    assert "CONC-009" not in _violated(_started_then_lost(tmp_path, "2026-12-06T12:00:00.006Z"))
    # Stamped by two clocks up to 10 ms apart, 3 ms proves nothing either.
    assert "CONC-009" not in _violated(_started_then_lost(tmp_path, "2026-12-06T12:00:00.008Z", clock_skew=0.01))


def _ndjson(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / "gateway.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_ndjson_whole_second_times_order_nothing_within_their_second(tmp_path: Path) -> None:
    def line(time: str, method: str, path: str, status: int, body: Any, client: str) -> dict[str, Any]:
        return {
            "time": time,
            "duration_ms": 3,
            "method": method,
            "path": path,
            "status": status,
            "client": client,
            "request_headers": {"Authorization": "Bearer secret-gateway-token"},
            "response_headers": {"Content-Type": "application/json"},
            "response_body": json.dumps(body),
        }

    run = {"runId": RUN, "clientId": "c", "status": "running", "definitionHash": "sha256:" + "0" * 64}
    earlier = {**run, "status": "queued"}

    def observed(second_time: str, name: str) -> set[str]:
        lines = [line("2026-12-06T12:00:01Z", "GET", f"/api/v1/runs/{RUN}", 200, run, "a")]
        lines.append(line(second_time, "GET", f"/api/v1/runs/{RUN}", 200, earlier, "b"))
        report, seen = observe([_ndjson(tmp_path, lines)], tmp_path / name)
        written = (tmp_path / name / "conformance.json").read_text(encoding="utf-8")
        assert "secret-gateway-token" not in written and seen.credentials == 1
        return _violated(report)

    # Queued, read three seconds after a read showed the run running: the status went backwards.
    assert "CONC-005" in observed("2026-12-06T12:00:04Z", "later")
    # In the same whole second, the two reads may have gone either way: no order, no finding.
    assert not {"CONC-005", "CONC-006"} & observed("2026-12-06T12:00:01Z", "same")


def test_the_readers_stream_and_name_what_they_cannot_read(tmp_path: Path) -> None:
    har = tmp_path / "big.har"
    entry = _har_entry("2026-12-06T12:00:00.000Z", 5, "GET", f"/api/v1/runs/{RUN}", 200, {"pad": "x" * 70000})
    har.write_text(json.dumps({"log": {"version": "1.2", "pages": [], "entries": [entry, {"request": 1}, entry]}}))
    items = list(read_traffic(har))
    assert [type(i) for i in items] == [Recorded, ReadError, Recorded]  # an entry larger than the reader's chunk too
    assert isinstance(items[1], ReadError) and items[1].where == "entry 2"


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "observe"


@pytest.mark.parametrize(("name", "code"), [("session.har", 0), ("gateway.ndjson", 0), ("gateway-violation.ndjson", 1)])
def test_the_readme_examples_run_as_written(name: str, code: int, tmp_path: Path) -> None:
    # One client's session against the reference server, recorded with times (HAR and gateway NDJSON), and
    # a copy whose last read shows the finished run running again.
    assert main(["observe", str(EXAMPLES / name), "--report-dir", str(tmp_path)]) == code
    report = RunReport.read(tmp_path / "conformance.json")
    # Running again after succeeded, to the client that saw it succeeded (LIFE-002) as to any (CONC-006), and
    # running with its finishedAt still set (LIFE-003).
    assert _violated(report) == ({"CONC-006", "LIFE-002", "LIFE-003"} if code else set()), report.reason


def test_the_events_say_what_was_found_and_never_the_token(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    code = main(
        ["observe", str(EXAMPLES / "gateway-violation.ndjson"), "--report-dir", str(tmp_path), "--events", str(events)]
    )
    text = events.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert code == 1 and lines[0]["event"] == "run_started" and lines[-1]["event"] == "run_finished"
    assert {line["requirement"] for line in lines if line["event"] == "finding"} == {"CONC-006", "LIFE-002", "LIFE-003"}
    assert lines[-1]["exit_code"] == 1 and lines[-1]["verdict"] == "not_conformant"
    recorded = (EXAMPLES / "gateway-violation.ndjson").read_text(encoding="utf-8")
    token = "example-token-0001"  # the example's server's token, in every recorded request
    assert token in recorded
    for written in [
        text,
        *((tmp_path / name).read_text(encoding="utf-8") for name in ("conformance.json", "junit.xml")),
    ]:
        assert token not in written


def test_if_none_match_lists_are_read_as_rfc_9110_says() -> None:
    assert if_none_match_tags('W/"a", "b"') == ["a", "b"]
    assert if_none_match_tags(' ,\tW/"a",, "b" ,') == ["a", "b"]  # empty elements and OWS
    assert if_none_match_tags("*") == ["*"]
    assert if_none_match_tags('W/"a" "b"') is None  # no comma between two tags
    assert if_none_match_tags("a") is None and if_none_match_tags("") is None


def test_two_deployments_in_one_recording_are_judged_apart(tmp_path: Path) -> None:
    run = {"runId": "57", "clientId": "c", "status": "succeeded"}

    def violated(second_host: str) -> set[str]:
        entries = [
            _har_entry("2026-12-06T12:00:00.000Z", 5, "GET", "/api/v1/runs/57", 200, run, host="staging.test"),
            _har_entry(
                "2026-12-06T12:00:05.000Z",
                5,
                "GET",
                "/api/v1/runs/57",
                200,
                {**run, "status": "queued"},
                host=second_host,
            ),
        ]
        har = tmp_path / f"{second_host}.har"
        har.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}), encoding="utf-8")
        report, _ = observe([har], tmp_path / second_host)
        return _violated(report)

    assert "CONC-006" in violated("staging.test")  # one server: its succeeded run read queued later
    assert "CONC-006" not in violated("production.test")  # another server's run "57" is another run


# --- a HAR written by a recorder nobody here wrote: Chromium's, through Playwright ------------------------------
BROWSER_SESSION = """async () => {
  const workflow = {name: "w", version: "1", steps: [{id: "a", action: "noop"}]};
  const body = JSON.stringify({clientId: "browser", workflow});
  const post = () => fetch("/api/v1/runs", {method: "POST", body,
    headers: {"Content-Type": "application/json", "Idempotency-Key": "browser-key-1"}});
  const first = await (await post()).json();
  await post();
  for (let i = 0; i < 3; i++) { await fetch(`/api/v1/runs/${first.runId}`); }
  const definition = await fetch(`/api/v1/runs/${first.runId}/definition`);
  await fetch(`/api/v1/runs/${first.runId}/definition`, {headers: {"If-None-Match": definition.headers.get("etag")}});
  await fetch("/api/v1/runs?clientId=browser");
  await fetch(`/api/v1/runs/${first.runId}/cancel`, {method: "POST"});
}"""


def _browser_har(app: Any, har: Path) -> None:
    """One page's fetches against `app`, recorded by Chromium into a HAR (Playwright's record_har_path)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    chromium = require_command("chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    with serve_in_thread(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        context = browser.new_context(
            record_har_path=str(har),
            record_har_content="embed",
            extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
        )
        page = context.new_page()
        page.goto(f"{url}/api/v1/runs?limit=1")
        page.evaluate(BROWSER_SESSION)
        context.close()  # writes the HAR
        browser.close()


@pytest.mark.parametrize(("server", "expected"), [(None, set()), ("etag-if-none-match-ignored", {"ETAG-005"})])
def test_a_browser_har_is_read_and_judged(server: str | None, expected: set[str], tmp_path: Path) -> None:
    har = tmp_path / "browser.har"
    _browser_har(create_app(tokens=TOKENS) if server is None else fault(server).build(TOKENS), har)
    report, seen = observe([har], tmp_path / "out")
    assert seen.exchanges >= 10 and not seen.errors and seen.untimed == 0
    assert _violated(report) == expected, report.reason
    rows = {r.id: r for r in report.requirements}
    assert rows["ETAG-005"].evaluations == 1 and rows["CONC-001"].evaluations == 2  # the revalidation, the replay
    assert TOKEN not in (tmp_path / "out" / "conformance.json").read_text(encoding="utf-8")


def test_a_cursor_sent_with_other_filters_continues_no_walk(tmp_path: Path) -> None:
    def page(query: str, ids: list[str], next_cursor: str | None) -> dict[str, Any]:
        items = [{"runId": i, "clientId": "a", "status": "queued"} for i in ids]
        return {
            "method": "GET",
            "path": f"/api/v1/runs?{query}",
            "status": 200,
            "request_headers": {"Authorization": "Bearer walker-token"},
            "response_headers": {"Content-Type": "application/json"},
            "response_body": json.dumps({"items": items, "nextCursor": next_cursor}),
        }

    def violated(second_query: str) -> set[str]:
        path = _ndjson(tmp_path, [page("clientId=a&limit=2", ["1", "2"], "c1"), page(second_query, ["2"], None)])
        report, _ = observe([path], tmp_path / second_query.replace("&", "_"))
        return _violated(report)

    assert "CONC-010" in violated("clientId=a&limit=2&cursor=c1")  # one walk returned run 2 twice
    # The same cursor with another clientId: the server should refuse it (PAGE-008), and whatever it walked
    # then is not the first page's walk, so run 2 again is no duplicate of that walk.
    assert "CONC-010" not in violated("clientId=b&limit=2&cursor=c1")


def test_entries_the_browser_served_from_its_cache_are_not_exchanges(tmp_path: Path) -> None:
    entry = _har_entry("2026-12-06T12:00:00.000Z", 5, "GET", f"/api/v1/runs/{RUN}", 200, {"runId": RUN})
    cached = {**entry, "_fromCache": "memory"}
    har = tmp_path / "cache.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry, cached]}}), encoding="utf-8")
    assert len([i for i in read_traffic(har) if isinstance(i, Recorded)]) == 1


def _exchange(
    method: str, path: str, status: int, body: Any, time: str, *, sent: Any = None, key: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": "Bearer hand-made-token"} | ({"Idempotency-Key": key} if key else {})
    line: dict[str, Any] = {
        "time": time,
        "duration_ms": 5,
        "method": method,
        "path": path,
        "status": status,
        "request_headers": headers,
        "response_headers": {"Content-Type": "application/problem+json" if status >= 400 else "application/json"},
        "response_body": json.dumps(body),
    }
    if sent is not None:
        line["request_body"] = json.dumps(sent)
    return line


def test_a_full_page_is_judged_on_its_size_only_when_a_cursor_follows(tmp_path: Path) -> None:
    def violated(query: str, count: int, next_cursor: str | None) -> set[str]:
        items = [{"runId": f"run_{n}", "clientId": "a", "status": "queued"} for n in range(count)]
        page = _exchange(
            "GET", f"/api/v1/runs?{query}", 200, {"items": items, "nextCursor": next_cursor}, "2026-12-06T12:00:00Z"
        )
        report, _ = observe([_ndjson(tmp_path, [page])], tmp_path / f"{query}-{count}-{next_cursor}")
        return _violated(report)

    assert "PAGE-002" in violated("limit=3", 2, "c1")  # a cursor follows a page short of its limit
    assert "PAGE-002" in violated("", 20, "c1")  # no limit means 50
    assert "PAGE-002" not in violated("limit=3", 3, "c1")
    assert "PAGE-002" not in violated("limit=3", 2, None)  # the last page holds what remains
    assert "PAGE-002" not in violated("limit=500", 2, "c1")  # not a limit the contract accepts: PAGE-003's


def test_another_body_under_a_used_key_is_judged_only_after_the_first_202_was_answered(tmp_path: Path) -> None:
    first = {"clientId": "a", "workflow": {"steps": [{"name": "s"}]}}
    other = {"clientId": "b", "workflow": {"steps": [{"name": "s"}]}}
    run = {"runId": RUN, "status": "queued"}

    def violated(second_time: str) -> set[str]:
        lines = [
            _exchange("POST", "/api/v1/runs", 202, run, "2026-12-06T12:00:00.000Z", sent=first, key="k1"),
            _exchange("POST", "/api/v1/runs", 202, run, second_time, sent=other, key="k1"),
        ]
        report, _ = observe([_ndjson(tmp_path, lines)], tmp_path / second_time)
        return _violated(report)

    assert "IDEM-003" in violated("2026-12-06T12:00:01.000Z")  # sent after the first 202 arrived: must be a 409
    assert "IDEM-003" not in violated("2026-12-06T12:00:00.001Z")  # overlapping: which came first is unknown


def test_a_cancel_202_showing_the_run_still_queued_is_caught(tmp_path: Path) -> None:
    def violated(status: str) -> set[str]:
        cancel = _exchange(
            "POST", f"/api/v1/runs/{RUN}/cancel", 202, {"runId": RUN, "status": status}, "2026-12-06T12:00:00Z"
        )
        report, _ = observe([_ndjson(tmp_path, [cancel])], tmp_path / status)
        return _violated(report)

    assert "CANCEL-002" in violated("queued")
    assert "CANCEL-002" not in violated("cancelling") | violated("succeeded")  # a finished run stays as it was


def test_a_gateway_log_that_writes_absent_headers_as_empty_is_read_as_the_docs_map_it(tmp_path: Path) -> None:
    # nginx's log_format (docs/observe.md) logs a header the request did not carry as "": two keyless startRuns
    # are not two uses of the key "" (a gateway that logs response bodies too shows their runIds).
    def start(at: str, client_id: str, run_id: str) -> dict[str, Any]:
        return {
            "time": at,
            "duration_s": 0.004,
            "method": "POST",
            "url": "/api/v1/runs",
            "status": 202,
            "connection": "1",
            "request_headers": {"Authorization": "Bearer nginx-token", "Idempotency-Key": "", "If-None-Match": ""},
            "response_headers": {
                "ETag": "",
                "Content-Type": "application/json",
                "WWW-Authenticate": "",
                "Location": "",
            },
            "request_body": json.dumps({"clientId": client_id, "workflow": {"name": "w", "steps": []}}),
            "response_body": json.dumps({"runId": run_id, "status": "queued"}),
        }

    path = tmp_path / "nginx.ndjson"
    lines = [start("2026-12-07T10:00:00Z", "a", "run-1"), start("2026-12-07T10:00:05Z", "b", "run-2")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report, _ = observe([path], tmp_path / "out", complete=True)
    assert not _violated(report), report.reason
