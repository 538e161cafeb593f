"""A finding's identity across runs: the same defect gets the same fingerprint, whatever the seed.

A fingerprint hashes what a defect is, never what one run happened to send: the requirement, the
assertion that failed (the check's code that judged it: module, function and its place in the
function; or, for the central judges, the rule), and the operation it failed on. RunIds, times,
generated values and the wording of a message stay out. Diffs and baselines match on it, so a
"new failure" is a new defect, not a new seed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from pathlib import Path
from types import FrameType, TracebackType
from urllib.parse import urlsplit

from conformance.results import Exchange
from conformance.spec import load_spec

__all__ = ["assertion_site", "fingerprint", "operation_of", "raise_site", "request_line"]

_PACKAGE = Path(__file__).resolve().parent
# The check API itself: a finding is charged to the code that called it, not to these.
_PLUMBING = frozenset(
    str(_PACKAGE / name)
    for name in ("context.py", "outcomes.py", "execution.py", "strategies.py", "properties.py", "fingerprints.py")
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def fingerprint(requirement_id: str, site: str, operation: str) -> str:
    """16 hex digits naming (requirement, the assertion that failed, the operation)."""
    return hashlib.sha256(f"{requirement_id}\n{site}\n{operation}".encode()).hexdigest()[:16]


def _site(frame: FrameType) -> str:
    code = frame.f_code
    module = frame.f_globals.get("__name__", Path(code.co_filename).stem)
    # The line within its function, not within the file: an edit elsewhere in the module keeps it.
    return f"{module}.{code.co_qualname}:+{frame.f_lineno - code.co_firstlineno}"


def assertion_site(skip: int = 1) -> str:
    """Where the check asserted: the first caller outside the check API's own modules."""
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None and frame.f_code.co_filename in _PLUMBING:
        frame = frame.f_back
    return _site(frame) if frame is not None else "?"


def raise_site(tb: TracebackType | None) -> str:
    """Where a check raised its failure: the last frame of the traceback outside the check API."""
    found = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename not in _PLUMBING:
            found = _site(tb.tb_frame)
        tb = tb.tb_next
    return found


def operation_of(exchange: Exchange | None) -> str:
    """The spec's operationId an exchange hit, or `METHOD /template` for one the spec does not declare."""
    if exchange is None:
        return "-"
    template, operation_id = _documented(exchange)
    if template is None:
        return f"{exchange.method} (undocumented path)"
    return operation_id or f"{exchange.method} {template}"


def request_line(exchange: Exchange) -> str:
    """`GET /api/v1/runs/{runId}/definition`: the method and the spec's path an exchange hit, IDs and query
    left out; a path the spec does not have, as it was sent."""
    template, _operation_id = _documented(exchange)
    return f"{exchange.method} {template or urlsplit(exchange.url).path}"


def _documented(exchange: Exchange) -> tuple[str | None, str | None]:
    """(the spec's path template the exchange hit, its operationId for the exchange's method), each or None."""
    path = urlsplit(exchange.url).path.rstrip("/") or "/"
    for template, methods in load_spec()["paths"].items():
        if _matches(template, path):
            operation = methods.get(exchange.method.lower()) if isinstance(methods, dict) else None
            if isinstance(operation, dict) and "operationId" in operation:
                return template, str(operation["operationId"])
            return template, None
    return None, None


def _matches(template: str, path: str) -> bool:
    return _template_pattern(template).search(path) is not None


@functools.cache
def _template_pattern(template: str) -> re.Pattern[str]:
    # Every answer the suite gets is named through here (judges.py): compile each template once.
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def message_kind(message: str) -> str:
    """A message with its quoted values blanked: for findings whose wording is all there is to go on."""
    return _QUOTED.sub("…", message)
