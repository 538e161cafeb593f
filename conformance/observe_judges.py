"""What one recorded answer alone is held to: the judges a run applies to every answer, on traffic.

Each function judges one exchange and returns, per requirement, None (no instance here: nothing to
judge) or the reason it is broken ("" when it holds). Nothing is judged on a body the recording
does not hold: an absent body is unknown, not empty.

- ERR-001: no 5xx. ERR-002: every 4xx a Problem whose status is the HTTP status.
- SCHEMA-001: the status is one the spec documents for the operation.
- SCHEMA-002: the body validates against the spec's schema for its status and media type.
- SCHEMA-003: a body's Content-Type is one the spec documents for its status.
- SCHEMA-004: the headers the spec marks required are present, with values their schemas accept
  (conformance/spec.py's `required_header_problems`, which a run's checks use too).
- AUTH-003: every 401 carries a Bearer challenge.
- LIFE-003, LIFE-004 on every Run shown (getRun, listRuns items), as a run's lifecycle monitor
  judges each one alone: finishedAt set exactly when terminal; startedAt set when running;
  createdAt <= startedAt <= finishedAt as instants. (Moves between Runs: observe_lifecycle.py, CONC-*.)
- PAGE-009: every run on a listRuns page matches the request's status and clientId filters exactly.
- PAGE-001: within one page of two or more runs with readable createdAt, createdAt descends (as
  instants; equal instants in any order). Across pages a walk may see inserts, so only a page.
- PAGE-002: a page with a non-null nextCursor holds exactly `limit` runs (50 when absent); a limit
  sent twice or outside 1..200 is no instance (its answer should have been a 400: PAGE-003's).

A judge returns at most one verdict per requirement for an answer: a page of fifty runs is fifty
instances of PAGE-009 in a run, one here (the first run that breaks it, or none).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jsonschema_rs  # Schemathesis' own validator, so present wherever the suite is

from conformance.meaning import parse_instant
from conformance.observe_traffic import Recorded
from conformance.spec import (
    json_pointer,
    load_spec,
    operation_of,
    required_header_problems,
    required_response_headers,
    schema_validator,
    terminal_statuses,
)

__all__ = ["JUDGED", "ResponseJudge"]

JUDGED = (
    "ERR-001",
    "ERR-002",
    "SCHEMA-001",
    "SCHEMA-002",
    "SCHEMA-003",
    "SCHEMA-004",
    "AUTH-003",
    "LIFE-003",
    "LIFE-004",
    "PAGE-009",
    "PAGE-001",
    "PAGE-002",
)


@functools.cache
def _responses(operation_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """status key ("202", "4XX", "default") → (JSON pointer of the response object, the object), $refs followed."""
    path, method = operation_of(operation_id)
    spec = load_spec()
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for key, node in spec["paths"][path][method].get("responses", {}).items():
        pointer = json_pointer("paths", path, method, "responses", str(key))
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            pointer = node["$ref"][1:]
            node = spec
            for part in pointer[1:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        if isinstance(node, dict):
            found[str(key)] = (pointer, node)
    return found


def _documented(operation_id: str, status: int) -> tuple[str, dict[str, Any]] | None:
    responses = _responses(operation_id)
    return responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")


@functools.cache
def _fast_validator(pointer: str) -> Any:
    """jsonschema-rs (Schemathesis' own validator) for the schema at `pointer`, or None where it is missing.

    Traffic is judged in bulk: Python's jsonschema takes about half a millisecond a body, most of it
    resolving references. The fast one only says a body is valid; a body it calls invalid is judged
    again by the spec's own validator (`schema_validator`), whose verdict and message are the ones
    reported, so a difference between the two can never make a false alarm (only, at worst, hide
    an edge the fast one accepts).
    """
    uri = "urn:runs-conformance:observe"
    try:
        registry = jsonschema_rs.Registry([(uri, load_spec())], draft=jsonschema_rs.Draft202012)
        reference = f"{uri}#{quote(pointer, safe='/~')}"  # a path template's braces are not URI characters
        return jsonschema_rs.Draft202012Validator({"$ref": reference}, registry=registry, validate_formats=True)
    except (ValueError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError):
        return None  # the spec's own validator judges every body then


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class ResponseJudge:
    """Judges answers one at a time; caches schema verdicts by body, as a run's judge does (polls repeat)."""

    def __init__(self) -> None:
        self._verdicts: dict[tuple[str, bytes], str | None] = {}
        self._kinds: dict[tuple[str, tuple[str, ...]], str | None] = {}

    def judge(self, operation_id: str, rec: Recorded) -> dict[str, str]:
        """Requirement → "" (holds) or why it is broken, for every requirement this answer is an instance of."""
        status = rec.status
        if status is None:
            return {}
        out: dict[str, str] = {
            "ERR-001": "" if status < 500 else f"answered {status}; nothing a client sends may yield a 5xx"
        }
        documented = _documented(operation_id, status)
        out["SCHEMA-001"] = "" if documented is not None else f"answered {status}, a status the spec does not document"
        media = _media_type(rec.header("content-type"))
        data, parsed = self._json(rec)
        if 400 <= status < 500 and rec.response_body_known:
            out["ERR-002"] = self._problem(status, media, data, parsed, rec)
        if status == 401:
            challenge = rec.header("www-authenticate") or ""
            out["AUTH-003"] = (
                "" if challenge.strip().lower().startswith("bearer") else f"a 401 with WWW-Authenticate {challenge!r}"
            )
        if parsed and status == 200 and operation_id in ("getRun", "listRuns"):
            out.update(_runs_judged(operation_id, rec, data))
        if parsed and status == 200 and operation_id == "listRuns" and isinstance(data, dict):
            out.update(_page_judged(rec, data))
        if documented is None:
            return out
        pointer, response = documented
        if required_response_headers(operation_id, status):
            wrong = required_header_problems(operation_id, status, rec.header)
            out["SCHEMA-004"] = f"a {status} with {'; '.join(wrong)}" if wrong else ""
        content = response.get("content") or {}
        if rec.response_body_known and rec.response_body and content:
            shown = rec.header("content-type") or "no Content-Type"
            out["SCHEMA-003"] = (
                "" if media in content else f"a {status} with {shown}; the spec documents {', '.join(content)} for it"
            )
            if media in content and "schema" in content[media]:
                schema = pointer + json_pointer("content", media, "schema")
                out["SCHEMA-002"] = (
                    f"the body is not JSON: {_short(rec.response_body)}"
                    if not parsed
                    else self._schema(schema, rec, data)
                )
        return out

    def _json(self, rec: Recorded) -> tuple[Any, bool]:
        if not rec.response_body_known or not rec.response_body:
            return None, False
        try:
            return json.loads(rec.response_body), True
        except ValueError:
            return None, False

    def _problem(self, status: int, media: str, data: Any, parsed: bool, rec: Recorded) -> str:
        if media != "application/problem+json":
            return f"a {status} with Content-Type {rec.header('content-type') or 'missing'}, not a Problem"
        if not parsed:
            return f"a {status} whose body is not JSON"
        verdict = self._schema("/components/schemas/Problem", rec, data)
        if verdict:
            return verdict
        if data.get("status") != status:
            return f"a {status} whose Problem says status {data.get('status')!r}"
        return ""

    def _schema(self, pointer: str, rec: Recorded, data: Any) -> str:
        key = (pointer, hashlib.blake2b((rec.response_body or "").encode("utf-8"), digest_size=16).digest())
        if key not in self._verdicts:
            self._verdicts[key] = self._schema_verdict(pointer, data)
        return self._verdicts[key] or ""

    def _schema_verdict(self, pointer: str, data: Any) -> str | None:
        fast = _fast_validator(pointer)
        if fast is None:
            return _spec_verdict(pointer, data)
        if fast.is_valid(data):
            return None
        # A body the fast validator rejects is judged by the spec's own, once per kind of error (the schema
        # keyword that failed): a server that breaks a schema breaks it in every answer, and bulk traffic
        # would pay the slow validator on each. A kind the spec's validator once found valid is never
        # taken on the fast one's word again.
        try:
            fast.validate(data)  # the first error only: collecting them all costs a fifth of a millisecond
        except jsonschema_rs.ValidationError as error:
            kind = (pointer, tuple(str(part) for part in error.schema_path))
        else:
            return None
        if kind not in self._kinds or self._kinds[kind] is None:
            self._kinds[kind] = _spec_verdict(pointer, data)
            return self._kinds[kind]
        return self._kinds[kind]


def _spec_verdict(pointer: str, data: Any) -> str | None:
    error = next(iter(schema_validator(pointer).iter_errors(data)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the body"
    name = pointer.rsplit("/", 1)[-1] if pointer.startswith("/components/schemas/") else "documented"
    return f"{where} does not match the {name} schema: {error.message}"


def _runs_judged(operation_id: str, rec: Recorded, data: Any) -> dict[str, str]:
    if operation_id == "getRun":
        runs = [data] if isinstance(data, dict) else []
    else:
        items = data.get("items") if isinstance(data, dict) else None
        runs = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    runs = [run for run in runs if isinstance(run.get("runId"), str)]
    if not runs:
        return {}
    out = {"LIFE-003": "", "LIFE-004": ""}
    for run in runs:
        for rid, broken in _lifecycle_alone(run).items():
            out[rid] = out[rid] or broken
    if operation_id == "listRuns":
        query = parse_qsl(urlsplit(rec.url).query, keep_blank_values=True)
        names = [name for name, _ in query]
        filters = {n: v for n, v in query if n in ("status", "clientId") and names.count(n) == 1}
        if filters:  # a filter sent twice: which one the server applies is not the contract's
            wrong = [run for run in runs if any(run.get(name) != value for name, value in filters.items())]
            out["PAGE-009"] = (
                f"a page filtered by {filters} held run {wrong[0].get('runId')} with clientId "
                f"{wrong[0].get('clientId')!r} and status {wrong[0].get('status')!r}"
                if wrong
                else ""
            )
    return out


def _page_judged(rec: Recorded, page: dict[str, Any]) -> dict[str, str]:
    """PAGE-001 and PAGE-002 of one page alone: what no concurrent insert or status change can explain."""
    items = page.get("items")
    if not isinstance(items, list):
        return {}
    out: dict[str, str] = {}
    stamped = [
        (item.get("runId"), item.get("createdAt"), parse_instant(item.get("createdAt")))
        for item in items
        if isinstance(item, dict) and isinstance(item.get("createdAt"), str)
    ]
    stamped = [entry for entry in stamped if entry[2] is not None]
    if len(stamped) > 1:
        out["PAGE-001"] = ""
        for (id_a, at_a, t_a), (id_b, at_b, t_b) in itertools.pairwise(stamped):
            if t_a is not None and t_b is not None and t_a < t_b:
                out["PAGE-001"] = f"run {id_a} (createdAt {at_a}) came before the newer run {id_b} (createdAt {at_b})"
                break
    limit = _limit(rec.url)
    if page.get("nextCursor") is not None and limit is not None:
        out["PAGE-002"] = (
            ""
            if len(items) == limit
            else f"a page with a nextCursor held {len(items)} runs; limit {limit} asks for exactly that many"
        )
    return out


def _limit(url: str) -> int | None:
    """The page size the request asked for: 50 when absent; None when it is not one the contract accepts."""
    sent = [value for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True) if name == "limit"]
    if not sent:
        return 50
    if len(sent) > 1 or not sent[0].isascii() or not sent[0].isdigit():
        return None
    limit = int(sent[0])
    return limit if 1 <= limit <= 200 else None


def _lifecycle_alone(run: dict[str, Any]) -> dict[str, str]:
    """LIFE-003 and LIFE-004 of one Run, as the lifecycle monitor (conformance/monitor.py) judges it."""
    run_id, status, finished = run["runId"], run.get("status"), run.get("finishedAt")
    found: dict[str, str] = {}
    if status in terminal_statuses() and finished is None:
        found["LIFE-003"] = f"run {run_id}: status {status} is terminal but finishedAt is null"
    elif status not in terminal_statuses() and status is not None and finished is not None:
        found["LIFE-003"] = f"run {run_id}: status {status} is not terminal but finishedAt is {finished!r}"
    if status == "running" and run.get("startedAt") is None:
        found["LIFE-004"] = f"run {run_id}: status is running but startedAt is null"
    stamps = [(k, run.get(k)) for k in ("createdAt", "startedAt", "finishedAt") if run.get(k) is not None]
    parsed = [(k, parse_instant(v)) for k, v in stamps]
    for (k1, t1), (k2, t2) in itertools.pairwise(parsed):
        if t1 is not None and t2 is not None and t1 > t2 and "LIFE-004" not in found:
            found["LIFE-004"] = f"run {run_id}: {k1} {run.get(k1)} is after {k2} {run.get(k2)}"
    return found


def _short(text: str | None, limit: int = 120) -> str:
    body = (text or "").replace("\n", " ")
    return body[:limit] + "…" if len(body) > limit else body
