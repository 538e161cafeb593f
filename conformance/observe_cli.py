"""`runs-conformance observe TRAFFIC...` and `observe --listen HOST:PORT --upstream URL`: the command line of
observe mode (conformance/observe.py; live: conformance/observe_live.py).

Exit codes: 0 no violation seen (never "conformant": the summary says what was observed), 1 a
violation was seen, 2 a usage error, nothing at all readable in the files given, or (live) no
`mitmdump` program found, the address not free, or mitmdump ending by itself (the report of what
was seen before is still written).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["HISTORY_LIMIT", "add_arguments", "run"]

# Measured at 5 kB an exchange with small pages and 16 kB with a quarter of 50-run pages (docs/observe.md,
# "History segments"): 0.3 to 0.9 GB. Four minutes at 200 requests a second, so a retry or a walk seldom
# straddles a boundary, and CONC-003 (judged in the first segment only, of a complete recording) sees a good part.
HISTORY_LIMIT = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "traffic",
        nargs="*",
        metavar="TRAFFIC",
        help="recorded traffic: a HAR 1.2 file, the suite's exchanges.jsonl, or NDJSON (docs/observe.md)",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="judge live: a reverse proxy listening here that forwards every request to --upstream "
        "(needs mitmproxy's mitmdump program: pipx install mitmproxy)",
    )
    parser.add_argument(
        "--mitmdump",
        metavar="PATH",
        default=os.environ.get("RUNS_MITMDUMP"),
        help="with --listen: the mitmdump program to run ($RUNS_MITMDUMP; default: mitmdump on PATH)",
    )
    parser.add_argument("--upstream", metavar="URL", help="with --listen: the server the proxy forwards to")
    parser.add_argument(
        "--report-every",
        metavar="SECONDS",
        type=float,
        default=60.0,
        help="with --listen: check the history and write the reports this often (default 60); also on exit",
    )
    parser.add_argument(
        "--history-limit",
        metavar="N",
        type=int,
        help=f"with --listen: check the history in segments of N exchanges, so memory stays bounded (default "
        f"{HISTORY_LIMIT}); earlier segments' findings are kept (CONC-003 is judged in the first only)",
    )
    parser.add_argument(
        "--upstream-ca",
        metavar="FILE",
        help="with --listen and an https --upstream: also trust this CA (PEM; a self-signed certificate itself)",
    )
    parser.add_argument(
        "--record",
        metavar="FILE",
        help="with --listen: also write the exchanges as NDJSON (docs/observe.md; tokens replaced by "
        "'credential N'), to observe them again offline",
    )
    parser.add_argument(
        "--report-dir",
        metavar="DIR",
        default=os.environ.get("RUNS_REPORT_DIR", "reports"),
        help="where the reports go ($RUNS_REPORT_DIR; default reports)",
    )
    parser.add_argument(
        "--clock-skew",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="how far apart the clocks that stamped the recording may be (several gateway nodes): no order "
        "closer than this is trusted (default 0: one clock)",
    )
    parser.add_argument(
        "--key-retention",
        metavar="SECONDS",
        default="86400",
        help="how long the server may keep an Idempotency-Key: a use of a key later than that after its first "
        "use is not judged against the others (default 86400, a day; 'forever' for a server that never "
        "forgets one)",
    )
    parser.add_argument(
        "--complete-recording",
        action="store_true",
        help="the traffic holds every request the server got, from its start (a fresh server reached only "
        "through the recorder): only then are 409s without a cause in the traffic judged (CONC-003, CONC-004)",
    )
    parser.add_argument(
        "--events",
        metavar="FILE",
        help="also write the events (run_started, finding, requirement, run_finished) as NDJSON to FILE (- for stdout)",
    )


def _open(path: Path) -> TextIO:
    from conformance.config import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the events to {path}: {exc.strerror or exc}") from None


def _key_retention(text: str) -> float | None:
    """Seconds (a finite number above 0), or None for `forever`."""
    from conformance.config import UsageError

    if text.strip().lower() == "forever":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"--key-retention {text!r} is not a number of seconds above 0, nor 'forever'")
    return seconds


def run(args: argparse.Namespace) -> int:
    from conformance.config import UsageError

    if args.listen is not None or args.upstream is not None:
        return _run_live(args)
    if not args.traffic:
        raise UsageError("give the recorded traffic (TRAFFIC...), or --listen HOST:PORT --upstream URL to judge live")
    if args.record is not None:
        raise UsageError("--record is for --listen: recorded files are already recorded")
    if args.history_limit is not None or args.upstream_ca is not None:
        # A recording is judged whole: its size is the user's choice, and a segment boundary would cost the
        # CONC-003 judgements after it. A file too large is split by the user, where they choose.
        raise UsageError("--history-limit and --upstream-ca are for --listen: a recording is judged whole")
    return _run_files(args)


def _run_files(args: argparse.Namespace) -> int:
    from conformance.config import UsageError
    from conformance.events import Events, NdjsonWriter
    from conformance.observe import observe

    paths = [Path(p) for p in args.traffic]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    if not 0 <= args.clock_skew < 3600:
        raise UsageError(f"--clock-skew {args.clock_skew} is not a number of seconds from 0 to 3600")
    key_retention = _key_retention(args.key_retention)
    command = "runs-conformance observe " + " ".join(shlex.quote(p) for p in args.traffic)
    with contextlib.ExitStack() as outputs:
        events = None
        if args.events is not None:
            stream = sys.stdout if args.events == "-" else outputs.enter_context(_open(Path(args.events)))
            events = Events([NdjsonWriter(stream)])
        report, seen = observe(
            paths,
            Path(args.report_dir),
            command,
            events,
            args.clock_skew,
            key_retention,
            complete=args.complete_recording,
        )
    for error in seen.errors:
        print(f"runs-conformance: unreadable: {error}", file=sys.stderr)
    people = sys.stderr if args.events == "-" else sys.stdout  # stdout is the events' then
    for row in report.requirements:
        if row.evidence:
            print(f"{row.status.value.upper():8} {row.id}: {row.message}", file=people)
    print(f"observe: {report.reason}", file=people)
    print(f"report: {Path(args.report_dir) / 'conformance.json'}", file=people)
    return report.exit_code


def _listen_address(text: str) -> tuple[str, int]:
    from conformance.config import UsageError

    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--listen {text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _upstream(text: str | None) -> str:
    from urllib.parse import urlsplit

    from conformance.config import UsageError

    if text is None:
        raise UsageError("--listen needs --upstream URL: the server to forward to")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--upstream {text!r} is not an http or https URL")
    if parts.path.strip("/") or parts.query:
        # mitmproxy's reverse mode forwards each path as it came, to the upstream's origin only.
        raise UsageError(f"--upstream {text!r}: give the origin only (scheme, host, port); paths go as requested")
    return text.rstrip("/")


def _run_live(args: argparse.Namespace) -> int:
    """Serve the proxy until Ctrl-C or SIGTERM, then write the report; exit as offline observe does."""
    import signal

    from conformance.config import UsageError
    from conformance.events import Events, NdjsonWriter
    from conformance.observe_live import INSTALL_HINT, LiveObserver, find_mitmdump, serve_proxy
    from conformance.redaction import redact_text

    if args.listen is None:
        raise UsageError("--upstream is for --listen HOST:PORT")
    if args.traffic:
        raise UsageError("--listen judges live traffic: give no TRAFFIC files with it")
    host, port = _listen_address(args.listen)
    upstream = _upstream(args.upstream)
    if not 0 < args.report_every <= 86400:
        raise UsageError(f"--report-every {args.report_every} is not a number of seconds from 0 to 86400")
    history_limit = HISTORY_LIMIT if args.history_limit is None else args.history_limit
    if history_limit < 1:
        raise UsageError(f"--history-limit {args.history_limit} is not a number of exchanges of 1 or more")
    upstream_ca = None if args.upstream_ca is None else Path(args.upstream_ca)
    if upstream_ca is not None and not upstream_ca.is_file():
        raise UsageError(f"--upstream-ca {args.upstream_ca}: no such file")
    if upstream_ca is not None and not upstream.startswith("https://"):
        raise UsageError(f"--upstream-ca is for an https upstream; {upstream} is plain http")
    key_retention = _key_retention(args.key_retention)
    mitmdump = find_mitmdump(args.mitmdump)
    if mitmdump is None:
        named = f"{args.mitmdump!r} (--mitmdump, $RUNS_MITMDUMP) is not a program; " if args.mitmdump else ""
        raise UsageError(named + INSTALL_HINT)
    people = sys.stderr if args.events == "-" else sys.stdout
    command = f"runs-conformance observe --listen {shlex.quote(args.listen)} --upstream {shlex.quote(upstream)}"

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the proxy as Ctrl-C does: the report is written first

    # SIGINT too: a shell starts a background job with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt; `kill -INT` must still end the proxy with its report.
    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as outputs:
            events = None
            if args.events is not None:
                stream = sys.stdout if args.events == "-" else outputs.enter_context(_open(Path(args.events)))
                events = Events([NdjsonWriter(stream)])
            live = LiveObserver(
                upstream,
                Path(args.report_dir),
                events=events,
                out=people,
                record=None if args.record is None else Path(args.record),
                report_every=args.report_every,
                command=command,
                history_limit=history_limit,
                warnings=sys.stderr,
                key_retention=key_retention,
                complete=args.complete_recording,
            )
            with live:
                try:
                    with serve_proxy(live, host, port, mitmdump, upstream_ca=upstream_ca) as url:
                        print(f"observe: {url} forwards to {upstream}; Ctrl-C or SIGTERM stops it", file=people)
                        print(
                            f"observe: the report is written to {args.report_dir} every {args.report_every:g} s "
                            "and on exit",
                            file=people,
                            flush=True,
                        )
                        live.proxy_ended.wait()
                        print(f"runs-conformance: {live.proxy_ended_why}", file=sys.stderr, flush=True)
                except KeyboardInterrupt:
                    pass
                except OSError as exc:
                    live.discard()
                    raise UsageError(str(exc)) from None
            report = live.close()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    secrets = tuple(sorted(live.observer.identities.secrets, key=len, reverse=True))
    for row in report.requirements:
        if row.evidence:
            print(f"{row.status.value.upper():8} {row.id}: {redact_text(row.message, secrets)}", file=people)
    print(f"observe: {redact_text(report.reason, secrets)}", file=people)
    print(f"report: {Path(args.report_dir) / 'conformance.json'}", file=people)
    # The proxy dying is no clean end of an observation, whatever was seen before it did.
    return max(report.exit_code, 2) if live.proxy_ended.is_set() else report.exit_code
