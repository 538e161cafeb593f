"""The disruption hook (--disrupt): the user's command run while the concurrent workload runs.

A restart, a failover or a rollout is where a server forgets what it promised (idempotency records
in a process's memory, a run a restarted worker drops). At `at` seconds into the workload the
user's shell command runs; the workload goes on meanwhile. When the command has ended, the server
is probed until it answers again (any answer below 500: a 502 from a proxy in front of a
restarting server is not the server), for at most `wait` seconds. Requests that failed from the
command's start until the server answered plus `grace` are indeterminate: they may or may not
have taken effect, and the user declared failures there tolerable (Disruption.window_end).

The command's output goes to a file, not a pipe: a command that starts a server in the background
(`kill PID; runs-reference-server ... &`) would otherwise hold the pipe open and the suite would
wait for that server to exit.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from conformance.history import Disruption, Operation

__all__ = ["OUTPUT_LIMIT", "PROBE_INTERVAL", "DisruptionPlan", "Disruptor", "judged"]

OUTPUT_LIMIT = 4000  # characters of the command's output kept for the report: its last ones, where errors are
PROBE_INTERVAL = 0.1  # seconds between probes: a restarted process answers within a few of them


@dataclass(frozen=True)
class DisruptionPlan:
    """What the user asked for (--disrupt, --disrupt-at, --disrupt-grace, --disrupt-wait); None: the default."""

    command: str
    at: float | None = None  # seconds into the workload; None: its middle
    grace: float | None = None  # None: twice the request timeout (a request sent just before the answer may time out)
    wait: float = 30.0

    def at_for(self, workload_seconds: float) -> float:
        return workload_seconds / 2 if self.at is None else self.at

    def grace_for(self, request_timeout: float) -> float:
        return 2 * request_timeout if self.grace is None else self.grace


class Disruptor:
    """Runs the plan on a thread of its own; `result` is the Disruption once `join` returns."""

    def __init__(
        self, plan: DisruptionPlan, *, at: float, grace: float, answers: Callable[[], bool], start: float
    ) -> None:
        self.plan = plan
        self._at = at
        self._grace = grace
        self._answers = answers
        self._start = start
        self.active = threading.Event()  # from the command's start until the server answers again
        self.result: Disruption | None = None
        self._thread = threading.Thread(target=self._run, name="rc-disrupt", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> Disruption | None:
        self._thread.join()
        return self.result

    def _run(self) -> None:
        delay = self._start + self._at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # a schedule, not a wait for anything: the command runs at --disrupt-at
        self.active.set()
        started = time.monotonic()
        exit_code, output = _shell(self.plan.command, self.plan.wait)
        ended = time.monotonic()
        answering = self._probe(ended + self.plan.wait)
        self.result = Disruption(
            command=self.plan.command,
            started=started,
            ended=ended,
            exit_code=exit_code,
            output=output,
            answering=answering,
            grace=self._grace,
            wait=self.plan.wait,
        )
        self.active.clear()

    def _probe(self, deadline: float) -> float | None:
        while True:
            if self._answers():
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            time.sleep(PROBE_INTERVAL)  # polling against the deadline above


def judged(op: Operation, disruption: Disruption, failed_at: float) -> Operation:
    """The operation, or if it failed inside the disruption's window, the same marked indeterminate.

    Failed: no answer (`failed_at` is when the client gave up), or a 5xx (failed when it came back).
    Any other answer is an answer, inside the window too: a 404 for a run the restart forgot is the
    very thing a disruption is there to show.
    """
    if op.completed is not None:
        if op.status is None or op.status < 500:
            return op
        failed_at = op.completed
    if not disruption.covers(failed_at):
        return op
    error = op.error or f"answered {op.status}"
    return dataclasses.replace(op, completed=None, status=None, body=None, etag=None, error=error, indeterminate=True)


def _shell(command: str, timeout: float) -> tuple[int | None, str]:
    """(exit code or None if killed after `timeout` s, the output's last OUTPUT_LIMIT characters)."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, shell=True, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return code, text[-OUTPUT_LIMIT:]
