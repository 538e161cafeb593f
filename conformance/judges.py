"""The rules every answer is held to, whatever the check asked (a check's context applies them).

Every answer: never a 5xx (ERR-001); every 4xx a Problem whose status equals the HTTP status
(ERR-002). Every success body a check reads: its media type and schema (SCHEMA-002, SCHEMA-003),
not only those Schemathesis reads. Each evaluation counts; each kind of finding is reported once,
since a poll reads the same answer again and again.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

from conformance.client import ApiResponse
from conformance.fingerprints import request_line
from conformance.results import Exchange
from conformance.spec import schema_validator

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = ["CROSS_CUTTING", "Judge", "brief"]

# What every answer is held to, whichever check got it: any check may book these without naming
# them, and they keep their evaluations whatever ends the check (each judged a real answer).
CROSS_CUTTING = frozenset({"ERR-001", "ERR-002", "SCHEMA-002", "SCHEMA-003"})


class Judge:
    """One check's judge: it records into the check's tally, with the check's evidence."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._reported: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # a check that fans out judges from several threads

    def once(
        self, requirement_id: str, kind: str, condition: bool, message: str, exchange: Exchange | None = None
    ) -> None:
        """Count every evaluation, but report each kind of finding once: a poll repeats the same answer."""
        if condition:
            self.ctx.tally.evaluated(requirement_id)
            return
        key = (requirement_id, kind)
        with self._lock:
            first = key not in self._reported
            self._reported.add(key)
        if first:
            shown = [exchange] if exchange is not None else self.ctx.recorder.last(1)
            self.ctx.record_failure(requirement_id, message, shown, site=f"judge:{requirement_id}")
        else:
            self.ctx.tally.evaluated(requirement_id)  # failed already: the first finding of this kind says so

    def response(self, response: ApiResponse) -> None:
        """What holds of every answer the suite gets, whatever the check asked: never a 5xx (ERR-001),
        and every 4xx a Problem whose status equals the HTTP status (ERR-002)."""
        status = response.status_code
        operation = request_line(response.exchange)
        self.once(
            "ERR-001",
            f"{operation} {status}",
            status < 500,
            f"{operation} answered {status}: {brief(response)}; nothing a client sends may yield a 5xx (ERR-001)",
        )
        if 400 <= status < 500:
            problem = self._not_a_problem(response)
            self.once(
                "ERR-002",
                f"{operation} {status} {problem}",
                problem is None,
                f"{operation} answered {status} but {problem}: {brief(response)}; every 4xx is an "
                "application/problem+json Problem whose status equals the HTTP status (ERR-002)",
            )

    def _not_a_problem(self, response: ApiResponse) -> str | None:
        """Why a 4xx answer is not a proper Problem, or None."""
        if response.media_type != "application/problem+json":
            return f"its Content-Type is {response.headers.get('content-type') or 'missing'}"
        data = response.json_or_none()
        verdict = self.schema_verdict("Problem", response.content, data)
        if verdict is not None:
            return verdict
        if data.get("status") != response.status_code:
            return f"the Problem says status {data.get('status')!r}"
        return None

    def schema_verdict(self, schema: str, content: bytes, data: Any) -> str | None:
        verdicts = self.ctx.session.schema_verdicts
        key = (schema, hashlib.blake2b(content, digest_size=16).digest())
        if key not in verdicts:  # polls read the same bytes again and again: judge them once
            error = next(iter(schema_validator(f"/components/schemas/{schema}").iter_errors(data)), None)
            where = "/".join(str(p) for p in error.absolute_path) or "the body" if error else ""
            verdicts[key] = f"{where} does not match the {schema} schema: {error.message}" if error else None
        return verdicts[key]

    def body(self, schema: str, response: ApiResponse, data: Any, what: str) -> None:
        """Every success body the suite reads is held to the spec, not only those Schemathesis reads:
        a run in a status that fuzzing never reaches (a misspelled "canceled") or a definition served
        as text/plain shows here (SCHEMA-002, SCHEMA-003)."""
        shown = response.headers.get("content-type") or "no Content-Type"
        self.once(
            "SCHEMA-003",
            f"{what} {shown}",
            response.media_type == "application/json",
            f"{what}: answered {response.status_code} with {shown}; the spec documents application/json",
        )
        problem = self.schema_verdict(schema, response.content, data)
        self.once("SCHEMA-002", f"{what}: {problem}", problem is None, f"{what}: {problem}")


def brief(response: ApiResponse, limit: int = 200) -> str:
    # The exchange's body, not the response's: the exchange's is redacted (a server may echo a token).
    text = (response.exchange.response_body or "").replace("\n", " ")
    return (text[:limit] + "…" if len(text) > limit else text) or "(empty body)"
