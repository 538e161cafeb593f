"""A TCP proxy on loopback that adds a fixed round-trip time, to run the suite as if across a network.

    python bench/latency_proxy.py --upstream 127.0.0.1:8080 --listen 127.0.0.1:9090 --delay-ms 50

    with LatencyProxy("127.0.0.1", 8080, delay_s=0.05) as proxy:
        httpx.get(f"{proxy.url}/api/v1/runs", ...)   # each round trip takes 50 ms longer

Each direction of each connection holds every chunk it reads for delay_s / 2 before writing it on,
so a request and its response together gain delay_s: the added RTT of a network hop, with no
bandwidth limit and no cost per byte. Chunks wait in a per-connection, per-direction queue stamped
with the time they are due, and one task per direction writes them when due; a chunk that arrives
while earlier ones wait is not delayed by them (a sleep per chunk would add up), and byte order is
that of the queue.

What it does not model: the TCP handshake (a new connection is accepted at once, where a network
would add one RTT before the first byte, and TLS more), loss, jitter, and a bandwidth-delay limit
below `max_buffered` bytes in flight per direction (64 MiB by default: 2.5 GiB/s at 50 ms).

Loopback only, both ends: it refuses to listen on or forward to any other address, so it cannot
become an open relay on a shared machine. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import signal
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

__all__ = ["LatencyProxy", "NotLoopback", "loopback_address"]

CHUNK = 256 * 1024
DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024


class NotLoopback(ValueError):
    """An address that is not on loopback was given to listen on or to forward to."""


def loopback_address(host: str) -> str:
    """`host` resolved to one loopback IP literal; NotLoopback when any address it names is elsewhere.

    Every address the name resolves to must be loopback, not just the first: a name that also
    resolves elsewhere could be sent elsewhere by a later lookup. The proxy then only uses the literal.
    """
    literal = host.strip("[]")
    try:
        infos = socket.getaddrinfo(literal, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NotLoopback(f"cannot resolve {host!r}: {exc}") from None
    addresses = {str(info[4][0]) for info in infos}
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%", 1)[0]).is_loopback)
    if not addresses or outside:
        raise NotLoopback(f"{host!r} resolves to {', '.join(outside) or 'nothing'}: the proxy works on loopback only")
    # Prefer IPv4: the reference server and most test servers listen on 127.0.0.1 only.
    return sorted(addresses, key=lambda a: (":" in a, a))[0]


def _no_delay(writer: asyncio.StreamWriter) -> None:
    # Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to a response written in two parts,
    # a delay of the proxy's own that would be measured as the network's.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, so that the peer sees a reset (as it would from the far end), not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Eof:
    pass


class _Reset:
    pass


EOF = _Eof()
RESET = _Reset()
Item = bytes | _Eof | _Reset


class _DelayLine:
    """One direction of one connection: (due time, chunk) in arrival order, bounded in bytes held."""

    def __init__(self, delay_s: float, max_buffered: int) -> None:
        self.delay_s = delay_s
        self.max_buffered = max_buffered
        self.items: collections.deque[tuple[float, Item]] = collections.deque()
        self.buffered = 0
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()

    def put(self, item: Item) -> None:
        # Stamped on arrival with the loop's monotonic clock, so due times never decrease and waiting
        # for the head of the queue never delays a later chunk beyond its own due time.
        self.items.append((asyncio.get_running_loop().time() + self.delay_s, item))
        if isinstance(item, bytes):
            self.buffered += len(item)
            if self.buffered >= self.max_buffered:
                self.writable.clear()
        self.readable.set()

    async def get_due(self) -> list[Item]:
        """Wait for the head of the queue to fall due; return it with every other item already due."""
        while not self.items:
            self.readable.clear()
            await self.readable.wait()
        loop = asyncio.get_running_loop()
        wait = self.items[0][0] - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        now = loop.time()
        due: list[Item] = []
        while self.items and self.items[0][0] <= now:
            item = self.items.popleft()[1]
            if isinstance(item, bytes):
                self.buffered -= len(item)
            due.append(item)
        if self.buffered < self.max_buffered:
            self.writable.set()
        return due


@dataclass
class ProxyStats:
    connections: int = 0  # accepted so far
    open: int = 0  # being forwarded now
    upstream_failures: int = 0  # accepted, but the upstream refused the connection
    resets: int = 0  # ended by a reset or a write error rather than two EOFs (stop() not counted)
    bytes_up: int = 0
    bytes_down: int = 0


class LatencyProxy:
    """The proxy in a background thread with its own event loop; a context manager.

    `url` (http://127.0.0.1:PORT) and `port` are valid once started. Stopping closes the listening
    socket, aborts every open connection, ends every task and joins the thread.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        delay_s: float,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, not {delay_s}")
        self.upstream_host = loopback_address(upstream_host)
        self.upstream_port = upstream_port
        self.listen_host = loopback_address(listen_host)
        self.delay_s = delay_s
        self.max_buffered = max_buffered
        self.stats = ProxyStats()
        self._requested_port = listen_port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # --- the thread's side ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not running")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LatencyProxy:
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the proxy did not start within {timeout} s")
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise self._failure
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the proxy thread did not end within {timeout} s")
        self._thread = None
        self._port = None

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); after a start it can only be a bug of ours
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Registered when accepted, before the connection's task first runs: a task cancelled before
        # it starts never runs its `finally`, and its client socket would be left open.
        connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.stats.connections += 1
            task = asyncio.create_task(self._forward(reader, writer))
            connections[task] = writer
            self.stats.open = len(connections)

            def ended(task: asyncio.Task[None]) -> None:
                client = connections.pop(task, None)
                if client is not None and not client.transport.is_closing():
                    _reset(client)  # cancelled before it first ran
                self.stats.open = len(connections)

            task.add_done_callback(ended)

        server = await asyncio.start_server(
            accepted, self.listen_host, self._requested_port, reuse_address=True, limit=CHUNK
        )
        self._port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await server.wait_closed()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        half = self.delay_s / 2
        up_line = _DelayLine(half, self.max_buffered)
        down_line = _DelayLine(half, self.max_buffered)
        _no_delay(client_writer)
        upstream_writer: asyncio.StreamWriter | None = None
        tasks: list[asyncio.Task[bool]] = []
        clean = stopping = False
        try:
            # Read the client before the upstream answers the connect: its first bytes are stamped
            # when they arrive, not when the upstream connection is up.
            tasks.append(asyncio.create_task(self._read(client_reader, up_line, "up")))
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port, limit=CHUNK
                )
            except OSError:
                self.stats.upstream_failures += 1
                return  # the client gets a reset below, as from a port nobody listens on
            _no_delay(upstream_writer)
            tasks += [
                asyncio.create_task(self._read(upstream_reader, down_line, "down")),
                asyncio.create_task(self._write(up_line, upstream_writer)),
                asyncio.create_task(self._write(down_line, client_writer)),
            ]
            # Done when both directions have delivered their EOF, or at the first reset or error
            # (the other direction is then cut too: a connection with one dead end is dead).
            pending: set[asyncio.Task[bool]] = set(tasks[2:])
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if not all(t.result() for t in finished):
                    break
            else:
                clean = True
        except asyncio.CancelledError:
            # Only stop() cancels a connection: not a reset of the peers' making. Not raised on:
            # nothing but stop() waits for this task, and the sockets are still to be waited for.
            stopping = True
        finally:
            # Everything that must happen runs before the first await: a cancel arriving during
            # the awaits below must not leave a socket open.
            for task in tasks:
                task.cancel()
            for writer in (client_writer, upstream_writer):
                if writer is None:
                    continue
                if clean:
                    writer.close()
                else:
                    _reset(writer)
            if not clean and not stopping:
                self.stats.resets += 1
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader, line: _DelayLine, direction: str) -> bool:
        try:
            while True:
                if not line.writable.is_set():
                    await line.writable.wait()
                chunk = await reader.read(CHUNK)
                if not chunk:
                    line.put(EOF)
                    return True
                if direction == "up":
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
                line.put(chunk)
        except OSError:  # ConnectionResetError and kin: pass the reset on, as late as the data
            line.put(RESET)
            return False

    async def _write(self, line: _DelayLine, writer: asyncio.StreamWriter) -> bool:
        """Write each chunk when due; True once the EOF is passed on, False on a reset or a write error."""
        try:
            while True:
                for item in await line.get_due():
                    if isinstance(item, bytes):
                        writer.write(item)
                    elif isinstance(item, _Eof):
                        await writer.drain()
                        if writer.can_write_eof():
                            writer.write_eof()
                        return True
                    else:
                        return False
                await writer.drain()
        except OSError:
            return False


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@contextlib.contextmanager
def _signals_stop(stop: threading.Event) -> Iterator[None]:
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", type=_host_port, required=True, help="HOST:PORT of the server (loopback)")
    parser.add_argument(
        "--listen", type=_host_port, default=("127.0.0.1", 0), help="HOST:PORT (loopback; port 0 picks one)"
    )
    parser.add_argument("--delay-ms", type=float, default=50.0, help="added round-trip time per request, ms")
    args = parser.parse_args(argv)
    stop = threading.Event()
    try:
        (host, port), (listen_host, listen_port) = args.upstream, args.listen
        proxy = LatencyProxy(host, port, args.delay_ms / 1000, listen_host=listen_host, listen_port=listen_port)
    except NotLoopback as exc:
        parser.error(str(exc))
    with _signals_stop(stop), proxy:
        print(
            f"{proxy.url} -> {proxy.upstream_host}:{proxy.upstream_port}, +{args.delay_ms:g} ms per round trip",
            flush=True,
        )
        stop.wait()
    s = proxy.stats
    print(f"{s.connections} connections, {s.bytes_up} bytes up, {s.bytes_down} down, {s.resets} reset", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
