"""Servers that are not a working Runs API, on raw sockets: the suite must end cleanly against each.

    with hostile_server("hang") as url: ...

Behaviours: hang (never answers), garbage (random bytes), reset (TCP RST), error500 (a JSON 500 to
everything), huge (an endless streamed 200 JSON body), html (an HTML page for every path),
preflight_then_hang (a valid empty RunList for GET /api/v1/runs, silence for the rest).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def _respond(conn: socket.socket, status: str, content_type: str, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError):
        conn.sendall(head + body)


def _handler(behaviour: str, stop: threading.Event) -> Callable[[socket.socket, bytes], None]:
    def hang(conn: socket.socket, head: bytes) -> None:
        stop.wait(120)

    def garbage(conn: socket.socket, head: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(os.urandom(2048))

    def reset(conn: socket.socket, head: bytes) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def error500(conn: socket.socket, head: bytes) -> None:
        _respond(conn, "500 Internal Server Error", "application/json", b'{"error": "boom"}')

    def huge(conn: socket.socket, head: bytes) -> None:
        start = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b'{"items": [' + b" " * 65000
        piece = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        with contextlib.suppress(OSError):
            conn.sendall(start)
            for _ in range(4096):  # up to ~256 MiB, far past any sane bound
                if stop.is_set():
                    break
                conn.sendall(piece)

    def html(conn: socket.socket, head: bytes) -> None:
        page = b"<!doctype html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>"
        _respond(conn, "200 OK", "text/html; charset=utf-8", page)

    def preflight_then_hang(conn: socket.socket, head: bytes) -> None:
        if head.startswith((b"GET /api/v1/runs?", b"GET /api/v1/runs ")):
            _respond(conn, "200 OK", "application/json", b'{"items": [], "nextCursor": null}')
        else:
            stop.wait(120)

    return {
        "hang": hang,
        "garbage": garbage,
        "reset": reset,
        "error500": error500,
        "huge": huge,
        "html": html,
        "preflight_then_hang": preflight_then_hang,
    }[behaviour]


@contextlib.contextmanager
def hostile_server(behaviour: str) -> Iterator[str]:
    """The base URL of a server that behaves badly in the named way."""
    stop = threading.Event()
    handle = _handler(behaviour, stop)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]

    def serve_one(conn: socket.socket) -> None:
        try:
            head = _read_head(conn)
            handle(conn, head)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, name=f"hostile-{behaviour}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
