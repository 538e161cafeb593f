"""Resolve the server: the URL the user gave, or the bundled reference server on a loopback port."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from conformance.config import RunConfig

__all__ = ["Target", "resolve_target"]


@dataclass(frozen=True)
class Target:
    base_url: str
    token: str
    other_token: str | None
    embedded: bool  # the bundled reference server, started for this run


def resolve_target(config: RunConfig, stack: ExitStack, say: Callable[[str], None]) -> Target | str:
    """The server to test, or why there is none (a one-line reason: the run is unreachable)."""
    if config.base_url is not None:
        assert config.token is not None  # validate() made sure
        return Target(config.base_url.rstrip("/"), config.token, config.other_token, False)
    from conformance.embedded import embedded_server

    say("no --base-url: starting the bundled reference server on a loopback port")
    try:
        server = stack.enter_context(embedded_server(ready_timeout=max(10.0, config.request_timeout)))
    except Exception as exc:  # the bundled server is part of the suite: say why it did not start
        return f"the bundled reference server did not start: {type(exc).__name__}: {exc}".splitlines()[0]
    say(f"bundled reference server at {server.base_url}")
    return Target(server.base_url, server.token, server.other_token, True)
