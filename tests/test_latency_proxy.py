"""bench/latency_proxy.py: bytes intact and in order, the delay added once per round trip, loopback only.

Timing is asserted loosely on purpose (the machine is shared): the lower bound strictly, since
the proxy must never deliver early; the upper bounds only generously, to catch a delay that is
serialised or counted per chunk, not to measure the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from latency_proxy import LatencyProxy, NotLoopback, loopback_address
from support.tokens import TOKEN


@contextlib.contextmanager
def echo_server() -> Iterator[tuple[str, int]]:
    """A trivial asyncio echo server in a thread: echoes until EOF, then half-closes back."""
    ready = threading.Event()
    where: dict[str, object] = {}

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        stop = asyncio.Event()
        where["port"] = server.sockets[0].getsockname()[1]
        where["stop"] = stop
        where["loop"] = asyncio.get_running_loop()
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield "127.0.0.1", int(where["port"])  # type: ignore[call-overload]
    finally:
        where["loop"].call_soon_threadsafe(where["stop"].set)  # type: ignore[attr-defined]
        thread.join(10)


def exchange(port: int, payload: bytes) -> bytes:
    """Send `payload`, half-close, read until the far end closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        received = bytearray()

        def read() -> None:
            while chunk := sock.recv(65536):
                received.extend(chunk)

        reader = threading.Thread(target=read)
        reader.start()  # read while writing, or a large payload would fill both buffers and stall
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reader.join(10)
        return bytes(received)


def test_bytes_arrive_intact_and_in_order_small_and_large() -> None:
    large = hashlib.shake_256(b"latency").digest(2 * 1024 * 1024)  # 2 MiB that no chunking could line up by luck
    with echo_server() as (host, port), LatencyProxy(host, port, 0.02) as proxy:
        assert exchange(proxy.port, b"hello") == b"hello"
        assert exchange(proxy.port, large) == large
        assert exchange(proxy.port, b"") == b""  # an EOF alone is forwarded both ways
    assert proxy.stats.resets == 0
    assert proxy.stats.open == 0


def test_http_bodies_through_the_proxy_to_the_reference_server(reference_url: str) -> None:
    port = int(reference_url.rsplit(":", 1)[1])
    blob = hashlib.shake_256(b"body").hexdigest(400_000)  # 800 kB, under the server's 1 MiB cap on bodies
    workflow = {"name": "big", "steps": [{"id": "a", "action": "noop", "params": {"blob": blob}}]}
    with LatencyProxy("127.0.0.1", port, 0.01) as proxy, httpx.Client(base_url=proxy.url) as http:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        started = http.post("/api/v1/runs", json={"clientId": "rc-proxy-big", "workflow": workflow}, headers=headers)
        assert started.status_code == 202, started.text
        definition = http.get(f"/api/v1/runs/{started.json()['runId']}/definition", headers=headers)
        assert definition.status_code == 200
        assert definition.json() == workflow


def test_a_round_trip_takes_at_least_the_delay_and_not_much_more() -> None:
    delay = 0.15
    with (
        echo_server() as (host, port),
        LatencyProxy(host, port, delay) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock,
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(3):  # on one connection: the delay is per round trip, not per connection
            began = time.monotonic()
            sock.sendall(b"ping")
            assert sock.recv(16) == b"ping"
            took = time.monotonic() - began
            assert took >= delay
            assert took < delay + 1.0


def test_concurrent_requests_each_pay_the_delay_once(reference_url: str) -> None:
    delay, count = 0.2, 20
    port = int(reference_url.rsplit(":", 1)[1])
    with (
        LatencyProxy("127.0.0.1", port, delay) as proxy,
        httpx.Client(base_url=proxy.url, limits=httpx.Limits(max_connections=count)) as http,
        ThreadPoolExecutor(count) as pool,
    ):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        began = time.monotonic()
        answers = list(pool.map(lambda _: http.get("/api/v1/runs", headers=headers).status_code, range(count)))
        took = time.monotonic() - began
    assert answers == [200] * count
    assert took >= delay
    assert took < count * delay / 2, f"{count} requests took {took:.2f} s: the delay is being serialised"
    assert proxy.stats.connections >= 2


def test_an_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with LatencyProxy("127.0.0.1", port, 0.01) as proxy:
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{proxy.url}/", timeout=5)
            assert proxy.stats.upstream_failures == 1


def test_a_reset_upstream_reaches_the_client_as_an_error_and_the_proxy_goes_on() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def reset_first() -> None:
            conn, _ = listener.accept()
            conn.recv(16)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

        server = threading.Thread(target=reset_first)
        server.start()
        with LatencyProxy("127.0.0.1", listener.getsockname()[1], 0.02) as proxy:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
                sock.sendall(b"x")
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(16) == b""  # a reset, or at least an end: never data or a hang
            server.join(10)
            deadline = time.monotonic() + 5
            while proxy.stats.open and time.monotonic() < deadline:
                time.sleep(0.01)  # the proxy ends its side of the connection on its own thread
            assert proxy.stats.resets == 1
            assert proxy.stats.open == 0
        with echo_server() as (host, port), LatencyProxy(host, port, 0.0) as proxy:
            assert exchange(proxy.port, b"after") == b"after"


def test_stopping_with_connections_open_ends_its_thread_and_tasks() -> None:
    before = {t.ident for t in threading.enumerate()}
    with echo_server() as (host, port):
        proxy = LatencyProxy(host, port, 0.05).start()
        idle = [socket.create_connection(("127.0.0.1", proxy.port), timeout=10) for _ in range(5)]
        idle[0].sendall(b"in flight")  # one connection with data still in the delay line
        deadline = time.monotonic() + 5
        while proxy.stats.open < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.stop()
        for sock in idle:
            sock.close()
    assert proxy.stats.open == 0
    assert {t.ident for t in threading.enumerate()} <= before
    with pytest.raises(RuntimeError):
        _ = proxy.url


@pytest.mark.parametrize("host", ["10.0.0.1", "192.0.2.1", "0.0.0.0", "8.8.8.8", "::"])
def test_non_loopback_upstream_and_listen_addresses_are_refused(host: str) -> None:
    with pytest.raises(NotLoopback):
        LatencyProxy(host, 80, 0.05)
    with pytest.raises(NotLoopback):
        LatencyProxy("127.0.0.1", 80, 0.05, listen_host=host)


def test_loopback_names_resolve_to_a_loopback_literal() -> None:
    assert loopback_address("localhost") in {"127.0.0.1", "::1"}
    assert loopback_address("127.0.0.2") == "127.0.0.2"
    assert loopback_address("[::1]") == "::1"
