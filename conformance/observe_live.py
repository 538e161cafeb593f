"""Observe mode, live: `runs-conformance observe --listen HOST:PORT --upstream URL`.

    with LiveObserver(upstream, report_dir, events=events) as live, serve_proxy(live, "127.0.0.1", 0) as url:
        ...  # clients talk to `url`; each answer is judged as it comes, the history at each report

A reverse proxy built on mitmproxy (its addon API, run in-process on its own asyncio loop and
thread): mitmproxy forwards every request to the upstream as it came (the Host header names the
upstream, as any reverse proxy's) and the answer back as it came; a small addon (`_Tap`) turns each
finished flow into a `Recorded` exchange and queues it, which is all the proxy's own thread does for
us, so that judging never holds an answer up. One observer thread (`LiveObserver`) takes the queue:
it judges each answer alone at once and tells its findings (stdout lines and the `--events` stream),
and checks the history of everything seen so far, writing the same report files as offline observe,
every `report_every` seconds and on close (Ctrl-C, SIGTERM).

Why mitmproxy: HTTP parsing, keep-alive, chunked and compressed bodies and
upstream errors are handled by a proxy people run in front of real traffic every day, not by code
written here; its addon hooks (`response`, `error`) hand over each flow with its timestamps.

Times come from one clock, the proxy's: a request's interval runs from its first byte reaching the
proxy to the answer's last byte leaving the upstream, which holds the server's own handling, so the
history checker orders two exchanges only where the server must have too. Credentials: each
Authorization value is "credential N" in every output, and the optional recording (`record`) writes
the NDJSON of docs/observe.md with the Authorization value replaced by a stand-in per credential, so
the recording can be observed again offline (clients still told apart) and holds no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shlex
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from conformance.events import Events
from conformance.observe import UNREADABLE_NAME, Observer, _tell, report_of
from conformance.observe_traffic import Recorded
from conformance.redaction import REDACTED, redact_text
from conformance.report import write_reports
from conformance.results import RunReport

if TYPE_CHECKING:
    from mitmproxy import http

__all__ = ["INSTALL_HINT", "LiveObserver", "mitmproxy_missing", "serve_proxy"]

INSTALL_HINT = "the live proxy needs mitmproxy: pip install 'runs-conformance[observe]'"
SOURCE = "live"
# The proxy's clock is read to the microsecond; a millisecond more is room for the read itself.
_PRECISION = 0.001


def mitmproxy_missing() -> bool:
    try:
        import mitmproxy.master  # noqa: F401
    except ImportError:
        return True
    return False


def _headers(fields: Any) -> dict[str, str]:
    """mitmproxy's header fields (repeats kept) as one value a name, repeats joined as RFC 9110 §5.3 allows."""
    found: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _text(message: http.Message) -> tuple[str | None, bool]:
    """The body as text after any Content-Encoding; (None, True) when empty, (None, False) when not kept."""
    if message.raw_content is None:
        return None, False  # streamed past mitmproxy: not held, so unknown
    text = message.get_text(strict=False)
    return (text or None), True


def _recorded(flow: http.HTTPFlow, number: int) -> Recorded:
    request, response = flow.request, flow.response
    peer = flow.client_conn.peername
    request_body, request_known = _text(request)
    started = request.timestamp_start
    if response is not None and flow.error is None:
        response_body, response_known = _text(response)
        ended = response.timestamp_end or time.time()
        return Recorded(
            source=SOURCE,
            where=f"exchange {number}",
            method=request.method.upper(),
            url=request.url,
            request_headers=_headers(request.headers.fields),
            request_body=request_body,
            status=response.status_code,
            response_headers=_headers(response.headers.fields),
            response_body=response_body,
            started=started,
            duration=max(0.0, ended - started),
            precision=_PRECISION,
            connection=f"{peer[0]}:{peer[1]}" if peer else None,
            credential=request.headers.get("authorization"),
            request_body_known=request_known,
            response_body_known=response_known,
        )
    # No answer from the upstream (refused, reset, timed out) or the client left: what mitmproxy sent the
    # client then is its own 502, never the server's answer.
    return Recorded(
        source=SOURCE,
        where=f"exchange {number}",
        method=request.method.upper(),
        url=request.url,
        request_headers=_headers(request.headers.fields),
        request_body=request_body,
        status=None,
        response_headers={},
        response_body=None,
        started=started,
        duration=None,
        precision=_PRECISION,
        connection=f"{peer[0]}:{peer[1]}" if peer else None,
        credential=request.headers.get("authorization"),
        request_body_known=request_known,
        response_body_known=False,
        error=str(flow.error) if flow.error is not None else "no answer",
    )


class _Tap:
    """The mitmproxy addon: each finished flow, answered or not, handed to the observer's queue."""

    def __init__(self, live: LiveObserver) -> None:
        self.live = live
        self.count = 0
        self.listening: list[tuple[str, int]] = []
        self.ready = threading.Event()

    def running(self) -> None:
        from mitmproxy import ctx

        master: Any = ctx.master
        server = master.addons.get("proxyserver")
        self.listening = [(str(a[0]), int(a[1])) for a in server.listen_addrs()]
        self.ready.set()

    def response(self, flow: http.HTTPFlow) -> None:
        self.count += 1
        self.live.put(_recorded(flow, self.count))

    def error(self, flow: http.HTTPFlow) -> None:
        # A flow whose answer came and then failed (the client left mid-body) had its response hook already.
        if flow.response is None or flow.response.timestamp_end is None:
            self.count += 1
            self.live.put(_recorded(flow, self.count))


@contextlib.contextmanager
def serve_proxy(live: LiveObserver, host: str, port: int, ready_timeout: float = 20.0) -> Iterator[str]:
    """Run the reverse proxy to `live.upstream` on HOST:PORT (0: any free port) until the block ends; yields
    the proxy's URL. Raises OSError when it cannot listen."""
    from mitmproxy import options
    from mitmproxy.addons import core, errorcheck, next_layer, proxyserver, tlsconfig
    from mitmproxy.master import Master

    tap = _Tap(live)
    check = errorcheck.ErrorCheck()
    holder: dict[str, Any] = {}
    failed: list[BaseException] = []

    async def main() -> None:
        opts = options.Options(
            mode=[f"reverse:{live.upstream}"],
            listen_host=host,
            listen_port=port,
        )
        # mitmproxy's own calls are untyped: held as Any, what they return is checked by use.
        master: Any = Master(opts)
        server: Any = proxyserver.Proxyserver
        # Only what a reverse proxy needs: every addon is called on every flow, and mitmdump's thirty
        # (blocking, replay, header rewriting, Alt-Svc rewriting...) would cost time and could change traffic.
        master.addons.add(
            core.Core(),
            server(),
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            tap,
            check,
        )
        # Connect upstream when a request has come, not when a client connects: a request the upstream
        # never answers (down, refusing) is then an exchange recorded without an answer, and the client
        # gets mitmproxy's 502, as behind any gateway, not a connection closed on it.
        master.options.update(connection_strategy="lazy")
        holder["master"] = master
        await master.run()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # its ErrorCheck ends a failed start with SystemExit
            failed.append(exc)
        finally:
            tap.ready.set()

    thread = threading.Thread(target=thread_main, name="observe-proxy", daemon=True)
    thread.start()
    tap.ready.wait(ready_timeout)
    if not tap.listening:
        thread.join(1.0)
        logged = [r.getMessage().splitlines()[0] for r in check.logger.has_errored]
        why = logged[0] if logged else repr(failed[0]) if failed else "it never started"
        raise OSError(f"the proxy could not listen on {host}:{port}: {why}")
    try:
        bound_host, bound_port = tap.listening[0]
        shown = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        yield f"http://{shown if port else bound_host}:{bound_port}"
    finally:
        holder["master"].shutdown()
        thread.join(10.0)


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
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.report_dir = report_dir
        self.events = events
        self.out = out
        self.report_every = report_every
        self.command = command or f"runs-conformance observe --upstream {shlex.quote(self.upstream)}"
        self.observer = Observer([f"{SOURCE} ({self.upstream})"])
        self.observer.seen.read_from = f"live traffic to {self.upstream}"
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.clock = time.monotonic()
        self.report: RunReport | None = None
        self.reports_written = 0
        self._queue: queue.SimpleQueue[Recorded | None] = queue.SimpleQueue()
        self._told: set[tuple[str, str]] = set()
        self._record = record.open("w", encoding="utf-8") if record is not None else None
        self._stand_ins: dict[str, str] = {}
        self._closed: RunReport | None = None
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

    def put(self, item: Recorded) -> None:
        """Called on the proxy's thread: only a queue put, so no answer waits for judging."""
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

    def _take(self, item: Recorded) -> None:
        for rid, evidence in self.observer.add(item):
            self._tell(rid, evidence.message)
        if self._record is not None:
            self._record.write(json.dumps(self._line(item), ensure_ascii=False) + "\n")
            self._record.flush()

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
        write_reports(report, self.report_dir, secrets=seen.secrets)
        stale = self.report_dir / UNREADABLE_NAME
        if stale.exists():
            stale.unlink()  # an offline observation's: a live one reads no file
        self.report = report
        self.reports_written += 1
        if final and self.events is not None:
            _tell_rows(self.events, report, seen.secrets)
        elif self.events is not None:
            self.events.info(f"report written to {self.report_dir}: {redact_text(report.reason, self._secrets())}")
        return report


def _tell_rows(events: Events, report: RunReport, secrets: list[str]) -> None:
    """The final report's rows and run_finished, as offline observe tells them (its findings were told already)."""

    class _NoFindings(Events):
        def emit(self, kind: str, report: RunReport | None = None, **data: Any) -> None:
            if kind not in ("run_started", "finding"):
                events.emit(kind, report, **data)

    from conformance.observe import Observation

    _tell(_NoFindings(), report, Observation([], secrets=secrets))
