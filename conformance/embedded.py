"""The bundled reference server, started on a free loopback port when no --base-url is given.

It gets two fresh random tokens, so the checks that need a second credential run too; the
tokens live only in this process.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["EmbeddedServer", "embedded_server"]


@dataclass(frozen=True)
class EmbeddedServer:
    base_url: str
    token: str
    other_token: str


@contextmanager
def embedded_server(ready_timeout: float = 10.0) -> Iterator[EmbeddedServer]:
    from reference_impl.app import create_app
    from reference_impl.serve import serve_in_thread

    token = f"rc-embedded-{secrets.token_hex(16)}"
    other = f"rc-embedded-other-{secrets.token_hex(16)}"
    app = create_app([token, other])
    with serve_in_thread(app, host="127.0.0.1", port=0, ready_timeout=ready_timeout) as base_url:
        yield EmbeddedServer(str(base_url).rstrip("/"), token, other)
