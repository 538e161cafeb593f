"""Progress on stderr: one line per finished check, and a heartbeat so a long check never looks hung.

On a terminal a live line shows the running check and its elapsed time; elsewhere (CI logs,
pipes) each finished check gets one line, and a check still running after `heartbeat_s`
prints "still running" lines at that interval.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, heartbeat_s: float = 10.0, quiet: bool = False):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.heartbeat_s = heartbeat_s
        self.quiet = quiet
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self._current: str | None = None
        self._started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_started = time.monotonic()

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
    def start(self, name: str) -> None:
        with self._lock:
            self._current = name
            self._started = time.monotonic()
            if self._tty and not self.quiet:
                self._live()
        if self._thread is None and not self.quiet:
            self._thread = threading.Thread(target=self._beat, name="runs-conformance-heartbeat", daemon=True)
            self._thread.start()

    def finish(self, name: str, outcome: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self._started
        with self._lock:
            self.done += 1
            self._current = None
            if self.quiet:
                return
            self._clear()
            suffix = f"  {detail}" if detail else ""
            width = len(str(self.total))
            print(
                f"[{self.done:>{width}}/{self.total}] {outcome:<7} {name} ({elapsed:.1f} s){suffix}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._clear()

    # --- internals -------------------------------------------------------------------------------
    def _beat(self) -> None:
        interval = 1.0 if self._tty else self.heartbeat_s
        last_beat = time.monotonic()
        while not self._stop.wait(min(interval, 1.0)):
            with self._lock:
                if self._current is None:
                    continue
                now = time.monotonic()
                if self._tty:
                    self._live()
                elif now - last_beat >= self.heartbeat_s and now - self._started >= self.heartbeat_s:
                    last_beat = now
                    print(
                        f"  … still running {self._current} ({now - self._started:.0f} s; "
                        f"{self.done}/{self.total} checks done, {now - self._run_started:.0f} s in all)",
                        file=self.stream,
                        flush=True,
                    )

    def _live(self) -> None:
        if self._current is None:
            return
        elapsed = time.monotonic() - self._started
        text = f"[{self.done + 1}/{self.total}] running {self._current} ({elapsed:.0f} s)"
        self.stream.write("\r\033[K" + text)
        self.stream.flush()

    def _clear(self) -> None:
        if self._tty and not self.quiet:
            self.stream.write("\r\033[K")
