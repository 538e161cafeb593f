"""Recorded HTTP traffic, read one exchange at a time: the suite's exchanges.jsonl, HAR 1.2, and NDJSON.

Every reader streams: a JSON-lines file is read a line at a time, a HAR a `log.entries` item at a
time (`_har_entries` decodes one entry, drops it, decodes the next), so a file of any size costs
the memory of one entry. A reader yields `Recorded` exchanges and `ReadError`s in file order: a
malformed line or entry is one error naming the file and the line or entry, and reading goes on
with the next. Only a HAR whose JSON itself breaks mid-file stops there (what follows cannot be
found again), after yielding every entry before it. A file compressed with gzip (a rotated access
log, `x.har.gz`) or zlib (mitmproxy's HAR export to a `.zhar` name) is known by its first bytes and
decompressed as it is read.

What a recording says of time is kept with its precision (`started`, `duration`, `precision`): the
history rebuilt from it (conformance/observe.py) widens each interval by the precision, so that it
never orders two exchanges the recording does not order. A body the recording does not hold
(stripped from a HAR, cut by the suite's recorder) is None with `*_body_known` False: nothing is
judged on it, rather than judging an absent body as empty.

The NDJSON shape (docs/observe.md), one object a line; only method and a url or path are required
(status null or 0: no answer):

    {"time": "2026-12-06T22:53:28.123Z", "duration_ms": 4.5, "method": "POST", "url": "/api/v1/runs",
     "status": 202, "client": "pod-7", "connection": "10.0.0.5:51234",
     "request_headers": {...}, "request_body": "...", "response_headers": {...}, "response_body": "...",
     "request_body_base64": false, "response_body_base64": false}
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

__all__ = ["ReadError", "Recorded", "read_line", "read_traffic", "traffic_format"]

# The suite's own recorder cuts a body at 4096 characters and says how much it left out
# (conformance/client.py): such a body is not the body that was sent.
_CUT = re.compile(r"… \[[0-9]+ more characters\]\Z")
# Which token variable the suite's curl line names: the recording redacts the token itself, and
# the variable is what still tells the suite's two credentials apart.
_CURL_TOKEN = re.compile(r"Authorization: Bearer \$([A-Za-z_][A-Za-z0-9_]*)")
_FRACTION = re.compile(r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,]([0-9]+))?")
_ENTRIES = re.compile(r'(?<!\\)"entries"\s*:\s*\[')
_CHUNK = 1 << 16
SUITE_CLOCK_PRECISION = 1e-6  # the suite stamps `started` with time.time(): microseconds on Linux


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded exchange. Times are seconds since the epoch (None: the recording has none).

    `precision` is how coarse the recording's times are (0.001 for a HAR's milliseconds): the real
    send lies within `precision` of `started`, and the answer within `precision` of its end.
    `credential` is the Authorization header as recorded, or, for the suite's own redacted
    recording, the name of the token variable it was sent with; None: no Authorization header.
    It is an identity to tell clients apart and is never written to a report.
    """

    source: str  # the file, as given
    where: str  # "line 12", "entry 7": where in the file
    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: str | None
    status: int | None
    response_headers: Mapping[str, str]
    response_body: str | None
    started: float | None = None
    duration: float | None = None
    precision: float = 0.0
    connection: str | None = None
    credential: str | None = None
    request_body_known: bool = True
    response_body_known: bool = True
    error: str | None = None  # the recording says no answer came (the suite's transport error)

    def header(self, name: str, response: bool = True) -> str | None:
        wanted = name.lower()
        headers = self.response_headers if response else self.request_headers
        return next((v for k, v in headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class ReadError:
    source: str
    where: str  # "line 3", "entry 5", or "the file"
    message: str

    def __str__(self) -> str:
        return f"{self.source}, {self.where}: {self.message}"


def traffic_format(path: Path) -> str:
    """ "har" for a HAR document, "jsonl" for one JSON object a line (exchanges.jsonl or NDJSON), by content."""
    with _open_text(path) as stream:
        head = stream.read(4096).lstrip()
    if head.startswith("{") and re.match(r'\{\s*"log"\s*:', head):
        return "har"
    return "jsonl"


def read_traffic(path: Path, source: str | None = None) -> Iterator[Recorded | ReadError]:
    """Every exchange of one file, in file order, with an error for each part that cannot be read."""
    name = source or str(path)
    try:
        kind = traffic_format(path)
        with _open_text(path) as stream:
            if kind == "har":
                yield from _read_har(stream, name)
            else:
                yield from _read_lines(stream, name)
    except (OSError, EOFError, zlib.error) as exc:  # a compressed file cut short or corrupt ends here
        yield ReadError(name, "the file", f"cannot read it: {getattr(exc, 'strerror', None) or exc}")


def _open_text(path: Path) -> TextIO:
    """The file as text, decompressed as it is read when its first bytes say gzip or zlib."""
    with path.open("rb") as head:
        magic = head.read(2)
    binary: io.BufferedIOBase  # returned open, inside the text stream its caller closes
    if magic == b"\x1f\x8b":
        binary = gzip.GzipFile(path, "rb")
    elif len(magic) == 2 and magic[0] & 0x0F == 8 and not magic[1] & 0x20 and (magic[0] << 8 | magic[1]) % 31 == 0:
        # RFC 1950's header: deflate, no preset dictionary, a multiple of 31; no text a reader takes begins so.
        binary = io.BufferedReader(_ZlibReader(path.open("rb")))
    else:
        binary = path.open("rb")
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace")


class _ZlibReader(io.RawIOBase):
    """A zlib stream (RFC 1950) decompressed a chunk at a time: the memory of a chunk, not of the file."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj()
        self._out = b""
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._at >= len(self._out):
            if self._inflate.eof:
                return 0
            # At most _CHUNK bytes out of each call: what it did not take yet (unconsumed_tail) goes in first.
            data = self._inflate.unconsumed_tail or self._raw.read(_CHUNK)
            if not data:
                raise EOFError("the file ends before its zlib stream does")
            self._out, self._at = self._inflate.decompress(data, _CHUNK), 0
        size = min(len(buffer), len(self._out) - self._at)
        buffer[:size] = self._out[self._at : self._at + size]
        self._at += size
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


# --- JSON lines: the suite's exchanges.jsonl and NDJSON ---------------------------------------------
def _read_lines(stream: TextIO, source: str) -> Iterator[Recorded | ReadError]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield read_line(line, source, f"line {number}")


def read_line(line: str, source: str, where: str) -> Recorded | ReadError:
    """One line of JSON lines (exchanges.jsonl or NDJSON): for a reader that gets its lines one at a time
    (the live proxy tails its addon's file)."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        return ReadError(source, where, f"not JSON ({exc})")
    try:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if "curl" in data or "elapsed_ms" in data:
            return _suite_record(data, source, where)
        return _ndjson(data, source, where)
    except (ValueError, TypeError, KeyError) as exc:
        return ReadError(source, where, str(exc).strip("'\""))


def _suite_record(data: dict[str, Any], source: str, where: str) -> Recorded:
    """One line of the suite's exchanges.jsonl: the token redacted, bodies cut at 4 KiB."""
    request_body, request_known = _cut(data.get("request_body"))
    response_body, response_known = _cut(data.get("response_body"))
    headers = _headers(data.get("request_headers"), "request_headers")
    credential = None
    if any(k.lower() == "authorization" for k in headers):
        found = _CURL_TOKEN.search(str(data.get("curl") or ""))
        credential = f"${found.group(1)}" if found else "redacted"
    return Recorded(
        source=source,
        where=where,
        method=_method(data.get("method")),
        url=_text(data.get("url"), "url"),
        request_headers=headers,
        request_body=request_body,
        status=_status(data.get("status"), allow_none=True),
        response_headers=_headers(data.get("response_headers"), "response_headers"),
        response_body=response_body,
        duration=_number(data.get("elapsed_ms"), "elapsed_ms") / 1000 if data.get("elapsed_ms") is not None else None,
        # The suite's clock: time.time() when sent, to the microsecond (older recordings have none).
        started=None if data.get("started") is None else _number(data["started"], "started"),
        precision=SUITE_CLOCK_PRECISION,
        credential=credential,
        request_body_known=request_known,
        response_body_known=response_known,
        error=data.get("error") if isinstance(data.get("error"), str) else None,
    )


def _cut(body: Any) -> tuple[str | None, bool]:
    if body is None:
        return None, True  # the suite records an empty body as null
    if not isinstance(body, str):
        raise ValueError("a body is not a string")
    if _CUT.search(body):
        return None, False
    return body, True


def _ndjson(data: dict[str, Any], source: str, where: str) -> Recorded:
    url = data.get("url", data.get("path"))
    started, precision = (None, 0.0) if data.get("time") is None else _instant(data["time"], "time")
    duration = data.get("duration_ms")
    if duration is None and data.get("duration_s") is not None:
        duration = _number(data["duration_s"], "duration_s") * 1000  # nginx's $request_time is seconds
    # A gateway's log_format writes a header the message did not carry as "" (nginx's escape=json): absent.
    request_headers = _headers(data.get("request_headers"), "request_headers", empty_is_absent=True)
    request_body, request_known = _body(data, "request_body")
    response_body, response_known = _body(data, "response_body")
    if request_body is None and "request_body" not in data and str(data.get("method", "")).upper() in {"GET", "HEAD"}:
        request_known = True  # a GET sends no body: none recorded is none sent
    return Recorded(
        source=source,
        where=where,
        method=_method(data.get("method")),
        url=_text(url, "url or path"),
        request_headers=request_headers,
        request_body=request_body,
        status=_status(data.get("status"), allow_none=True) or None,  # null or 0: no answer came
        response_headers=_headers(data.get("response_headers"), "response_headers", empty_is_absent=True),
        response_body=response_body,
        started=started,
        duration=None if duration is None else _number(duration, "duration_ms") / 1000,
        precision=precision,
        # A client id names one client across its connections; a connection alone is the next best.
        connection=_identity(data.get("client")) or _identity(data.get("connection")),
        credential=_authorization(request_headers),
        request_body_known=request_known,
        response_body_known=response_known,
    )


def _body(data: dict[str, Any], name: str) -> tuple[str | None, bool]:
    if name not in data:
        return None, False
    body = data[name]
    if body is None:
        return None, True
    if not isinstance(body, str):
        raise ValueError(f"{name} is not a string")
    if data.get(f"{name}_base64"):
        return _base64(body, name), True
    return body, True


# --- HAR 1.2 ------------------------------------------------------------------------------------------
def _read_har(stream: TextIO, source: str) -> Iterator[Recorded | ReadError]:
    for number, entry in enumerate(_har_entries(stream, source), start=1):
        if isinstance(entry, ReadError):
            yield entry
            return
        where = f"entry {number}"
        if isinstance(entry, dict) and entry.get("_fromCache"):
            continue  # Chromium's: served from the browser's cache, so the server never saw it
        try:
            yield _har_entry(entry, source, where)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            yield ReadError(source, where, str(exc).strip("'\""))


def _har_entries(stream: TextIO, source: str) -> Iterator[Any]:
    """The items of log.entries, decoded one at a time from a buffer that holds about one entry."""
    decoder = json.JSONDecoder()
    buffer, at, eof = "", 0, False

    def more() -> bool:
        nonlocal buffer, at, eof
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        buffer = buffer[at:] + chunk
        at = 0
        return True

    while (found := _ENTRIES.search(buffer)) is None:
        keep = buffer[-64:]  # the key may straddle two chunks
        buffer, at = keep, 0
        if not more():
            yield ReadError(source, "the file", "a HAR with no log.entries array")
            return
    at = found.end()
    number = 0
    while True:
        while at < len(buffer) and buffer[at] in " \t\r\n,":
            at += 1
        if at >= len(buffer):
            if not more():
                yield ReadError(source, f"entry {number + 1}", "the file ends inside log.entries")
                return
            continue
        if buffer[at] == "]":
            return
        try:
            entry, end = decoder.raw_decode(buffer, at)
        except json.JSONDecodeError as exc:
            if not eof and more():
                continue  # the entry goes on in the next chunk
            if exc.pos >= len(buffer.rstrip()):
                yield ReadError(source, f"entry {number + 1}", "the file ends inside log.entries (cut short?)")
            else:
                yield ReadError(source, f"entry {number + 1}", f"not JSON ({exc.msg}); entries after it are not read")
            return
        number += 1
        at = end
        if at > _CHUNK:
            buffer, at = buffer[at:], 0
        yield entry


def _har_entry(entry: Any, source: str, where: str) -> Recorded:
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    request, response = entry.get("request"), entry.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise ValueError("no request or response object")
    request_headers = _har_headers(request.get("headers"))
    started, precision = (None, 0.0)
    if entry.get("startedDateTime") is not None:
        started, precision = _instant(entry["startedDateTime"], "startedDateTime")
        precision = max(precision, 0.001)  # HAR times are milliseconds
    duration = entry.get("time")
    post = request.get("postData")
    method = _method(request.get("method"))
    if isinstance(post, dict) and isinstance(post.get("text"), str):
        request_body: str | None = (
            _base64(post["text"], "postData") if post.get("encoding") == "base64" else post["text"]
        )
        request_known = True
    else:
        request_body, request_known = None, method in {"GET", "HEAD"} or request.get("bodySize") == 0
    content: dict[str, Any] = response["content"] if isinstance(response.get("content"), dict) else {}
    if isinstance(content.get("text"), str):
        response_body: str | None = content["text"]
        if content.get("encoding") == "base64":
            response_body = _base64(content["text"], "content")
        response_known = True
    else:
        response_body, response_known = None, content.get("size") == 0 or response.get("bodySize") == 0
    status = _status(response.get("status"), allow_none=False)
    return Recorded(
        source=source,
        where=where,
        method=method,
        url=_text(request.get("url"), "request.url"),
        request_headers=request_headers,
        request_body=request_body or None,
        status=None if status == 0 else status,  # a HAR says 0 when no answer came
        response_headers=_har_headers(response.get("headers")),
        response_body=response_body or None,
        started=started,
        duration=None if duration is None or duration == -1 else _number(duration, "time") / 1000,
        precision=precision,
        connection=_identity(entry.get("connection")),
        credential=_authorization(request_headers),
        request_body_known=request_known,
        response_body_known=response_known,
    )


def _har_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, list):
        raise ValueError("headers is not a list")
    found: dict[str, str] = {}
    for item in headers:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError("a header is not a name and value")
        name = item["name"]
        if name.startswith(":"):
            continue  # HTTP/2 pseudo-headers some exporters list
        value = str(item.get("value", ""))
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


# --- values -----------------------------------------------------------------------------------------
def _method(value: Any) -> str:
    if not isinstance(value, str) or not value.isalpha():
        raise ValueError(f"method {value!r} is not an HTTP method")
    return value.upper()


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"no {name}")
    return value


def _status(value: Any, *, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (0 <= value <= 599):
        raise ValueError(f"status {value!r} is not an HTTP status")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} {value!r} is not a duration")
    return float(value)


def _headers(value: Any, name: str, *, empty_is_absent: bool = False) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name} is not an object")
    joined = {str(k): ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in value.items()}
    return {k: v for k, v in joined.items() if v != ""} if empty_is_absent else joined


def _identity(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _authorization(headers: Mapping[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "authorization"), None)


def _base64(text: str, name: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} says base64 but is not") from None


def _instant(value: Any, name: str) -> tuple[float, float]:
    """(seconds since the epoch, the precision the text gives it: 1 s for whole seconds, 0.001 for milliseconds)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} {value!r} is not an RFC 3339 instant")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an RFC 3339 instant") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name} {value!r} has no offset: which instant it is is unknown")
    fraction = _FRACTION.search(value.upper())
    digits = len(fraction.group(1)) if fraction and fraction.group(1) else 0
    return moment.timestamp(), 10.0**-digits
