"""Observe mode on traffic nobody here made: the generated TypeScript client, recorded by mitmproxy's HAR export.

tests/ts_client/observed.ts drives the typescript-axios client OpenAPI Generator makes from the spec
through `mitmdump --mode reverse:URL --set hardump=FILE` in front of the reference server and two
faulty servers; `runs-conformance observe FILE` then judges the HAR mitmproxy wrote. Neither the
client nor the recorder is the suite's, so this is the proof that observe reads real tools' traffic.
Needs Java, node, tools/node_modules and mitmdump (tests/support/foreign.py): missing tools skip
locally, fail in CI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.foreign import build_ts_driver, recording_proxy, run_checked
from support.servers import serve
from support.tokens import TOKEN, TOKENS
from support.tooling import ROOT

from conformance.cli import main
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


@pytest.mark.slow
def test_the_typescript_clients_traffic_through_mitmproxy_shows_no_violation_on_the_reference_server(
    driver: Path, tmp_path: Path
) -> None:
    with serve_in_thread(create_app(tokens=TOKENS)) as url:
        summary = _record(driver, url, tmp_path / "reference.har")
    # The traffic holds what observe judges across exchanges, answered as a correct server answers.
    assert summary["replaySameRun"] is True and summary["conflictStatus"] == 409, summary
    assert summary["revalidatedStatus"] == 304 and summary["mismatchedStatus"] == 200, summary
    assert summary["busyStatus"] == "cancelled" and summary["pages"] == 3 and summary["walked"] == 5, summary

    code, rows = _observe(tmp_path / "reference.har", tmp_path / "observed")
    assert _violated(rows) == set(), {rid: rows[rid]["message"] for rid in _violated(rows)}
    assert code == 0
    # Judged, not merely unbroken: each of these had instances in the TypeScript client's traffic.
    for rid in JUDGED:
        assert rows[rid]["status"] == "passed" and rows[rid]["evaluations"] > 0, rows[rid]


# What the reference recording must have judged: the answers alone, and the history's rules on a replay
# and a reuse of one key, a conditional GET each way, a cancel followed to its end, a whole walk.
JUDGED = ("SCHEMA-002", "ERR-002", "LIFE-003", "PAGE-009", "ETAG-004", "ETAG-005", "ETAG-006", "CONC-001")

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
