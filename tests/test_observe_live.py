"""Observe mode, live: the reverse proxy (conformance/observe_live.py) between a client and a server.

Each test serves an app on a loopback port, puts the proxy (mitmdump with conformance/observe_addon.py)
in front of it and drives it with httpx (or the suite itself): answers through the proxy must be the
server's, and what the proxy judges must be what offline observe would: nothing against the reference
server, the fault's ID against a fault. mitmdump comes from tests/support/foreign.py (on PATH, or
installed on first use into tools/mitmproxy/venv, under a lock: CI's fast jobs on two Pythons run
these at the same time in one checkout); where it cannot be had they skip, and fail under CI.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from support.foreign import mitmdump
from support.harness import quick_args, run_suite_at
from support.servers import fault
from support.tokens import OTHER_TOKEN, TOKEN, TOKENS
from support.tooling import free_port

from conformance.cli import main
from conformance.events import Event, Events
from conformance.observe import observe
from conformance.observe_live import LiveObserver, serve_proxy
from conformance.results import RunReport, Status, Verdict
from reference_impl.app import create_app
from reference_impl.serve import serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
BODY = {"clientId": "live-test", "workflow": {"name": "etl", "version": "1", "steps": [{"id": "a", "action": "noop"}]}}


def _violated(report: RunReport) -> set[str]:
    return {r.id for r in report.requirements if r.status in (Status.FAILED, Status.WARNING)}


class _Heard:
    """The events the live observer emits, kept in order with the time each came."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def findings(self) -> set[str]:
        return {str(e.data["requirement"]) for e in self.events if e.kind == "finding"}

    def wait_for(self, rid: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rid in self.findings():
                return True
            time.sleep(0.05)
        return False


@contextlib.contextmanager
def _proxy(tmp_path: Path, app: Any = None, **options: Any) -> Iterator[tuple[str, str, LiveObserver, _Heard]]:
    """(server URL, proxy URL, observer, events heard): `app` (None: the reference) served, the proxy in front
    of it, a report every 0.3 s; `options` go to LiveObserver."""
    heard = _Heard()
    program = mitmdump()
    with serve_in_thread(app or create_app(tokens=TOKENS)) as upstream:
        live = LiveObserver(
            upstream,
            tmp_path / "reports",
            events=Events([heard]),
            record=tmp_path / "recorded.ndjson",
            report_every=0.3,
            **options,
        )
        with live, serve_proxy(live, "127.0.0.1", 0, program) as url:
            yield upstream, url, live, heard


@pytest.fixture
def proxied(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, LiveObserver, _Heard]]:
    """_proxy for the app the test names (None: the reference)."""
    with _proxy(tmp_path, getattr(request, "param", None)) as running:
        yield running


def _session(client: httpx.Client, base: str) -> list[tuple[int, Any, str | None]]:
    """One client's short session: start a run, replay its key, read it, revalidate its definition, list."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    key = {"Idempotency-Key": f"live-{uuid.uuid4()}", **auth}
    seen: list[tuple[int, Any, str | None]] = []

    def keep(answer: httpx.Response) -> httpx.Response:
        seen.append((answer.status_code, answer.json() if answer.content else None, answer.headers.get("etag")))
        return answer

    started = keep(client.post(f"{base}/api/v1/runs", json=BODY, headers=key))
    run_id = started.json()["runId"]
    keep(client.post(f"{base}/api/v1/runs", json=BODY, headers=key))
    keep(client.get(f"{base}/api/v1/runs/{run_id}", headers=auth))
    definition = keep(client.get(f"{base}/api/v1/runs/{run_id}/definition", headers=auth))
    revalidate = {"If-None-Match": definition.headers["etag"], **auth}
    keep(client.get(f"{base}/api/v1/runs/{run_id}/definition", headers=revalidate))
    keep(client.get(f"{base}/api/v1/runs", params={"clientId": "live-test", "limit": 2}, headers=auth))
    keep(client.get(f"{base}/api/v1/runs/no-such-run-{uuid.uuid4()}", headers=auth))
    keep(client.get(f"{base}/api/v1/runs", headers={"Authorization": f"Bearer {OTHER_TOKEN}"}))
    keep(client.get(f"{base}/api/v1/runs"))  # no credential: 401
    return seen


def test_answers_through_the_proxy_are_the_servers_and_a_clean_session_shows_no_violation(
    proxied: tuple[str, str, LiveObserver, _Heard], tmp_path: Path
) -> None:
    upstream, url, live, heard = proxied
    with httpx.Client() as client:
        direct = _session(client, upstream)
        through = _session(client, url)
    # What can differ between two sessions of a correct server is the run itself (its ID, its times):
    # the statuses and ETags' presence and every body's members must be the server's.
    assert [s for s, _, _ in through] == [s for s, _, _ in direct] == [202, 202, 200, 200, 304, 200, 404, 200, 401]
    assert [sorted(b) if isinstance(b, dict) else b for _, b, _ in through] == [
        sorted(b) if isinstance(b, dict) else b for _, b, _ in direct
    ]
    assert through[0][1]["runId"] == through[1][1]["runId"]  # the replay reached the server with its key
    assert through[3][2] == through[4][2] is not None  # the 304 carries the definition's ETag
    report = live.close()
    assert _violated(report) == set(), [r.message for r in report.requirements if r.evidence]
    assert report.exit_code == 0 and report.verdict is Verdict.INCOMPLETE
    rows = {r.id: r for r in report.requirements}
    for rid in ("SCHEMA-002", "ERR-002", "AUTH-003", "ETAG-005", "CONC-001"):
        assert rows[rid].status is Status.PASSED and rows[rid].evaluations > 0, rows[rid]
    assert f"observed {len(through)} exchanges" in report.reason and "2 credential" in report.reason
    assert heard.events[0].kind == "run_started" and heard.events[-1].kind == "run_finished"
    assert not heard.findings()
    written = [(tmp_path / "reports" / n).read_text(encoding="utf-8") for n in ("conformance.json", "junit.xml")]
    events = json.dumps([e.data for e in heard.events], default=str)
    recorded = (tmp_path / "recorded.ndjson").read_text(encoding="utf-8")
    for text in [*written, events, recorded]:
        assert TOKEN not in text and OTHER_TOKEN not in text
    # The recording is docs/observe.md's NDJSON: observed again offline, it shows what the proxy saw.
    again, seen = observe([tmp_path / "recorded.ndjson"], tmp_path / "again")
    assert _violated(again) == set() and seen.exchanges == len(through) and seen.credentials == 2, again.reason
    assert seen.untimed == 0 and not seen.errors


@pytest.mark.parametrize(
    ("proxied", "rid"),
    [
        # One answer alone shows it: told as the answer passes.
        (fault("schema-missing-field").build(TOKENS), "SCHEMA-002"),
        # Two answers together show it: told at the next history check (every 0.3 s here).
        (fault("idem-key-ignored").build(TOKENS), "CONC-001"),
        (fault("etag-unstable").build(TOKENS), "CONC-012"),
    ],
    indirect=["proxied"],
    ids=["schema-missing-field", "idem-key-ignored", "etag-unstable"],
)
def test_a_fault_is_told_while_the_proxy_runs_and_reported_on_exit(
    proxied: tuple[str, str, LiveObserver, _Heard], rid: str, tmp_path: Path
) -> None:
    _, url, live, heard = proxied
    with httpx.Client() as client:
        _session(client, url)
    assert heard.wait_for(rid), heard.findings()  # before close: streamed, not only in the final report
    report = live.close()
    assert rid in _violated(report) and report.exit_code == 1, report.reason
    evidence = next(r for r in report.requirements if r.id == rid).evidence[0]
    assert "live" in evidence.message and "exchange " in evidence.message and evidence.exchanges
    assert all(TOKEN not in json.dumps(x.request_headers) for x in evidence.exchanges)
    saved = RunReport.read(tmp_path / "reports" / "conformance.json")
    assert rid in _violated(saved)


def test_a_session_longer_than_the_history_limit_keeps_what_its_first_segment_showed(tmp_path: Path) -> None:
    # Nine exchanges in segments of four: the key that got two runs is in the first, and still in the report.
    with _proxy(tmp_path, fault("idem-key-ignored").build(TOKENS), history_limit=4) as (_, url, live, heard):
        with httpx.Client() as client:
            _session(client, url)
        report = live.close()
    assert live.observer.segments == 3 and max(len(b.operations) for b in live.observer.builders.values()) < 4
    assert "CONC-001" in _violated(report) and "CONC-001" in heard.findings(), report.reason


def test_the_suites_own_run_through_the_proxy_stays_conformant_and_shows_no_violation(tmp_path: Path) -> None:
    # About 5 to 8 s: the quick profile's idempotency, ETag, pagination and lifecycle checks through the proxy.
    program = mitmdump()
    with serve_in_thread(create_app(tokens=TOKENS)) as upstream:
        live = LiveObserver(upstream, tmp_path / "observed")
        with live, serve_proxy(live, "127.0.0.1", 0, program) as url:
            areas = ["idempotency", "etag", "pagination", "lifecycle"]
            run = run_suite_at(url, *quick_args(areas), report_dir=tmp_path / "run")
        report = live.close()
    assert run.exit_code == 0 and run.report is not None and run.report["verdict"] == "conformant", run.explain()
    assert _violated(report) == set(), [r.message for r in report.requirements if r.evidence]
    rows = {r.id: r for r in report.requirements}
    assert rows["CONC-001"].evaluations > 0 and rows["ETAG-005"].evaluations > 0 and rows["PAGE-009"].evaluations > 0


def test_the_addon_imports_only_the_standard_library_and_mitmproxy() -> None:
    # It runs in mitmdump's own Python (pipx, mitmproxy.org's binaries), where neither the suite nor its
    # dependencies are installed: one import of either would stop mitmdump from loading it.
    tree = ast.parse((ROOT / "conformance" / "observe_addon.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    foreign = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names | {"__future__", "mitmproxy"}}
    assert imported and foreign == set(), foreign


def test_without_mitmdump_listen_names_how_to_install_it_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("RUNS_MITMDUMP", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no mitmdump on it, as where it is not installed
    code = main(["observe", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "pipx install mitmproxy" in err and len(err.strip().splitlines()) == 1, err
    # A path given that is no program is said as such, with the same way out.
    code = main(["observe", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--mitmdump", "/no/such"])
    err = capsys.readouterr().err
    assert code == 2 and "'/no/such'" in err and "pipx install mitmproxy" in err and len(err.strip().splitlines()) == 1


class _Command:
    """The README's command, running as a user runs it: its process, the URL clients send to, its output."""

    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process = process
        self.base = base
        self.out = self.err = ""

    def mitmdump(self) -> int:
        (child,) = _children(self.process.pid)
        return child

    def stop(self, how: signal.Signals = signal.SIGTERM, pid: int | None = None) -> int:
        """Send `how` (to the command, or to `pid`) and wait for the command's end and all it printed."""
        os.kill(pid or self.process.pid, how)
        self.out, self.err = self.process.communicate(timeout=20)
        return self.process.returncode


@contextlib.contextmanager
def _command(upstream: str, tmp_path: Path, *options: str) -> Iterator[_Command]:
    """`runs-conformance observe --listen 127.0.0.1:PORT --upstream URL` with its reports, --record file and
    temporary files under tmp_path, mitmdump via $RUNS_MITMDUMP, and HOME a folder of its own (tmp_path/home,
    empty: as on a machine where mitmproxy never ran), once it listens."""
    for folder in ("tmp", "home"):
        (tmp_path / folder).mkdir()
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "conformance.cli",
        "observe",
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        upstream,
        "--report-dir",
        str(tmp_path),
        "--record",
        str(tmp_path / "live.ndjson"),
        *options,
    ]
    env = {
        **os.environ,
        "RUNS_MITMDUMP": mitmdump(),
        "TMPDIR": str(tmp_path / "tmp"),
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        running = _Command(process, f"http://127.0.0.1:{port}")
        _wait_listening(running.base, process)
        yield running
    finally:
        if process.poll() is None:
            # SIGTERM first: the command then stops its mitmdump, which a kill would leave running.
            process.terminate()
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def test_an_address_taken_is_one_line_naming_why_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # mitmdump says why on its log line and ends with a farewell that says nothing: the line must be the why.
    monkeypatch.setenv("RUNS_MITMDUMP", mitmdump())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "observe",
                "--listen",
                f"127.0.0.1:{port}",
                "--upstream",
                "http://127.0.0.1:9",
                "--report-dir",
                str(tmp_path / "r"),
            ]
        )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"could not listen on 127.0.0.1:{port}" in err and "address already in use" in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no traffic folder left behind


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()]


def test_the_command_serves_until_sigterm_and_then_writes_the_report(tmp_path: Path) -> None:
    # The README's command, as a user runs it: findings on stdout as they come, the report on SIGTERM.
    with serve_in_thread(fault("schema-missing-field").build(TOKENS)) as upstream, _command(upstream, tmp_path) as run:
        child = run.mitmdump()
        with httpx.Client() as client:
            _session(client, run.base)
        code = run.stop()
    assert code == 1, (run.out, run.err)
    assert "SCHEMA-002" in run.out and "observe:" in run.out and TOKEN not in run.out + run.err, (run.out, run.err)
    assert "SCHEMA-002" in _violated(RunReport.read(tmp_path / "conformance.json"))
    assert TOKEN not in (tmp_path / "live.ndjson").read_text(encoding="utf-8")
    # mitmdump was stopped with it, and its traffic file (real tokens) and its CA are not left behind,
    # nor put in the user's home: each session has its own mitmproxy folder (no two write one CA at once).
    assert not Path(f"/proc/{child}").exists() and list((tmp_path / "tmp").iterdir()) == []
    assert list((tmp_path / "home").iterdir()) == []


def test_when_mitmdump_dies_the_command_says_so_writes_what_it_saw_and_exits_2(tmp_path: Path) -> None:
    # A proxy that serves nothing judges nothing: the command must not sit there as if it were observing.
    with serve_in_thread(fault("schema-missing-field").build(TOKENS)) as upstream, _command(upstream, tmp_path) as run:
        with httpx.Client() as client:
            _session(client, run.base)
        code = run.stop(signal.SIGKILL, pid=run.mitmdump())
    assert code == 2, (run.out, run.err)
    assert "mitmdump ended by itself" in run.err and "SCHEMA-002" in run.out, (run.out, run.err)
    assert "SCHEMA-002" in _violated(RunReport.read(tmp_path / "conformance.json"))
    assert list((tmp_path / "tmp").iterdir()) == []


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, made by the openssl command line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a certificate for the https upstream")
    cert, key = folder / "upstream-cert.pem", folder / "upstream-key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def _serve_https(cert: Path, key: Path) -> Iterator[str]:
    """The reference server over TLS on a free loopback port; yields its https URL once it accepts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(tokens=TOKENS), log_level="warning", ssl_certfile=str(cert), ssl_keyfile=str(key)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the https server did not start"
            thread.join(0.02)
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_an_https_upstream_whose_ca_is_given_is_forwarded_to_and_judged(tmp_path: Path) -> None:
    # Clients speak plain HTTP to the proxy, the proxy TLS to the server, verifying its certificate.
    cert, key = _self_signed(tmp_path)
    with _serve_https(cert, key) as upstream, _command(upstream, tmp_path, "--upstream-ca", str(cert)) as run:
        with httpx.Client() as client:
            seen = _session(client, run.base)
        code = run.stop()
    assert [s for s, _, _ in seen] == [202, 202, 200, 200, 304, 200, 404, 200, 401], seen
    assert code == 0 and "no answer from the upstream" not in run.err, (run.out, run.err)
    report = RunReport.read(tmp_path / "conformance.json")
    # One more than the session's: the GET that found the proxy listening.
    assert _violated(report) == set() and f"observed {len(seen) + 1} exchanges" in report.reason, report.reason
    assert sum(r.evaluations for r in report.requirements) > 0
    assert {r.id for r in report.requirements if r.evaluations} >= {"SCHEMA-002", "ETAG-005", "CONC-001"}


def test_an_https_upstream_not_trusted_gets_the_proxys_502_which_is_not_judged_and_is_said(tmp_path: Path) -> None:
    # mitmdump verifies the upstream's certificate: without --upstream-ca it refuses this one and answers
    # the client 502 itself. That 502 is the proxy's: no ERR-001 (a server's 5xx), but the user is told why.
    cert, key = _self_signed(tmp_path)
    with _serve_https(cert, key) as upstream, _command(upstream, tmp_path) as run:
        answer = httpx.get(f"{run.base}/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        code = run.stop()
    assert answer.status_code == 502
    assert code == 0, (run.out, run.err)
    report = RunReport.read(tmp_path / "conformance.json")
    assert _violated(report) == set() and "observed 2 exchanges" in report.reason, report.reason  # and the probe
    assert {r.id: r for r in report.requirements}["ERR-001"].evaluations == 0
    said = [line for line in run.err.splitlines() if "no answer from the upstream" in line]
    assert len(said) == 1 and "certificate" in said[0].lower() and "--upstream-ca" in said[0], run.err


def test_an_upstream_ca_that_is_no_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listen = ["observe", "--listen", "127.0.0.1:0", "--upstream", "https://127.0.0.1:9"]  # judged before mitmdump
    code = main([*listen, "--upstream-ca", str(tmp_path / "no-such.pem")])
    err = capsys.readouterr().err
    assert code == 2 and "no-such.pem" in err and len(err.strip().splitlines()) == 1, err
    # Options of the live proxy given with recorded files are refused as --record is.
    recorded = tmp_path / "t.ndjson"
    recorded.write_text('{"method": "GET", "path": "/api/v1/runs"}\n', encoding="utf-8")
    for option in (["--history-limit", "10"], ["--upstream-ca", str(recorded)]):
        code = main(["observe", str(recorded), "--report-dir", str(tmp_path / "r"), *option])
        err = capsys.readouterr().err
        assert code == 2 and "for --listen" in err, err


def _wait_listening(base: str, proxy: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.poll() is not None:
            raise AssertionError(f"the proxy ended: {proxy.communicate()}")
        try:
            httpx.get(f"{base}/api/v1/runs", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the proxy never listened")


def test_a_request_the_upstream_never_answers_is_recorded_without_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens upstream: the client gets mitmproxy's 502, which is the proxy's, not the server's
    # (no ERR-001 5xx finding), and the request is still an exchange, with no answer.
    program = mitmdump()
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where the proxy's traffic file goes
    live = LiveObserver(f"http://127.0.0.1:{free_port()}", tmp_path, record=tmp_path / "recorded.ndjson")
    with live, serve_proxy(live, "127.0.0.1", 0, program) as url:
        answer = httpx.get(f"{url}/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        # The traffic file holds the token as sent: only its owner may read it, in a folder only they enter.
        (folder,) = private.iterdir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "traffic.ndjson").stat().st_mode) == 0o600
        assert TOKEN in (folder / "traffic.ndjson").read_text(encoding="utf-8")
    assert list(private.iterdir()) == []  # and it is gone once the proxy stops
    report = live.close()
    assert answer.status_code == 502
    assert live.observer.seen.exchanges == 1 and _violated(report) == set(), report.reason
    line = json.loads((tmp_path / "recorded.ndjson").read_text(encoding="utf-8"))
    assert line["status"] is None and line["request_headers"]["Authorization"] == "Bearer [redacted] credential 1"
