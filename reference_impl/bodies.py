"""Request bodies: media type, size cap and strict JSON, before any schema sees them."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .problems import ProblemError

MAX_BODY_BYTES = 1_048_576
# Deeper nesting than this is refused: it is never a real workflow, and recursive code further on
# (canonicalization, serialization) must not be the thing that finds out.
MAX_NESTING = 64


def check_json_media_type(request: Request, body_expected: bool = True) -> None:
    """415 unless the Content-Type is application/json (a utf-8 charset parameter is allowed)."""
    raw = request.headers.get("content-type")
    if raw is None:
        if body_expected:
            raise ProblemError("unsupported-media-type", "Send the body as application/json.")
        return
    media_type, _, params = raw.partition(";")
    if media_type.strip().lower() != "application/json":
        raise ProblemError(
            "unsupported-media-type",
            f"Content-Type {media_type.strip()[:100]!r} is not supported; send application/json.",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ProblemError("unsupported-media-type", "JSON bodies must be UTF-8 (charset=utf-8).")


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, or 413 as soon as it passes `limit` bytes; Content-Length is a hint, not a promise."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ProblemError("payload-too-large", f"The body has {int(declared)} bytes; the limit is {limit}.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                # Stop reading: the rest of an oversized body is never buffered.
                raise ProblemError("payload-too-large", f"The body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise ProblemError("invalid-request", "The client went away before the body was complete.") from exc
    return b"".join(chunks)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate object key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Strict RFC 8259 over UTF-8: no duplicate keys, no NaN/Infinity, an object at the top."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError("invalid-request", f"The body is not UTF-8: {exc.reason} at byte {exc.start}.") from exc
    if not text.strip():
        raise ProblemError("invalid-request", "The body is empty; send a JSON object.")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ProblemError("invalid-request", f"Malformed JSON: {exc.msg} at {where}.") from exc
    except ValueError as exc:
        raise ProblemError("invalid-request", f"Malformed JSON: {exc}.") from exc
    except RecursionError as exc:
        raise ProblemError("invalid-request", f"The JSON nests deeper than {MAX_NESTING} levels.") from exc
    if not isinstance(value, dict):
        raise ProblemError("invalid-request", f"The body must be a JSON object, not {type(value).__name__}.")
    if _depth_exceeds(value, MAX_NESTING):
        raise ProblemError("invalid-request", f"The JSON nests deeper than {MAX_NESTING} levels.")
    return value
