"""Timestamps: RFC 3339 UTC with microseconds, and a clock that never runs backwards."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

# A seam for tests: anything that returns an aware UTC datetime.
WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """`2026-11-28T10:00:00.123456Z`: fixed width, so timestamps also sort as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class MonotonicTimestamps:
    """Hands out timestamps that never go below the last one handed out.

    The wall clock may step back (NTP, a VM resumed); `createdAt` must still be non-decreasing in
    creation order, because listings order by it, and `startedAt`/`finishedAt` must never precede
    the run's earlier timestamps. A stepped-back clock stalls here until it catches up.
    """

    def __init__(self, clock: WallClock = utc_now, floor: datetime | None = None) -> None:
        self._clock = clock
        self._last = floor
        self._lock = threading.Lock()

    def raise_floor(self, floor: datetime) -> None:
        with self._lock:
            if self._last is None or floor > self._last:
                self._last = floor

    def now(self) -> str:
        with self._lock:
            moment = self._clock()
            if self._last is not None and moment < self._last:
                moment = self._last
            self._last = moment
            return format_timestamp(moment)
