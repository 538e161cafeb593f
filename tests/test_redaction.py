"""A recognisable token, sent by the suite and echoed by a hostile server, reaches no report, log or curl line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.baseline import apply_baseline
from conformance.client import ApiClient, Recorder
from conformance.report import write_reports
from conformance.results import Evidence, RequirementResult, RunReport, Status, Verdict

TOKEN = "tok-SECRET-abc123"
OTHER = "tok-SECRET-other-789"


def assert_clean(directory: Path, *texts: str) -> None:
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files, "nothing was written"
    for path in files:
        content = path.read_text(encoding="utf-8")
        for secret in (TOKEN, OTHER):
            assert secret not in content, f"{secret} in {path.name}"
    for text in texts:
        for secret in (TOKEN, OTHER):
            assert secret not in text


def echoing_server(request: httpx.Request) -> httpx.Response:
    """A server that echoes the credential everywhere it can: body, headers, cookies, redirects."""
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ")
    return httpx.Response(
        500,
        headers={
            "Content-Type": "application/json",
            "X-Echo-Authorization": auth,
            "Set-Cookie": f"session={token}; HttpOnly",
            "Location": f"/login?token={token}",
        },
        content=json.dumps({"error": "boom", "you_sent": auth, "token": token}).encode(),
    )


def test_exchanges_recorded_through_the_client_leak_nothing(tmp_path: Path) -> None:
    recorder = Recorder(secrets=(TOKEN,))
    client = ApiClient(
        "http://runs.test", TOKEN, request_timeout=5, recorder=recorder, transport=httpx.MockTransport(echoing_server)
    )
    try:
        client.post("/api/v1/runs", json_body={"workflow": "quick", "note": f"body mentions {TOKEN}"})
        client.get("/api/v1/runs/x", headers={"Cookie": f"session={TOKEN}"})
    finally:
        client.close()
    exchanges = recorder.exchanges
    assert len(exchanges) == 2 and all(x.curl for x in exchanges)
    assert all("$RUNS_TOKEN" in x.curl for x in exchanges)
    report = RunReport(
        verdict=Verdict.NOT_CONFORMANT,
        exit_code=1,
        reason="ERR-001 failed",
        suite_version="0.1.0",
        spec_version="1.0.0",
        spec_sha256="0" * 64,
        base_url="http://runs.test",
        profile="quick",
        strict=False,
        seed=1,
        command="runs-conformance run --base-url http://runs.test --seed 1",
        started_at="2026-03-01T10:00:00+00:00",
        duration_s=1.0,
        requirements=[
            RequirementResult(
                id="ERR-001",
                level="MUST",
                area="errors",
                statement="No request, however malformed, gets a 5xx response.",
                citation="info.description",
                status=Status.FAILED,
                message="answered 500",
                evidence=[Evidence("no_5xx", "answered 500", exchanges, "Falsifying example: f()")],
                rerun="runs-conformance run --base-url http://runs.test --seed 1 --select ERR-001",
            )
        ],
    )
    apply_baseline(report, None, strict=False)
    write_reports(report, tmp_path)
    assert_clean(tmp_path)
    html = (tmp_path / "conformance.html").read_text()
    assert "[redacted]" in html and "boom" in html  # the evidence is there, only the token is not


def test_the_writers_scrub_what_a_recorder_let_through(tmp_path: Path) -> None:
    """Defence in depth: even an exchange recorded without redaction is written without the token."""
    from conformance.report._demo import demo_report

    report = demo_report()
    x = report.requirements[8].evidence[0].exchanges[0]  # ERR-001
    x.request_headers = {"Authorization": f"Bearer {TOKEN}", "Cookie": f"a={OTHER}"}
    x.response_headers = {"Set-Cookie": f"s={OTHER}"}
    x.curl = f"curl -H \"Authorization: Bearer {TOKEN}\" -H 'Proxy-Authorization: Basic {OTHER}' http://h/"
    x.response_body = f"echo {TOKEN} {OTHER}"
    report.command = f"runs-conformance run --token {TOKEN}"
    report.requirements[8].rerun = f"RUNS_TOKEN={TOKEN} runs-conformance run --select ERR-001"
    write_reports(report, tmp_path, secrets=[TOKEN, OTHER])
    assert_clean(tmp_path)
    # Header credentials are masked even when the writer is not told the secret.
    write_reports(report, tmp_path / "untold")
    for name in ("conformance.json", "junit.xml"):
        text = (tmp_path / "untold" / name).read_text()
        assert f"Bearer {TOKEN}" not in text and f"Basic {OTHER}" not in text


def test_a_token_in_the_url_is_redacted_by_the_client() -> None:
    recorder = Recorder(secrets=(TOKEN,))
    transport = httpx.MockTransport(echoing_server)
    client = ApiClient("http://runs.test", TOKEN, request_timeout=5, recorder=recorder, transport=transport)
    try:
        client.get(f"/api/v1/runs?clientId={TOKEN}")
    finally:
        client.close()
    [x] = recorder.exchanges
    assert TOKEN not in x.curl
    assert TOKEN not in x.url


def test_the_writers_redact_a_token_in_a_url_when_told_the_secrets(tmp_path: Path) -> None:
    from conformance.report._demo import demo_report

    report = demo_report()
    report.requirements[8].evidence[0].exchanges[0].url = f"http://h/api/v1/runs?clientId={TOKEN}"
    write_reports(report, tmp_path, secrets=[TOKEN])
    assert_clean(tmp_path)


def test_the_writers_redact_the_disrupt_command_and_its_output(tmp_path: Path) -> None:
    """--disrupt runs the user's text: a token in the command or what it printed stays out of the reports."""
    from conformance.report._demo import demo_report
    from conformance.results import TimelineEntry

    report = demo_report()
    command = f"kubectl --token={TOKEN} rollout restart deployment/runs"
    report.disruptions = [{"command": command, "exit_code": 0, "output": f"using {OTHER}"}]
    evidence = report.requirements[8].evidence[0]
    evidence.timeline = [TimelineEntry(0, -1, f"disrupt: {command}", 0.0, 5.0, None)]
    write_reports(report, tmp_path, secrets=[TOKEN, OTHER])
    assert_clean(tmp_path)


# --- end to end: the real command against the reference server -------------------------------------
@pytest.fixture
def leaky_reference_server() -> Iterator[str]:
    """The reference server, made to echo the caller's Authorization into every response and to
    answer cancels with a 500 that quotes it: failures with evidence, and a token to leak."""
    from reference_impl.app import create_app
    from reference_impl.serve import serve_in_thread

    inner = create_app([TOKEN, OTHER])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if scope["method"] == "POST" and scope["path"].endswith("/cancel"):
            body = json.dumps({"detail": f"cannot cancel for {auth.decode('latin-1')}"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        async def echo(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-echo-authorization", auth)]}
            await send(message)

        await inner(scope, receive, echo)

    with serve_in_thread(app) as url:
        yield str(url).rstrip("/")


@pytest.mark.slow
def test_a_real_run_leaks_the_token_nowhere(
    leaky_reference_server: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("conformance.runner")
    from conformance.cli import main

    monkeypatch.delenv("RUNS_TOKEN", raising=False)
    reports = tmp_path / "reports"
    code = main(
        [
            "run",
            "--base-url",
            leaky_reference_server,
            "--profile",
            "quick",
            "--seed",
            "7",
            "--token",
            TOKEN,
            "--other-token",
            OTHER,
            "--report-dir",
            str(reports),
            # The areas that use both credentials and the broken cancel; enough evidence, in seconds.
            "--select",
            "auth",
            "cancel",
            "--timeout",
            "5",
        ]
    )
    out, err = capfd.readouterr()
    assert code == 1, err[-2000:]
    report = RunReport.read(reports / "conformance.json")
    failed = [r for r in report.requirements if r.status is Status.FAILED]
    exchanges = [x for r in failed for e in r.evidence for x in e.exchanges]
    assert any(x.curl for x in exchanges), "no evidence to check"
    assert any("x-echo-authorization" in x.response_headers for x in exchanges), "the server did not echo"
    # Whatever the runner wrote, plus every report rendered from its results.
    write_reports(report, tmp_path / "rendered")
    assert_clean(tmp_path, out, err)
    assert "curl" in err or "curl" in out  # the log shows reproductions, without the token


def test_a_short_token_is_redacted_where_it_stands_alone_without_garbling_the_text() -> None:
    from conformance.redaction import redact_text

    text = 'GET http://127.0.0.1:8080/api/v1/runs {"token": "t"} Bearer t'
    assert (
        redact_text(text, ("t",)) == 'GET http://127.0.0.1:8080/api/v1/runs {"token": "[redacted]"} Bearer [redacted]'
    )
