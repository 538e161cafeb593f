"""The mitmproxy addon of `runs-conformance observe --listen`: loaded by `mitmdump -s` in mitmdump's own Python.

    mitmdump --mode reverse:URL -q -s observe_addon.py --set rc_traffic=FILE --set rc_ready=FILE

It imports only the standard library and mitmproxy, never `conformance`: it runs in whatever Python
mitmdump was installed with (pipx, mitmproxy.org's binaries, a venv of its own), which holds neither
the suite nor its dependencies, and the suite's Python holds no mitmproxy. Its whole job is to write:
each finished flow, answered or not, is one line of docs/observe.md's NDJSON appended to `rc_traffic`
and flushed at once, for the suite (conformance/observe_live.py) to tail and judge; and once the proxy
listens, the addresses it listens on are written to `rc_ready` (mitmdump's `-q` says nothing, and a
port of 0 is only known once bound). Judging stays out of mitmdump's event loop, so no answer waits on it.

The line carries the token as sent: the file is the suite's private one (0600, in a private folder,
deleted on close), and the credential is what tells clients apart.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import IO, Any

from mitmproxy import ctx, http


def _headers(fields: Any) -> dict[str, str]:
    """Header fields (repeats kept) as one value a name, repeats joined as RFC 9110 §5.3 allows."""
    found: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _instant(seconds: float) -> str:
    # timezone.utc, not datetime.UTC: mitmdump's Python may be 3.10, which mitmproxy 11.0 still runs on.
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds")  # noqa: UP017


def _body(line: dict[str, Any], name: str, message: http.Message) -> None:
    """The body as text after any Content-Encoding; null when empty, left out when mitmproxy did not hold it."""
    if message.raw_content is None:
        return  # streamed past mitmproxy: unknown, which is not empty
    line[name] = message.get_text(strict=False) or None


def flow_line(flow: http.HTTPFlow) -> dict[str, Any]:
    """One flow in docs/observe.md's NDJSON shape; `status` null and `error` set when no answer came."""
    request, response = flow.request, flow.response
    peer = flow.client_conn.peername
    line: dict[str, Any] = {
        "time": _instant(request.timestamp_start),
        "method": request.method.upper(),
        "url": request.url,
        "connection": f"{peer[0]}:{peer[1]}" if peer else None,
        "request_headers": _headers(request.headers.fields),
    }
    _body(line, "request_body", request)
    if response is not None and flow.error is None:
        ended = response.timestamp_end or request.timestamp_start
        line["duration_ms"] = round(max(0.0, ended - request.timestamp_start) * 1000, 3)
        line["status"] = response.status_code
        line["response_headers"] = _headers(response.headers.fields)
        _body(line, "response_body", response)
    else:
        # Refused, reset, timed out upstream, or the client left: what mitmproxy sent the client then is
        # its own 502, never the server's answer.
        line["status"] = None
        line["error"] = str(flow.error) if flow.error is not None else "no answer"
    return line


class ObserveTap:
    def __init__(self) -> None:
        self.stream: IO[str] | None = None

    def load(self, loader: Any) -> None:
        loader.add_option("rc_traffic", str, "", "runs-conformance: append each finished flow here as NDJSON")
        loader.add_option("rc_ready", str, "", "runs-conformance: write the listening addresses here once bound")

    def configure(self, updated: set[str]) -> None:
        if "rc_traffic" in updated:
            if self.stream is not None:
                self.stream.close()
                self.stream = None
            if ctx.options.rc_traffic:
                fd = os.open(ctx.options.rc_traffic, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self.stream = os.fdopen(fd, "a", encoding="utf-8")

    def running(self) -> None:
        if not ctx.options.rc_ready:
            return
        master: Any = ctx.master  # mitmproxy's calls are untyped
        server = master.addons.get("proxyserver")
        addresses = [[str(a[0]), int(a[1])] for a in server.listen_addrs()]
        # Written whole, then renamed: the suite never reads half of it.
        partial = ctx.options.rc_ready + ".partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"listening": addresses}, out)
        os.replace(partial, ctx.options.rc_ready)

    def response(self, flow: http.HTTPFlow) -> None:
        self._write(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        # A flow whose answer came whole and then failed (the client left) had its response hook already.
        if flow.response is None or flow.response.timestamp_end is None:
            self._write(flow)

    def _write(self, flow: http.HTTPFlow) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(flow_line(flow), ensure_ascii=False) + "\n")
            self.stream.flush()

    def done(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


addons = [ObserveTap()]
