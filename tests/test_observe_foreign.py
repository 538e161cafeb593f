"""Observe mode on traffic nobody here made: the generated TypeScript client, recorded by mitmproxy's HAR export.

tests/ts_client/observed.ts drives the typescript-axios client OpenAPI Generator makes from the spec
through `mitmdump --mode reverse:URL --set hardump=FILE` in front of the reference server and two
faulty servers; `runs-conformance observe FILE` then judges the HAR mitmproxy wrote. Neither the
client nor the recorder is the suite's, so this is the proof that observe reads real tools' traffic.
Needs Java, node, tools/node_modules and mitmdump (tests/support/foreign.py): missing tools skip
locally, fail in CI.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.foreign import build_ts_driver, recording_proxy, run_checked
from support.servers import serve
from support.tokens import TOKEN, TOKENS
from support.tooling import ROOT

from conformance.cli import main
from conformance.observe_traffic import ReadError, Recorded, read_traffic
from reference_impl.app import create_app
from reference_impl.serve import serve_in_thread


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/ts_client/observed.ts compiled against the client generated from the spec (about 8 s)."""
    return build_ts_driver(tmp_path_factory.mktemp("ts"), "observed.ts")


def _record(driver: Path, upstream: str, har: Path) -> dict[str, Any]:
    """Drive the TypeScript client through mitmdump in front of `upstream`; the driver's summary."""
    with recording_proxy(upstream, har) as proxy:
        env = {**os.environ, "RUNS_BASE_URL": proxy, "RUNS_TOKEN": TOKEN}
        output = run_checked(["node", str(driver)], cwd=ROOT, timeout=60, env=env)
    summary: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    # Every request the client sent is in the HAR, or a violation could hide in one left out.
    assert len(entries) == summary["sent"], (len(entries), summary)
    return summary


def _observe(har: Path, out: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """`runs-conformance observe HAR`: its exit code and the report's rows by ID."""
    code = main(["observe", str(har), "--report-dir", str(out)])
    report = json.loads((out / "conformance.json").read_text(encoding="utf-8"))
    for written in out.iterdir():
        assert TOKEN not in written.read_text(encoding="utf-8", errors="replace"), written.name
    return code, {row["id"]: row for row in report["requirements"]}


def _violated(rows: dict[str, dict[str, Any]]) -> set[str]:
    return {rid for rid, row in rows.items() if row["status"] in ("failed", "warning")}


# What a correct server's recording must have judged: the answers alone, and the history's rules on a replay
# and a reuse of one key, a conditional GET each way, a cancel followed to its end, a whole walk.
JUDGED = (
    *("SCHEMA-002", "ERR-002", "LIFE-003", "PAGE-009"),
    *("CONC-001", "CONC-002"),  # the key replayed, then reused with another body
    *("ETAG-004", "ETAG-005", "ETAG-006", "CONC-012"),  # the definition revalidated, each way
    *("CONC-005", "CONC-007"),  # the cancelled run's statuses along the lifecycle, its cancelRequestedAt fixed
    *("CONC-010", "CONC-011"),  # the walk without duplicates, and whole
)

# Correct servers: the reference, and variants whose difference shows in a proxy's recording: gzip bodies
# (mitmproxy stores them decoded, under the Content-Encoding the server sent), other RFC 3339 forms of
# the same instants, answers at random latencies (the order observe rebuilds from the proxy's times).
CORRECT = [None, "gzip", "other-timestamp-forms", "latency-jitter"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CORRECT, ids=[name or "reference" for name in CORRECT])
def test_the_typescript_clients_traffic_through_mitmproxy_shows_no_violation_on_a_correct_server(
    driver: Path, name: str | None, tmp_path: Path
) -> None:
    with serve(name) if name else serve_in_thread(create_app(tokens=TOKENS)) as url:
        summary = _record(driver, url, tmp_path / "correct.har")
    # The traffic holds what observe judges across exchanges, answered as a correct server answers.
    assert summary["replaySameRun"] is True and summary["conflictStatus"] == 409, summary
    assert summary["revalidatedStatus"] == 304 and summary["mismatchedStatus"] == 200, summary
    assert summary["busyStatus"] == "cancelled" and summary["pages"] == 3 and summary["walked"] == 5, summary

    code, rows = _observe(tmp_path / "correct.har", tmp_path / "observed")
    assert _violated(rows) == set(), {rid: rows[rid]["message"] for rid in _violated(rows)}
    assert code == 0
    # Judged, not merely unbroken: each of these had instances in the TypeScript client's traffic.
    for rid in JUDGED:
        assert rows[rid]["status"] == "passed" and rows[rid]["evaluations"] > 0, rows[rid]


# Two faults of different areas whose defect passive observation sees, each caught on its ID.
CAUGHT = [
    ("idem-key-ignored", {"CONC-001"}),  # idempotency: the replay got another run
    ("etag-unstable", {"CONC-012"}),  # conditional GETs: one definition, two ETags
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "expected"), CAUGHT, ids=[name for name, _ in CAUGHT])
def test_the_typescript_clients_traffic_through_mitmproxy_catches_a_fault(
    driver: Path, name: str, expected: set[str], tmp_path: Path
) -> None:
    har = tmp_path / f"{name}.har"
    with serve(name) as url:
        _record(driver, url, har)
    code, rows = _observe(har, tmp_path / "observed")
    assert expected <= _violated(rows), (name, _violated(rows))
    assert code == 1
    evidence = rows[next(iter(expected))]["evidence"][0]
    assert f"{har}, entry " in evidence["message"], evidence  # names the recorded exchanges


@pytest.mark.slow
def test_mitmproxys_times_order_what_an_untimed_recording_cannot(driver: Path, tmp_path: Path) -> None:
    """page-boundary-dropped leaves a run out of a walk. Only order shows it: the run was there before the
    walk began. The suite's own recording has no times and observe misses it (docs/observe-table.md);
    mitmdump's HAR has them, and the same HAR without them must again order nothing."""
    har, untimed = tmp_path / "timed.har", tmp_path / "untimed.har"
    with serve("page-boundary-dropped") as url:
        summary = _record(driver, url, har)
    assert summary["walked"] < 5, summary  # the walk did miss a run
    document = json.loads(har.read_text(encoding="utf-8"))
    for entry in document["log"]["entries"]:
        del entry["startedDateTime"]
    untimed.write_text(json.dumps(document), encoding="utf-8")

    code, rows = _observe(har, tmp_path / "timed")
    assert "CONC-011" in _violated(rows) and code == 1, _violated(rows)
    code, rows = _observe(untimed, tmp_path / "untimed")
    assert _violated(rows) == set() and code == 0, _violated(rows)


@pytest.mark.slow  # mitmdump: the first use installs it (tests/support/foreign.py), which only CI's main job should
def test_mitmproxys_compressed_har_export_and_a_gzipped_har_are_read(tmp_path: Path) -> None:
    """mitmdump compresses its HAR export with zlib when the name ends in .zhar; a HAR (or NDJSON log) kept
    gzipped is as common. Both are read as the document they hold, not as lines of binary."""
    zhar = tmp_path / "reference.zhar"
    run = {"clientId": "zhar", "workflow": {"name": "zhar", "steps": [{"id": "a", "action": "noop"}]}}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        serve_in_thread(create_app(tokens=TOKENS)) as url,
        recording_proxy(url, zhar) as proxy,
        httpx.Client(base_url=proxy, headers=auth, timeout=10) as client,
    ):
        first = client.post("/api/v1/runs", json=run, headers={"Idempotency-Key": "zhar-1"})
        replay = client.post("/api/v1/runs", json=run, headers={"Idempotency-Key": "zhar-1"})
        client.get(f"/api/v1/runs/{first.json()['runId']}")
    assert first.status_code == 202 and replay.json()["runId"] == first.json()["runId"]
    document = zlib.decompress(zhar.read_bytes())  # what mitmdump wrote is zlib, not JSON text
    gzipped = tmp_path / "reference.har.gz"
    gzipped.write_bytes(gzip.compress(document))

    for recording in (zhar, gzipped):
        code, rows = _observe(recording, tmp_path / recording.name.replace(".", "-"))
        assert code == 0, recording
        report = json.loads((tmp_path / recording.name.replace(".", "-") / "conformance.json").read_text())
        assert report["reason"].startswith("observed 3 exchanges") and "unreadable" not in report["reason"], report
        assert rows["CONC-001"]["status"] == "passed" and rows["CONC-001"]["evaluations"] > 0, rows["CONC-001"]


def _entry(number: int) -> dict[str, Any]:
    body = json.dumps({"runId": f"run-{number}", "status": "queued", "padding": "x" * (number % 97)})
    return {
        "startedDateTime": f"2026-12-06T12:{number // 60 % 60:02}:{number % 60:02}.{number % 1000:03}Z",
        "time": 3.5,
        "request": {"method": "GET", "url": f"http://127.0.0.1:9/api/v1/runs/run-{number}", "headers": []},
        "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": body}},
    }


def test_compressed_recordings_stream_in_chunks_and_a_cut_one_keeps_what_came_before(tmp_path: Path) -> None:
    """A recording many times the reader's chunk, compressed: zlib and gzip give every entry the plain file
    gives, in order; a compressed file cut short yields the entries before the cut, then one error."""
    document = json.dumps({"log": {"version": "1.2", "entries": [_entry(n) for n in range(3000)]}}, indent=4)
    plain, zhar, gzipped = tmp_path / "t.har", tmp_path / "t.zhar", tmp_path / "t.har.gz"
    plain.write_text(document, encoding="utf-8")
    zhar.write_bytes(zlib.compress(document.encode(), 9))
    gzipped.write_bytes(gzip.compress(document.encode()))
    # Many chunks of the reader's 64 KiB out, each input chunk yielding more than one: the tail is fed back.
    assert len(document) > 8 * (1 << 16) and len(document) > 4 * len(zhar.read_bytes())
    expected = list(read_traffic(plain, "t"))
    assert len(expected) == 3000 and all(isinstance(item, Recorded) for item in expected)
    assert list(read_traffic(zhar, "t")) == expected
    assert list(read_traffic(gzipped, "t")) == expected

    for name, data in (("cut.zhar", zhar.read_bytes()), ("cut.har.gz", gzipped.read_bytes())):
        cut = tmp_path / name
        cut.write_bytes(data[: len(data) // 2])
        read = list(read_traffic(cut, "t"))
        *good, last = read
        assert 0 < len(good) < 3000 and good == expected[: len(good)], (name, len(good))
        assert isinstance(last, ReadError) and last.where == "the file", (name, last)
