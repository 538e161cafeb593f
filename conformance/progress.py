"""Progress on stderr, as a listener of the run's events: one line per finished check, a heartbeat
so a long check never looks hung, and the summary at the end.

On a terminal a live line shows the checks running now and for how long; elsewhere (CI logs,
pipes) each finished check gets one line, and checks still running after `heartbeat_s` print
"still running" lines at that interval. Lines that matter whatever --quiet says (the seed, the
verdict, the failures) are always shown.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from conformance.events import Event
from conformance.gate import unverified
from conformance.results import RunReport, Status

__all__ = ["Progress"]

_SHOWN_GAPS = 10


class Progress:
    def __init__(self, *, stream: TextIO | None = None, heartbeat_s: float = 10.0, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.heartbeat_s = heartbeat_s
        self.quiet = quiet
        self.total = 0
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}  # check -> when it started
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_started = time.monotonic()

    def __call__(self, event: Event) -> None:
        data = event.data
        if event.kind == "run_started":
            self.total = int(data.get("checks", 0))
            self.line(data["banner"])
        elif event.kind == "info":
            self.info(str(data["message"]))
        elif event.kind == "check_started":
            self._start(str(data["check"]))
        elif event.kind == "check_finished":
            self._finish(str(data["check"]), str(data["outcome"]), float(data["duration_s"]), str(data["message"]))
        elif event.kind == "run_finished":
            self.close()
            if event.report is not None:
                self.summary(event.report)

    # --- plain lines ----------------------------------------------------------------------
    def line(self, text: str) -> None:
        """A line that is always shown (seed, verdict), even when quiet."""
        with self._lock:
            self._clear()
            print(text, file=self.stream, flush=True)

    def info(self, text: str) -> None:
        if not self.quiet:
            self.line(text)

    # --- checks ------------------------------------------------------------------------------
    def _start(self, name: str) -> None:
        with self._lock:
            self._running[name] = time.monotonic()
            if self._tty and not self.quiet:
                self._live()
        if self._thread is None and not self.quiet:
            self._thread = threading.Thread(target=self._beat, name="runs-conformance-heartbeat", daemon=True)
            self._thread.start()

    def _finish(self, name: str, outcome: str, elapsed: float, detail: str) -> None:
        with self._lock:
            self.done += 1
            self._running.pop(name, None)
            if self.quiet:
                return
            self._clear()
            shown = detail.splitlines()[0][:160] if detail and outcome != "passed" else ""
            suffix = f"  {shown}" if shown else ""
            width = len(str(self.total))
            print(
                f"[{self.done:>{width}}/{self.total}] {outcome:<7} {name} ({elapsed:.1f} s){suffix}",
                file=self.stream,
                flush=True,
            )
            if self._tty:
                self._live()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._clear()

    # --- the summary -------------------------------------------------------------------------------
    def summary(self, report: RunReport) -> None:
        for req in report.requirements:
            if req.status in {Status.FAILED, Status.WARNING}:
                self.line(f"  {req.status.value.upper():<7} {req.id} ({req.level}) {req.message}")
                curl = next((x.curl for e in req.evidence for x in e.exchanges if x.curl), "")
                if curl:
                    self.line(f"          reproduce: {curl}")
                if req.rerun:
                    self.line(f"          rerun: {req.rerun}")
        for req in report.requirements:
            if req.status is Status.ERROR:
                self.line(f"  SUITE ERROR {req.id}: {req.message}")
        gaps = [r for r in unverified(report, report.strict) if r.status is not Status.ERROR]
        for req in gaps[:_SHOWN_GAPS]:
            self.line(f"  {req.status.value.upper().replace('_', ' '):<7} {req.id} ({req.level}) {req.message}")
        if len(gaps) > _SHOWN_GAPS:
            self.line(f"  … and {len(gaps) - _SHOWN_GAPS} more not verified (the report lists them)")
        if gaps:
            self.line("  to accept a gap on purpose, add its baseline entry (conformance.json: baseline_entry)")
        if report.coverage.responses:
            self.line(report.coverage.summary())
        counts = report.counts()
        shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        self.line(f"{report.verdict.value} (exit {report.exit_code}): {report.reason}")
        self.line(
            f"requirements: {shown}; cleanup: {report.cleanup.runs_cancelled} of "
            f"{report.cleanup.runs_started} runs cancelled, {len(report.cleanup.errors)} errors"
        )
        self.line(f"seed {report.seed} — replay with --seed {report.seed}")

    # --- internals -------------------------------------------------------------------------------
    def _beat(self) -> None:
        interval = 1.0 if self._tty else self.heartbeat_s
        last_beat = time.monotonic()
        while not self._stop.wait(min(interval, 1.0)):
            with self._lock:
                if not self._running:
                    continue
                now = time.monotonic()
                if self._tty:
                    self._live()
                    continue
                longest = min(self._running.values())
                if now - last_beat >= self.heartbeat_s and now - longest >= self.heartbeat_s:
                    last_beat = now
                    print(
                        f"  … still running {self._names(now)}; {self.done}/{self.total} checks done, "
                        f"{now - self._run_started:.0f} s in all",
                        file=self.stream,
                        flush=True,
                    )

    def _names(self, now: float) -> str:
        ordered = sorted(self._running.items(), key=lambda item: item[1])
        shown = [f"{name} ({now - started:.0f} s)" for name, started in ordered[:4]]
        more = f" and {len(ordered) - 4} more" if len(ordered) > 4 else ""
        return ", ".join(shown) + more

    def _live(self) -> None:
        if not self._running:
            return
        text = f"[{self.done}/{self.total}] running {self._names(time.monotonic())}"
        self.stream.write("\r\033[K" + text[:200])
        self.stream.flush()

    def _clear(self) -> None:
        if self._tty and not self.quiet:
            self.stream.write("\r\033[K")
