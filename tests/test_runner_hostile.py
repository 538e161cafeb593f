"""Against servers that are not a working Runs API the suite ends within its timeouts, cleanly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.hostile_servers import hostile_server

from conformance.cli import main

TOKEN = "rc-hostile-token-0123456789"


@pytest.mark.parametrize(
    ("behaviour", "needle"),
    [
        ("hang", "did not answer within"),
        ("garbage", "cannot reach"),
        ("reset", "cannot reach"),
        ("error500", "answered 500"),
        ("huge", "not a Runs API"),
        ("html", "text/html"),
    ],
)
def test_preflight_stops_a_broken_server_with_exit_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, behaviour: str, needle: str
) -> None:
    started = time.monotonic()
    with hostile_server(behaviour) as url:
        code = main(
            ["run", "--base-url", url, "--token", TOKEN, "--request-timeout", "1", "--report-dir", str(tmp_path)]
        )
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 3, err
    assert elapsed < 15
    assert needle in err
    assert "Traceback" not in out + err
    assert TOKEN not in out + err
    report = json.loads((tmp_path / "conformance.json").read_text())
    assert report["verdict"] == "unreachable"
    assert needle in report["reason"]
    assert "\n" not in report["reason"]
    assert TOKEN not in json.dumps(report)


def test_a_server_that_hangs_after_preflight_fails_within_the_timeouts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    with hostile_server("preflight_then_hang") as url:
        code = main(
            [
                "run", "--base-url", url, "--token", TOKEN, "--request-timeout", "0.5", "--timeout", "1",
                "--report-dir", str(tmp_path), "--profile", "quick",
                "--select", "auth", "errors", "schemathesis_get_run", "schemathesis_stateful",
            ]
        )  # fmt: skip
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 1, err
    assert elapsed < 120
    assert "Traceback" not in out + err
    report = json.loads((tmp_path / "conformance.json").read_text())
    assert report["verdict"] == "not_conformant"
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses["ERR-001"] == "failed"
    # The check of AUTH-001 got no answer at all: the server's failure is ERR-001's; AUTH-001 itself was
    # never verified, and says so (a hang is not evidence of a 401 either way).
    auth = next(r for r in report["requirements"] if r["id"] == "AUTH-001")
    assert auth["status"] == "not_run" and "did not answer properly" in auth["message"], auth
    assert "error" not in statuses.values(), [r for r in report["requirements"] if r["status"] == "error"]
