"""Observe mode, live: `runs-conformance observe --listen HOST:PORT --upstream URL`.

    with LiveObserver(upstream, report_dir, events=events) as live, serve_proxy(live, "127.0.0.1", 0) as url:
        ...  # clients talk to `url`; each answer is judged as it comes, the history at each report

The reverse proxy is mitmproxy's own program, `mitmdump`, run as a process of its own with a small
addon script (conformance/observe_addon.py, loaded with `-s`): mitmdump forwards every request to
the upstream as it came (the Host header names the upstream, as any reverse proxy's) and the answer
back as it came, and the addon appends each finished flow to a private file as one line of
docs/observe.md's NDJSON. A thread here tails that file, reads each line with the offline NDJSON
reader (conformance/observe_traffic.py) and hands the exchange to the observer thread
(`LiveObserver`): it judges each answer alone at once and tells its findings (stdout lines and the
`--events` stream), and checks the history of everything seen so far, writing the same report files
as offline observe, every `report_every` seconds and on close (Ctrl-C, SIGTERM).

Why mitmproxy: HTTP parsing, keep-alive, chunked and compressed bodies and upstream errors are
handled by a proxy people run in front of real traffic every day, not by code written here. Why as a
program and not a library: mitmproxy pins its own dependencies (11.0.2, the last for Python 3.11,
pins h11<=0.14, whose request smuggling CVE-2025-43859 the suite's uvicorn and httpcore must not get
back, and a ruamel.yaml that check-jsonschema cannot share), so it lives in an environment of its
own (pipx, mitmproxy.org's binaries, a venv) and the suite finds `mitmdump` as a program.

Times come from one clock, mitmdump's: a request's interval runs from its first byte reaching the
proxy to the answer's last byte leaving the upstream, which holds the server's own handling, so the
history checker orders two exchanges only where the server must have too. Credentials: the traffic
file holds the tokens as sent (they tell clients apart), so it is 0600 in a private folder and
deleted on close, whatever happens; each Authorization value is "credential N" in every output, and
the optional recording (`record`) writes the NDJSON of docs/observe.md with the Authorization value
replaced by a stand-in per credential, so it can be observed again offline (clients still told
apart) and holds no token.

mitmdump's own folder (its CA, made at start) is one inside the session's private folder, not
~/.mitmproxy: two sessions starting at once would otherwise both write the CA there. A request the
upstream never answered (refused, a certificate not trusted) gets mitmproxy's own 502, which the addon
records as no answer: it is not the server's and is never judged, so the observer says once per
reason, on `warnings` and as an event, why the upstream was not reached. Memory is bounded by the
observer's `history_limit` (conformance/observe.py `Observer`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from conformance.events import Events
from conformance.observe import UNREADABLE_NAME, Observer, report_of, tell_outcome
from conformance.observe_retention import DEFAULT_RETENTION
from conformance.observe_traffic import ReadError, Recorded, read_line
from conformance.redaction import REDACTED, redact_text
from conformance.report import write_reports
from conformance.results import RunReport

__all__ = ["ADDON", "INSTALL_HINT", "LiveObserver", "find_mitmdump", "mitmdump_command", "serve_proxy"]

INSTALL_HINT = (
    "the live proxy needs mitmproxy's mitmdump program: pipx install mitmproxy (or mitmproxy.org's binaries, "
    "or pip install mitmproxy in a venv of its own), then put it on PATH or give --mitmdump PATH ($RUNS_MITMDUMP)"
)
SOURCE = "live"
ADDON = Path(__file__).resolve().with_name("observe_addon.py")
# mitmdump's clock is read to the microsecond; a millisecond more is room for the read itself.
_PRECISION = 0.001
_LOGGED = re.compile(r"^\[[0-9:.]+\] (.+)$")
_POLL = 0.005  # how often the tail looks for new lines when there were none: what a finding may wait
_REASONS_TOLD = 20  # distinct reasons an upstream was not reached said on stderr; the rest are alike


def find_mitmdump(given: str | None = None) -> str | None:
    """`mitmdump`: the path given (--mitmdump), else $RUNS_MITMDUMP, else on PATH; None when there is none."""
    named = given or os.environ.get("RUNS_MITMDUMP")
    if named:
        found = shutil.which(named) if os.sep not in named else named
        return found if found and os.access(found, os.X_OK) and Path(found).is_file() else None
    return shutil.which("mitmdump")


def mitmdump_command(
    mitmdump: str,
    upstream: str,
    host: str,
    port: int,
    traffic: Path,
    ready: Path,
    confdir: Path,
    upstream_ca: Path | None = None,
) -> list[str]:
    """mitmdump as a quiet reverse proxy to `upstream` with the addon writing `traffic` and `ready`, its
    configuration and CA in `confdir`, trusting `upstream_ca` (a PEM file) for an https upstream."""
    trust = [] if upstream_ca is None else ["--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}"]
    return [
        mitmdump,
        "--mode",
        f"reverse:{upstream}",
        "--listen-host",
        host,
        "--listen-port",
        str(port),
        "-q",
        "-s",
        str(ADDON),
        "--set",
        f"rc_traffic={traffic}",
        "--set",
        f"rc_ready={ready}",
        # Connect upstream when a request has come, not when a client connects: a request the upstream
        # never answers (down, refusing) is then an exchange recorded without an answer, and the client
        # gets mitmproxy's 502, as behind any gateway, not a connection closed on it.
        "--set",
        "connection_strategy=lazy",
        # mitmdump's default drops clients from public addresses (it guards an open forward proxy); a
        # reverse proxy in front of a deployment is there for exactly those clients.
        "--set",
        "block_global=false",
        # Its own folder, in the session's private one: mitmdump makes a CA there at start, and two sessions
        # starting at once with the default (~/.mitmproxy, when it does not exist yet) would both write one
        # CA's files; nothing is then left in the user's home either, and no config.yaml of theirs applies.
        "--set",
        f"confdir={confdir}",
        *trust,
    ]


class _Tail:
    """The thread that reads the addon's file as it grows and hands each exchange to the observer."""

    def __init__(self, live: LiveObserver, path: Path, log: Path) -> None:
        self.live = live
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = False  # set before we stop mitmdump ourselves: its end is then no news
        self.count = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.stream = path.open("rb")
        self.pending = b""
        self.thread = threading.Thread(target=self._run, name="observe-tail", daemon=True)

    def _run(self) -> None:
        try:
            while True:
                if self.drain():
                    continue
                if self.stop.is_set():
                    self.drain()  # mitmdump has ended: what it wrote last is read before the file goes
                    return
                self._watch()
                self.stop.wait(_POLL)
        finally:
            self.stream.close()

    def _watch(self) -> None:
        """mitmdump ending by itself (killed, crashed) ends the command: serving nothing, it would judge nothing."""
        if self.stopping or self.process is None or self.live.proxy_ended.is_set():
            return
        code = self.process.poll()
        if code is not None:
            said = _last_words(self.log)
            self.live.proxy_ended_why = f"mitmdump ended by itself (exit {code})" + (f": {said}" if said else "")
            self.live.proxy_ended.set()

    def drain(self) -> bool:
        """Read the file to its current end and hand over each whole line; False when there was nothing new.
        Also called by `LiveObserver.close`: every answer a client has had is in the file, as the addon
        writes the line before mitmdump sends the answer on, so none is left out of the final report."""
        with self.lock:
            if self.stream.closed:
                return False
            chunk = self.stream.read()
            if not chunk:
                return False
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    self._take(line.decode("utf-8", errors="replace"))
            return True

    def _take(self, line: str) -> None:
        self.count += 1
        item = read_line(line, SOURCE, f"exchange {self.count}")
        if isinstance(item, ReadError):
            self.live.put(item)  # said in the report as an unreadable exchange, never silently dropped
            return
        error = None
        if item.status is None:
            with contextlib.suppress(ValueError, AttributeError):
                error = str(json.loads(line).get("error") or "no answer")
        self.live.put(dataclasses.replace(item, precision=_PRECISION, error=error))


@contextlib.contextmanager
def serve_proxy(
    live: LiveObserver,
    host: str,
    port: int,
    mitmdump: str | None = None,
    ready_timeout: float = 30.0,
    upstream_ca: Path | None = None,
) -> Iterator[str]:
    """Run mitmdump as the reverse proxy to `live.upstream` on HOST:PORT (0: any free port) until the block
    ends; yields the proxy's URL. `upstream_ca`: a PEM file of the CA (or the self-signed certificate) an
    https upstream's certificate is verified against, besides the system's. Raises FileNotFoundError (with
    INSTALL_HINT) when there is no mitmdump, OSError when it cannot listen."""
    program = find_mitmdump(mitmdump)
    if program is None:
        raise FileNotFoundError(INSTALL_HINT)
    private = Path(tempfile.mkdtemp(prefix="rc-observe-"))  # 0700: the traffic holds real tokens
    tail: _Tail | None = None
    process: subprocess.Popen[bytes] | None = None
    try:
        traffic, ready, log = private / "traffic.ndjson", private / "ready.json", private / "mitmdump.log"
        confdir = private / "mitmproxy"
        confdir.mkdir(mode=0o700)
        os.close(os.open(traffic, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        tail = _Tail(live, traffic, log)
        tail.thread.start()
        live.drain = tail.drain
        with log.open("wb") as output:
            process = subprocess.Popen(
                mitmdump_command(program, live.upstream, host, port, traffic, ready, confdir, upstream_ca),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        tail.process = process
        listening = _wait_ready(process, ready, log, ready_timeout, f"{host}:{port}")
        bound_host, bound_port = listening[0]
        shown = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        yield f"http://{shown if port else bound_host}:{bound_port}"
    finally:
        # Whatever ended the block (a failed start too): mitmdump stopped, its last lines read, the file gone.
        if tail is not None:
            tail.stopping = True
        if process is not None:
            _stop(process)
        if tail is not None:
            tail.stop.set()
            tail.thread.join()
        live.drain = None
        shutil.rmtree(private, ignore_errors=True)


def _wait_ready(
    process: subprocess.Popen[bytes], ready: Path, log: Path, timeout: float, where: str
) -> list[tuple[str, int]]:
    """The addresses mitmdump listens on, once its addon says so; OSError when it ends first or never does."""
    deadline = time.monotonic() + timeout
    while True:
        if ready.exists():
            found = json.loads(ready.read_text(encoding="utf-8"))["listening"]
            return [(str(h), int(p)) for h, p, *_ in found]
        ended = process.poll()
        if ended is not None or time.monotonic() > deadline:
            said = _last_words(log)
            why = said or (f"mitmdump ended with {ended}" if ended is not None else f"not within {timeout:g} s")
            raise OSError(f"the proxy could not listen on {where}: {why}")
        time.sleep(0.01)


def _last_words(log: Path) -> str:
    """What mitmdump logged last: its own log lines ("[12:00:00.123] ...") before the generic farewell on
    stderr ("Error logged during startup, exiting..."), which says nothing of why."""
    lines = [x.strip() for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    logged = [found.group(1) for x in lines if (found := _LOGGED.match(x))]
    return logged[-1] if logged else lines[-1] if lines else ""


def _stop(process: subprocess.Popen[bytes], patience: float = 10.0) -> None:
    """SIGINT (mitmdump's own orderly stop, which finishes the flows in hand), then SIGTERM, then kill."""
    for stop in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is None:
            process.send_signal(stop)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(patience / 2)
            return
    process.kill()
    process.wait()


class LiveObserver:
    """The observer thread: judges what the proxy queues, tells findings as they come, writes the reports."""

    def __init__(
        self,
        upstream: str,
        report_dir: Path,
        *,
        events: Events | None = None,
        out: TextIO | None = None,
        record: Path | None = None,
        report_every: float | None = None,
        command: str = "",
        history_limit: int | None = None,
        warnings: TextIO | None = None,
        key_retention: float | None = DEFAULT_RETENTION,
        complete: bool = False,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.report_dir = report_dir
        self.events = events
        self.out = out
        self.report_every = report_every
        self.command = command or f"runs-conformance observe --upstream {shlex.quote(self.upstream)}"
        self.observer = Observer(
            [f"{SOURCE} ({self.upstream})"],
            history_limit=history_limit,
            key_retention=key_retention,
            complete=complete,
        )
        self.warnings = warnings  # where "a request got no answer from the upstream" goes (stderr)
        self._unreached: set[str] = set()
        self.observer.seen.read_from = f"live traffic to {self.upstream}"
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.clock = time.monotonic()
        self.report: RunReport | None = None
        self.reports_written = 0
        self._queue: queue.SimpleQueue[Recorded | ReadError | None] = queue.SimpleQueue()
        self._told: set[tuple[str, str]] = set()
        self._record = record.open("w", encoding="utf-8") if record is not None else None
        self._stand_ins: dict[str, str] = {}
        self._closed: RunReport | None = None
        # Set by serve_proxy while the proxy runs: reads what the proxy has written and not yet been handed over.
        self.drain: Callable[[], bool] | None = None
        # Set when mitmdump ends while it should serve, with why (its last words): the command stops then.
        self.proxy_ended = threading.Event()
        self.proxy_ended_why = ""
        self._thread = threading.Thread(target=self._loop, name="observe-judge", daemon=True)

    def __enter__(self) -> LiveObserver:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        if self.events is not None:
            self.events.emit(
                "run_started",
                banner=f"runs-conformance observe, live: judging the traffic to {self.upstream}",
                seed=0,
                profile="observe",
                checks=1,
                selected=[],
            )
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def put(self, item: Recorded | ReadError) -> None:
        """Called on the tail's thread: only a queue put, so reading the traffic never waits for judging."""
        self._queue.put(item)

    def discard(self) -> None:
        """Stop without a report: the proxy never ran (its address was taken), so there is nothing to say."""
        self._closed = self.report or report_of(self.observer.observation(), self.command, self.started_at, 0.0)
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._record is not None:
            self._record.close()

    def close(self) -> RunReport:
        """Judge what is queued, check the history, write the final report and tell its rows (once)."""
        if self._closed is None:
            if self.drain is not None:
                self.drain()
            if self._thread.is_alive():
                self._queue.put(None)
                self._thread.join()
            if self._record is not None:
                self._record.close()
            self._closed = self.write_report(final=True)
        return self._closed

    def _loop(self) -> None:
        due = None if self.report_every is None else time.monotonic() + self.report_every
        while True:
            timeout = None if due is None else max(0.0, due - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = False  # type: ignore[assignment]
            if item is None:
                return
            if item:
                self._take(item)
            if due is not None and time.monotonic() >= due:
                self.write_report(final=False)
                due = time.monotonic() + (self.report_every or 0.0)

    def _secrets(self) -> tuple[str, ...]:
        return tuple(sorted(self.observer.identities.secrets, key=len, reverse=True))

    def _take(self, item: Recorded | ReadError) -> None:
        if isinstance(item, Recorded) and item.status is None:
            self._unreachable(item.error or "no answer")
        for rid, evidence in self.observer.add(item):
            self._tell(rid, evidence.message)
        if self._record is not None and isinstance(item, Recorded):
            self._record.write(json.dumps(self._line(item), ensure_ascii=False) + "\n")
            self._record.flush()

    def _unreachable(self, why: str) -> None:
        """Say once per reason that a request got no answer from the upstream (refused, a certificate not
        trusted): the client then had mitmproxy's own 502, which is never judged as the server's, so without
        this line nothing would say why the report holds no answer of it."""
        if why in self._unreached or len(self._unreached) >= _REASONS_TOLD:
            return
        self._unreached.add(why)
        hint = " (give --upstream-ca FILE to trust its certificate's CA)" if "certificate" in why.lower() else ""
        # "No answer", not "unreachable": a client that left before the answer is recorded the same way.
        text = (
            f"a request got no answer from the upstream {self.upstream}: {why}{hint}; what its client got, if "
            "anything, was the proxy's own 502, not judged as the server's"
        )
        if self.warnings is not None:
            print(f"runs-conformance: {text}", file=self.warnings, flush=True)
        if self.events is not None:
            self.events.info(text)

    def _tell(self, rid: str, message: str) -> None:
        if (rid, message) in self._told:
            return
        self._told.add((rid, message))
        text = redact_text(message, self._secrets())
        if self.out is not None:
            print(f"VIOLATED {rid}: {text}", file=self.out, flush=True)
        if self.events is not None:
            self.events.emit("finding", requirement=rid, check="observe", message=text)

    def _line(self, item: Recorded) -> dict[str, Any]:
        """The exchange in docs/observe.md's NDJSON shape, its Authorization value a stand-in per credential."""
        secrets = self._secrets()

        def scrub(headers: dict[str, str]) -> dict[str, str]:
            found = {}
            for name, value in headers.items():
                if name.lower() == "authorization":
                    label = self.observer.identities.credential(value)
                    scheme = value.strip().split(" ", 1)[0] if " " in value.strip() else "Bearer"
                    value = self._stand_ins.setdefault(label, f"{scheme} {REDACTED} {label}")
                found[name] = redact_text(value, secrets)
            return found

        def body(text: str | None) -> str | None:
            return None if text is None else redact_text(text, secrets)

        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(item.started or 0.0, UTC).isoformat(timespec="microseconds"),
            "method": item.method,
            "url": redact_text(item.url, secrets),
            "status": item.status,
            "connection": item.connection,
            "request_headers": scrub(dict(item.request_headers)),
            "response_headers": scrub(dict(item.response_headers)),
        }
        if item.duration is not None:
            line["duration_ms"] = round(item.duration * 1000, 3)
        if item.request_body_known:
            line["request_body"] = body(item.request_body)
        if item.response_body_known:
            line["response_body"] = body(item.response_body)
        return line

    def write_report(self, final: bool) -> RunReport:
        """Check the history of everything seen so far and write the report files; tell the new findings."""
        seen = self.observer.observation()
        report = report_of(seen, self.command, self.started_at, round(time.monotonic() - self.clock, 3))
        for row in report.requirements:
            for evidence in row.evidence:
                self._tell(row.id, evidence.message)
        # What is told is what the report holds: the evidence a history limit drops is never told again
        # (its segment is gone), so the set stays as bounded as the report.
        self._told &= {(row.id, evidence.message) for row in report.requirements for evidence in row.evidence}
        write_reports(report, self.report_dir, secrets=seen.secrets)
        stale = self.report_dir / UNREADABLE_NAME
        if stale.exists():
            stale.unlink()  # an offline observation's: a live one reads no file
        self.report = report
        self.reports_written += 1
        if final and self.events is not None:
            tell_outcome(self.events, report, seen.secrets)
        elif self.events is not None:
            self.events.info(f"report written to {self.report_dir}: {redact_text(report.reason, self._secrets())}")
        return report
