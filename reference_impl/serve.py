"""Run an ASGI app with uvicorn in a background thread, for tests and the suite's default server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

_POLL_SECONDS = 0.01


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, ready_timeout: float = 10.0) -> Iterator[str]:
    """Yields the base URL (`http://127.0.0.1:54321`) once the server accepts connections.

    The socket is bound here, before the thread starts, so port 0 picks a free port with no
    race between choosing it and listening on it. On exit the server stops and the thread ends.
    """
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it Nagle + delayed ACK add ~40 ms to every response written in two parts.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + ready_timeout
        while not (server.started and _accepts_connections(host, bound_port)):
            if not thread.is_alive():
                raise RuntimeError("the server thread ended before the server started (see its log)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {ready_timeout} s")
            # Polling for readiness against the deadline above, not sleeping for synchronisation.
            thread.join(_POLL_SECONDS)
        yield f"http://[{host}]:{bound_port}" if family == socket.AF_INET6 else f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=ready_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=ready_timeout)
        sock.close()
