"""Which requirements an invalid request sent by Schemathesis is an instance of, judged on the wire.

Schemathesis marks a case "negative" when it meant to break the schema, but what reaches the
server is sometimes valid after all (a mistyped header value that serialises to a valid string, a
header nobody reads, a path segment any string may fill), and a case may break several parts at
once (a bad key and a body of random bytes). So the request is judged again here, as sent, part by
part, against the spec's own schemas:

- startRun: a JSON body that violates RunStartRequest is ERR-004's; an Idempotency-Key outside
  1-255 visible ASCII characters is IDEM-008's. Both demand exactly 400.
- listRuns: a `limit` below 1, above 200 or not an integer is PAGE-003's; a `status` that is not a
  RunStatus or a `clientId` that is not a ClientId is PAGE-010's; an empty `cursor` (the schema's
  minLength is 1) is PAGE-007's. All demand exactly 400.
- getRun, getRunDefinition, cancelRun: the schema puts no constraint on a runId, so no generated
  runId is malformed by the contract, and an unknown one cannot be told from an existing one (a
  server may number its runs "1", "2", ...); If-None-Match has no 400 in the contract. No instance.

A request is an instance only when nothing outside these parts can decide the answer: our own
token, the operation's method, for startRun a body sent as exactly `application/json` and under
1 MiB; a parameter sent twice makes it none. Any other answer than the demanded status is a
failure of every requirement whose part is invalid. The demanded answer is evidence (a pass) only
when exactly one requirement's part is invalid and every other part is one a correct server must
accept: otherwise the 400 may answer something else (a non-empty cursor it never issued, an action
it does not have).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from conformance.spec import parameter_pointer, run_statuses, schema_validator

__all__ = ["NEGATIVE_OPERATION_MAP", "NEGATIVE_PARAMETER_MAP", "Instance", "WireRequest", "invalid_request_instance"]

# (operationId, location, name) -> the requirement an invalid value of that parameter breaks.
NEGATIVE_PARAMETER_MAP: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("listRuns", "query", "limit"): ("PAGE-003",),
    ("listRuns", "query", "status"): ("PAGE-010",),
    ("listRuns", "query", "clientId"): ("PAGE-010",),
    ("listRuns", "query", "cursor"): ("PAGE-007",),
    ("startRun", "header", "Idempotency-Key"): ("IDEM-008",),
}
# operationId -> the requirement a request body that violates its schema breaks.
NEGATIVE_OPERATION_MAP: dict[str, tuple[str, ...]] = {"startRun": ("ERR-004",)}

RUN_START_REQUEST = "/components/schemas/RunStartRequest"
_KEY_ID = NEGATIVE_PARAMETER_MAP[("startRun", "header", "Idempotency-Key")][0]
MAX_BODY_BYTES = 1024 * 1024  # ERR-008's limit: above it 413 is the right answer
_INTEGER = re.compile(r"-?[0-9]+")
_FRACTION = re.compile(r"-?[0-9]*\.[0-9]*[1-9][0-9]*")  # a number with a non-zero fraction: never an integer
_OWS = " \t"  # HTTP strips optional whitespace around a field value before the server reads it


@dataclass(frozen=True)
class WireRequest:
    """A request as it was sent: requests' PreparedRequest, in plain types."""

    method: str
    url: str
    headers: Mapping[str, str]  # names in any case
    body: bytes | None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @classmethod
    def of(cls, prepared: Any) -> WireRequest:
        body = prepared.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        return cls(str(prepared.method).upper(), str(prepared.url), dict(prepared.headers), body)


@dataclass(frozen=True)
class Instance:
    """The requirements an invalid request tests, the status they demand, and what else may be said."""

    invalid: dict[str, str]  # requirement -> what is invalid, for the message
    demanded: int = 400
    clean: bool = False  # the demanded answer can only be for the invalid part: it is evidence
    excused: frozenset[int] = field(default_factory=frozenset)  # answers that make it no instance


def invalid_request_instance(
    operation_id: str,
    method: str,
    request: WireRequest,
    token: str,
    accepted_steps: Sequence[Mapping[str, Any]] = (),
) -> Instance | None:
    """What `request` (sent to `operation_id`, whose method is `method`) is an instance of, or None.

    `accepted_steps`: steps every server under test accepts (the fixtures' own), so that a body
    made only of them is one no correct server refuses.
    """
    if request.method != method.upper() or request.header("Authorization") != f"Bearer {token}":
        return None  # another method, or the credential decides the answer (405, 401)
    if operation_id == "startRun":
        return _start_run(request, accepted_steps)
    if operation_id == "listRuns":
        return _list_runs(request)
    return None


# --- startRun ----------------------------------------------------------------------------------
def _start_run(request: WireRequest, accepted_steps: Sequence[Mapping[str, Any]]) -> Instance | None:
    content_type = (request.header("Content-Type") or "").strip(_OWS).lower()
    if content_type != "application/json" or request.body is None or len(request.body) > MAX_BODY_BYTES:
        return None  # 415, 413 or a missing body may rightly win
    invalid: dict[str, str] = {}
    body = _strict_json(request.body)
    body_is_json = body is not _NOT_JSON
    if body_is_json:
        error = _first_error(RUN_START_REQUEST, body)
        if error is not None:
            invalid[NEGATIVE_OPERATION_MAP["startRun"][0]] = f"a body that violates RunStartRequest ({error})"
    key = request.header("Idempotency-Key")
    if key is not None:
        value = key.strip(_OWS)
        pointer = parameter_pointer("startRun", "header", "Idempotency-Key")
        if pointer is not None and (problem := _first_error(pointer, value)) is not None:
            invalid[_KEY_ID] = f"Idempotency-Key {value[:40]!r} ({problem})"
    if not invalid:
        return None
    others_accepted = body_is_json and (
        _KEY_ID not in invalid or (len(invalid) == 1 and _accepted_body(body, accepted_steps))
    )
    # With a key the server may have seen before, an invalid body may meet the key check first:
    # "the same key with a different body is a 409" (paths./api/v1/runs.post.description).
    excused = frozenset({409}) if key is not None and _KEY_ID not in invalid else frozenset()
    return Instance(invalid, clean=len(invalid) == 1 and others_accepted, excused=excused)


class _NotJson:
    pass


_NOT_JSON = _NotJson()


def _strict_json(raw: bytes) -> Any:
    """The JSON value of `raw`, or _NOT_JSON (invalid UTF-8, a BOM, NaN and Infinity are not JSON text)."""

    def reject(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=reject)
    except ValueError:
        return _NOT_JSON


def _first_error(pointer: str, value: Any) -> str | None:
    error = next(iter(schema_validator(pointer).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message[:200]}"


def _accepted_body(body: Any, accepted_steps: Sequence[Mapping[str, Any]]) -> bool:
    """A RunStartRequest every correct server accepts: each step is one of the fixtures' (its id and
    dependsOn aside), ids unique, dependencies known and acyclic, every string printable ASCII."""
    workflow = body["workflow"]
    allowed = [{k: v for k, v in step.items() if k not in ("id", "dependsOn")} for step in accepted_steps]
    steps = workflow["steps"]
    ids = [step["id"] for step in steps]
    if len(set(ids)) != len(ids) or not _printable(body):
        return False
    if any({k: v for k, v in step.items() if k not in ("id", "dependsOn")} not in allowed for step in steps):
        return False
    return _acyclic({step["id"]: list(step.get("dependsOn", [])) for step in steps})


def _acyclic(graph: dict[str, list[str]]) -> bool:
    done: set[str] = set()
    for start in graph:
        path: set[str] = set()
        stack = [(start, iter(graph[start]))]
        path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.discard(node)
                done.add(node)
            elif child not in graph or child in path:
                return False  # an unknown dependency, or a cycle
            elif child not in done:
                path.add(child)
                stack.append((child, iter(graph[child])))
    return True


def _printable(value: Any) -> bool:
    if isinstance(value, str):
        return all(" " <= char <= "~" for char in value)
    if isinstance(value, dict):
        return all(_printable(k) and _printable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_printable(item) for item in value)
    return True


# --- listRuns ----------------------------------------------------------------------------------
_LIST_PARAMETERS = {name: ids[0] for (op, where, name), ids in NEGATIVE_PARAMETER_MAP.items() if op == "listRuns"}


def _list_runs(request: WireRequest) -> Instance | None:
    pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True, errors="replace")
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        return None  # a parameter sent twice: which one the server reads is its own business
    invalid: dict[str, str] = {}
    unsure = False  # a part that may itself get a 400: an unknown parameter, a cursor, an odd limit
    for name, value in pairs:
        rid = _LIST_PARAMETERS.get(name)
        verdict = _list_parameter(name, value) if rid is not None else None
        if verdict is None:
            unsure = True
        elif verdict:
            invalid.setdefault(rid or "", f"{name}={value[:40]!r} ({verdict})")
    if not invalid:
        return None
    return Instance(invalid, clean=len(invalid) == 1 and not unsure)


def _list_parameter(name: str, value: str) -> str | None:
    """What is wrong with a listRuns parameter ("" when it is valid), or None when a correct server
    may read it either way."""
    if name == "limit":
        return _limit(value)
    if name == "status":
        return "" if value in run_statuses() else "not a RunStatus"
    if name == "cursor":
        return "an empty cursor" if value == "" else None  # a non-empty one it never issued is a 400 too
    pointer = parameter_pointer("listRuns", "query", name)
    if pointer is None:
        return None
    return _first_error(pointer, value) or ""


def _limit(value: str) -> str | None:
    if _INTEGER.fullmatch(value):
        number = int(value)
        if number < 1 or number > 200:
            return f"{number} is outside 1-200"
        # "007" and "+7" are 7 to many parsers; only the plain digits are surely the integer asked for.
        return "" if value == str(number) else None
    if _FRACTION.fullmatch(value):
        return "not an integer"
    if value and not any(char.isdigit() for char in value):
        return "not a number"
    return None  # "", "7.0", "1e2", other scripts' digits: readable as an integer by some servers
