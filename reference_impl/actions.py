"""The step actions the executor knows: noop, sleep and fail, and how their params are checked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any


class StepFailed(Exception):
    """An action's way to fail its run; the message becomes the run's failure reason."""


@dataclass(frozen=True)
class Action:
    # Returns a message when the params are unusable (a 400 at startRun), else None.
    check: Callable[[Mapping[str, Any]], str | None]
    run: Callable[[Mapping[str, Any]], Awaitable[None]]


MAX_SLEEP_SECONDS = 3600


def _no_check(_params: Mapping[str, Any]) -> str | None:
    return None


async def _noop(_params: Mapping[str, Any]) -> None:
    # Yield once, so that even a run of many noops lets the loop serve requests in between.
    await asyncio.sleep(0)


def _check_sleep(params: Mapping[str, Any]) -> str | None:
    seconds = params.get("seconds")
    # bool is an int in Python but not a number in JSON.
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "params.seconds must be a number"
    if not 0 <= seconds <= MAX_SLEEP_SECONDS:
        return f"params.seconds must be between 0 and {MAX_SLEEP_SECONDS}"
    return None


async def _sleep(params: Mapping[str, Any]) -> None:
    # asyncio.sleep is cancelled at once, which is what makes a cancel of a sleeping run prompt.
    await asyncio.sleep(float(params["seconds"]))


async def _fail(params: Mapping[str, Any]) -> None:
    message = params.get("message")
    raise StepFailed(message if isinstance(message, str) else "the step's action is 'fail'")


DEFAULT_ACTIONS: Mapping[str, Action] = {
    "noop": Action(check=_no_check, run=_noop),
    "sleep": Action(check=_check_sleep, run=_sleep),
    "fail": Action(check=_no_check, run=_fail),
}
