"""What a run says as it goes: typed events, and the listeners that consume them.

The runner's stages emit events; the progress line, the console summary and the NDJSON stream
(--events) are listeners. An event's `data` is plain JSON; `report` rides along on run_finished
for listeners in this process (docs/results-format.md documents each event).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from conformance.results import RunReport

__all__ = ["EVENT_KINDS", "Event", "Events", "Listener", "NdjsonWriter"]

# Every kind of event, in the order a run emits them (finding and requirement repeat).
EVENT_KINDS = (
    "run_started",  # seed, profile, selected requirements, checks to run
    "info",  # one line for people (the server started, the session clientId, cleanup)
    "check_started",  # check
    "finding",  # requirement, check, message (one per failure a check recorded)
    "check_finished",  # check, outcome, duration_s, message
    "requirement",  # id, level, status, evaluations, message
    "run_finished",  # verdict, exit_code, reason, counts, duration_s
)


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # wall-clock seconds since the epoch
    report: RunReport | None = None  # run_finished only; never serialised


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...


class Events:
    """The run's event bus. Emits in order, from any thread, one event at a time."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self.listeners = list(listeners)
        self._lock = threading.Lock()

    def emit(self, kind: str, report: RunReport | None = None, **data: Any) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event = Event(kind, data, report=report)
        with self._lock:
            for listener in self.listeners:
                listener(event)

    def info(self, text: str) -> None:
        self.emit("info", message=text)


class NdjsonWriter:
    """One JSON object per line, flushed as it happens: `{"event": kind, "at": ..., **data}`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        record = {"event": event.kind, "at": round(event.at, 3), **event.data}
        self.stream.write(json.dumps(record, ensure_ascii=True, default=str) + "\n")
        self.stream.flush()
