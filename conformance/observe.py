"""Observe mode: recorded traffic judged against the catalog, one answer at a time and as a history.

    report = observe([Path("traffic.har")], report_dir=Path("reports"))
    report.exit_code   # 1 when a violation was seen, 0 otherwise (2: nothing at all was readable)

The pipeline: read (conformance/observe_traffic.py, streaming) → classify each exchange by the
spec's paths and methods → judge every answer alone (conformance/observe_judges.py) → rebuild the
history (one Operation per exchange of the spec's five operations) → `check_history` → one row per
requirement → the same reports as a run (conformance.json, HTML, JUnit).

What observation can and cannot say:

- A requirement with no instance in the traffic is `not_run`, "not observed"; one observe mode
  never judges (it needs a request the suite makes on purpose) is `not_run` too, and says so.
- The verdict is never `conformant`: traffic shows what it shows. With a violation it is
  `not_conformant` (exit 1); without, `incomplete` with exit code 0 and a reason that says what was
  observed and that no violation was seen.
- Order comes only from the recording's times, widened by their precision: an exchange with no time
  (the suite's exchanges.jsonl records none) overlaps every other, so the history checker never
  infers an order the recording does not prove; the rules that need no order (one key one run,
  one definition one ETag) still judge it.
- Clients are told apart by credential (each token becomes "credential N"; no token is written
  anywhere) and, where the format has one, by client or connection id.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import gc
import hashlib
import json
import math
import re
import shlex
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import rfc8785

import conformance
from conformance.catalog import Level, catalog
from conformance.events import Events
from conformance.history import KINDS, History, Kind, Operation
from conformance.history_checker import check_history, evaluations
from conformance.observe_cancels import RULES as CANCELS
from conformance.observe_cancels import terminal_cancel_findings
from conformance.observe_judges import JUDGED, ResponseJudge
from conformance.observe_lifecycle import RULES as LIFECYCLE
from conformance.observe_lifecycle import lifecycle_findings
from conformance.observe_replays import RULES as REPLAYS
from conformance.observe_replays import replay_findings
from conformance.observe_retention import DEFAULT_RETENTION, KeyRetention
from conformance.observe_semantics import RULES as CONDITIONAL
from conformance.observe_semantics import conditional_findings
from conformance.observe_traffic import ReadError, Recorded, read_traffic
from conformance.observe_walks import RULES as WALKS
from conformance.observe_walks import page_end_findings
from conformance.redaction import redact_headers, redact_text
from conformance.report import write_reports
from conformance.results import Evidence, Exchange, RequirementResult, RunReport, Status, TimelineEntry, Verdict
from conformance.spec import load_spec, spec_sha256, spec_version

__all__ = ["DECIDED", "Observation", "Observer", "observe", "observe_records", "tell_outcome"]

# What observe mode judges: each answer alone, and the history's rules. Every other requirement
# needs a request made on purpose (a malformed body, a made-up runId) and is never judged here.
# A requirement judged on exactly another's instances (its statement is that rule for one client).
SAME_AS = {"CANCEL-005": "CONC-007"}
# The rules observe judges on the rebuilt history besides the history checker's CONC-*: each module's
# rules and its judge, (instances, findings) = judge(history).
HISTORY_JUDGES = (
    (CONDITIONAL, conditional_findings),
    (REPLAYS, replay_findings),
    (WALKS, page_end_findings),
    (CANCELS, terminal_cancel_findings),
    (LIFECYCLE, lifecycle_findings),
)
DECIDED = (
    frozenset(JUDGED)
    | frozenset(rid for rules, _ in HISTORY_JUDGES for rid in rules)
    | frozenset(SAME_AS)
    | {f"CONC-{n:03d}" for n in range(1, 13)}
)
# A 409's cause may lie outside the history: a key-reused 409's (another body, sent at any time before) in a
# segment before or before the recording began, an in-flight 409's (a request with the key meanwhile) in one
# that overlaps it but went around the recorder. Unless the recording is complete (it holds every request the
# server got, from its start), neither is judged where its cause could be missing; see `_cause_judged`.
CAUSE_MAY_PRECEDE = "CONC-003"
IN_FLIGHT = "CONC-004"
CAUSED = (CAUSE_MAY_PRECEDE, IN_FLIGHT)
EVIDENCE_KEPT = 50  # per requirement, with a history limit: a broken server would otherwise fill memory with copies
EVIDENCE_BODY = 4096  # characters of a body an exchange in the evidence shows
NOT_OBSERVED = "not observed"
_UNTIMED_END = 1e12  # an exchange with no time overlaps every timed one (epoch seconds stay far below)
UNREADABLE_NAME = "unreadable.txt"


@dataclass
class Observation:
    """What was read and what was found: the report's inputs, kept apart from the report for tests."""

    sources: list[str]
    exchanges: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    not_in_spec: Counter[str] = field(default_factory=Counter)  # "METHOD /path" of undocumented requests
    errors: list[ReadError] = field(default_factory=list)
    evaluations: Counter[str] = field(default_factory=Counter)
    findings: dict[str, list[Evidence]] = field(default_factory=dict)
    credentials: int = 0
    untimed: int = 0  # exchanges the recording gives no time: they order nothing
    operations_judged: int = 0
    secrets: list[str] = field(default_factory=list)  # the tokens seen: kept out of every file written
    read_from: str = ""  # where the exchanges came from, when not files ("live traffic to URL")


@functools.cache
def _templates() -> tuple[tuple[re.Pattern[str], dict[str, str]], ...]:
    """Each of the spec's paths as a pattern (anywhere under a base path) capturing its runId, with its methods."""
    found = []
    for template, methods in load_spec()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
        ops = {
            m.upper(): str(d["operationId"]) for m, d in methods.items() if isinstance(d, dict) and "operationId" in d
        }
        found.append((re.compile(pattern), ops))
    return tuple(found)


def classify(method: str, url: str) -> tuple[str | None, str | None, bool]:
    """(operationId, the path's runId, whether the path is the spec's): operationId None when not in the spec."""
    path = urlsplit(url).path.rstrip("/") or "/"
    for pattern, ops in _templates():
        found = pattern.search(path)
        if found:
            run_id = unquote(found.group(1)) if found.groups() else None
            return ops.get(method), run_id, True
    return None, None, False


class _Identities:
    """Credentials as "credential 1, 2, ..." in order of first use, and clients by (credential, connection)."""

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}
        self.clients: dict[tuple[str, str | None], int] = {}
        self.secrets: set[str] = set()

    def credential(self, raw: str | None) -> str:
        if raw is None:
            return "no credential"
        # The scheme is case-insensitive and whitespace around the token is not part of it (RFC 9110 §11.4):
        # "bearer t" and "Bearer  t" are one credential, and one split in two would leave a key's 409 without
        # the request that caused it.
        scheme, _, token = raw.strip().partition(" ")
        if not token:
            scheme, token = ("", scheme) if scheme.lower() not in ("bearer", "basic") else (scheme, "")
        token = token.strip(" \t")
        identity = f"{scheme.lower()} {token}"
        if identity not in self.labels:
            self.labels[identity] = f"credential {len(self.labels) + 1}"
            if token and not token.startswith("$") and "[redacted]" not in token:
                self.secrets.update({raw.strip(), token})
        return self.labels[identity]

    def client(self, credential: str, connection: str | None) -> int:
        return self.clients.setdefault((credential, connection), len(self.clients))


def _fingerprint(body: str) -> str:
    """Equal for bodies equal as JSON (RFC 8785), as the workload's; a body that is not JSON by its bytes."""
    try:
        return hashlib.sha256(bytes(rfc8785.dumps(json.loads(body)))).hexdigest()
    except (ValueError, TypeError, rfc8785.CanonicalizationError):
        return "bytes:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def _response_json(rec: Recorded) -> Any:
    if not rec.response_body_known or not rec.response_body:
        return None
    try:
        return json.loads(rec.response_body, parse_float=decimal.Decimal)
    except ValueError:
        return None


class _Builder:
    """Turns recorded exchanges of the spec's operations into the history's Operations, in recording order."""

    def __init__(self, identities: _Identities, skew: float, retention: KeyRetention) -> None:
        self.identities = identities
        self.skew = skew
        self._operations: list[Operation] = []
        self.retention = retention
        self.records: list[Recorded] = []
        # (credential, nextCursor) → (walk, the page that returned it, the walk's status and clientId filters)
        self.cursors: dict[tuple[str, str], tuple[int, int, tuple[str | None, str | None]]] = {}
        self.walks = 0
        self.late = False  # the server may have got requests before this history: CAUSE_MAY_PRECEDE is not judged
        self.starts_before_end = -math.inf  # when the last startRun of the segments before may have ended
        # (credential, key) of uses whose body the recording lacks: such a use may be any 409's cause
        self.blind_keys: set[tuple[str, str]] = set()

    def add(self, rec: Recorded, kind: Kind, run_id: str | None) -> None:
        credential = self.identities.credential(rec.credential)
        index = len(self._operations)
        invoked, completed = _interval(rec, self.skew)
        answered = rec.status is not None and rec.error is None
        body = _response_json(rec) if answered else None
        pairs = parse_qsl(urlsplit(rec.url).query, keep_blank_values=True)
        query = dict(pairs)
        facts: dict[str, Any] = {}
        if kind == "startRun":
            key = rec.header("idempotency-key", response=False)
            # A key judged on an unknown body would call a replay a conflict: leave such a request keyless.
            if key is not None and rec.request_body_known:
                facts["key"] = key
                facts["body_fingerprint"] = _fingerprint(rec.request_body or "")
            if key is not None:
                self.retention.note(credential, key, index, invoked, facts.get("body_fingerprint"))
                if not rec.request_body_known:
                    self.blind_keys.add((credential, key))
            facts["client_id"] = _client_id(rec.request_body)
        elif kind == "listRuns":
            # A cursor or filter sent twice: which value the server took is unknown, and so is the walk.
            sent = [name for name, _ in pairs if name in ("cursor", "status", "clientId")]
            if len(sent) == len(set(sent)):
                facts.update(self._walk(credential, query, body, answered))
        elif kind == "getRunDefinition":
            facts["if_none_match"] = rec.header("if-none-match", response=False)
        self._operations.append(
            Operation(
                index=index,
                client=self.identities.client(credential, rec.connection),
                credential=credential,
                kind=kind,
                invoked=invoked,
                completed=completed if answered else None,
                status=rec.status if answered else None,
                run_id=run_id if kind in ("getRun", "getRunDefinition", "cancelRun") else None,
                query=query,
                body=body,
                etag=rec.header("etag") if answered else None,
                error=None if answered else (rec.error or "no answer recorded"),
                **facts,
            )
        )
        # Kept for evidence only, which shows a body's first EVIDENCE_BODY characters: the rest is memory.
        self.records.append(_evidence_only(rec))

    @property
    def operations(self) -> list[Operation]:
        """The history's operations, each use of a key under the key it may be judged on (--key-retention)."""
        self.retention.apply(self._operations)
        return self._operations

    def _walk(self, credential: str, query: dict[str, str], body: Any, answered: bool) -> dict[str, Any]:
        """A page without a cursor starts a walk; one whose cursor an earlier page returned, sent with that
        page's filters, continues that walk. A cursor sent with other filters is PAGE-008's business: what
        the server then walks is not the walk the rules hold it to, so that page belongs to no walk."""
        cursor = query.get("cursor")
        filters = (query.get("status"), query.get("clientId"))
        if cursor is None:
            walk, page = self.walks, 0
            self.walks += 1
        elif self.cursors.get((credential, cursor), (None, None, None))[2] == filters:
            walk, before, _ = self.cursors[(credential, cursor)]
            page = before + 1
        else:
            return {}  # a page of a walk the recording does not hold from its start
        if answered and isinstance(body, dict) and isinstance(body.get("nextCursor"), str):
            self.cursors[(credential, body["nextCursor"])] = (walk, page, filters)
        return {"walk": walk, "page": page}


def _evidence_only(rec: Recorded) -> Recorded:
    """The exchange with its bodies cut to what evidence shows (`_exchange`): a listRuns page of 200 runs
    is 60 kB of text, held for as long as the history is."""
    request, response = rec.request_body, rec.response_body
    if (request is None or len(request) <= EVIDENCE_BODY) and (response is None or len(response) <= EVIDENCE_BODY):
        return rec
    return dataclasses.replace(
        rec,
        request_body=None if request is None else request[:EVIDENCE_BODY],
        response_body=None if response is None else response[:EVIDENCE_BODY],
    )


def _client_id(body: str | None) -> str | None:
    try:
        value = json.loads(body or "").get("clientId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _interval(rec: Recorded, skew: float = 0.0) -> tuple[float, float]:
    """[invoked, completed] wide enough to hold the real one: the recording's times widened by their precision,
    and by `skew`, how far the clocks of the recorders (several gateway nodes) may be apart."""
    if rec.started is None:
        return 0.0, _UNTIMED_END
    invoked = rec.started - rec.precision - skew
    if rec.duration is None:
        return invoked, _UNTIMED_END
    return invoked, rec.started + rec.duration + rec.precision + skew


def observe_records(
    items: Iterable[Recorded | ReadError],
    sources: Sequence[str],
    clock_skew: float = 0.0,
    key_retention: float | None = DEFAULT_RETENTION,
    *,
    complete: bool = False,
) -> Observation:
    """Judge every answer alone as it streams by, build the history of the spec's operations, and check it."""
    # Only acyclic data is built, which reference counting frees; the cyclic collector would walk the
    # growing history again and again (a third of the time at 100k exchanges), as in check_history.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        observer = Observer(sources, clock_skew, key_retention=key_retention, complete=complete)
        for item in items:
            observer.add(item)
        return observer.observation()
    finally:
        if was_enabled:
            gc.enable()


class Observer:
    """Observe mode fed one exchange at a time, so that a live proxy (conformance/observe_live.py) can tell
    each answer's findings as it comes, and check the history whenever it writes a report.

    `add` judges one answer alone and returns its new findings; `observation()` checks the history of
    everything added so far and may be called again later: each call starts from the answers' findings.

    `history_limit` bounds memory for a session of any length (the live proxy's): once the histories hold
    that many operations, they are checked a last time, their findings and instance counts are kept (they
    are final: no later exchange can undo a contradiction or an instance), and a new segment begins with
    empty histories. A segment is a recording that started later, which the rules judge soundly because
    each one compares only operations the history holds, ordered by real-time precedence:
    one run and one body per key (CONC-001/002), lifecycle, terminal status and timestamps (CONC-005..008,
    and one client's successive reads: LIFE-001/002/004),
    a shown run never 404 (CONC-009: "shown" within the segment), walks (CONC-010/011: a page whose cursor
    came from the segment before belongs to no walk, and a walk is held to return only runs the segment
    showed), one ETag and workflow per definition (CONC-012, ETAG-004..006), replays and reuses whose
    earlier 202 is in the segment (IDEM-*), and cancels (CANCEL-002). The exception is a 409's cause,
    which may be in a segment before: CONC-003's (another body, sent at any time before) is not judged in
    later segments at all, and CONC-004's (a request in flight meanwhile) only on 409s sent after every
    startRun of the segments before had been answered (an unanswered one may be in flight for ever);
    neither counts an instance where it is not judged. The per-answer dedup and the evidence are bounded
    too (EVIDENCE_KEPT a requirement, and as many undocumented "METHOD /path" kept apart), and so are the
    client numbers (per segment); what still grows is one entry per distinct credential (its label, and
    its token to scrub) and per origin."""

    def __init__(
        self,
        sources: Sequence[str],
        clock_skew: float = 0.0,
        history_limit: int | None = None,
        key_retention: float | None = DEFAULT_RETENTION,
        *,
        complete: bool = False,
    ) -> None:
        self.seen = Observation(list(sources))
        # Whether the traffic holds every request the server got, from its start (a fresh server reached only
        # through the recorder): only then can a 409's missing cause be told from one the recording missed.
        self.complete = complete
        self.identities = _Identities()
        self.skew = clock_skew
        self.key_retention = key_retention  # seconds a server may keep an Idempotency-Key; None: forever
        # One history per origin: two deployments in one recording (staging and production, two suite runs)
        # may both have a run "57", and rules across them would compare unrelated runs.
        self.builders: dict[str, _Builder] = {}
        self.judge = ResponseJudge()
        self.reported: set[tuple[str, str]] = set()
        self.history_limit = history_limit
        self.held = 0  # operations in the current segment's histories
        self.starts_ended: dict[str, float] = {}  # per origin: when its earlier segments' startRuns had all ended
        self.keys_before: dict[str, float] = {}  # per origin: the earliest keyed startRun of its earlier segments
        self.segments = 1

    def add(self, item: Recorded | ReadError) -> list[tuple[str, Evidence]]:
        seen = self.seen
        if isinstance(item, ReadError):
            seen.errors.append(item)
            return []
        seen.exchanges += 1
        if item.started is None:
            seen.untimed += 1
        operation_id, run_id, in_spec = classify(item.method, item.url)
        if operation_id is None:
            path = urlsplit(item.url).path if in_spec else "(a path not in the spec)"
            named = f"{item.method} {path}"
            if (
                self.history_limit is not None
                and named not in seen.not_in_spec
                and len(seen.not_in_spec) >= EVIDENCE_KEPT
            ):
                named = "(other requests not in the spec)"  # a path holds a runId: one entry each would grow forever
            seen.not_in_spec[named] += 1
            return []
        seen.operations[operation_id] += 1
        found: list[tuple[str, Evidence]] = []
        for rid, broken in self.judge.judge(operation_id, item).items():
            seen.evaluations[rid] += 1
            # Each kind of finding once, as a run's judge does: a poll repeats one wrong answer many times.
            if broken and (rid, f"{operation_id} {broken}") not in self.reported and self._room(rid):
                self.reported.add((rid, f"{operation_id} {broken}"))
                message = f"{operation_id} recorded in {item.source}, {item.where}: {broken} ({rid})"
                evidence = Evidence("observe", message, [_exchange(item, self.identities)])
                seen.findings.setdefault(rid, []).append(evidence)
                found.append((rid, evidence))
        if operation_id in KINDS:  # the spec's five operations: what the history is made of
            origin = urlsplit(item.url).netloc.lower()
            builder = self.builders.get(origin)
            if builder is None:
                # A key seen in this segment may have been stored in one before: its earliest use there counts.
                retention = KeyRetention(self.key_retention, self.keys_before.get(origin, math.inf))
                builder = self.builders[origin] = _Builder(self.identities, self.skew, retention)
                builder.late = self.segments > 1 or not self.complete
                # Not complete: a request the recording never saw may be in flight at any time.
                builder.starts_before_end = self.starts_ended.get(origin, -math.inf if self.complete else math.inf)
            builder.add(item, operation_id, run_id)
            self.held += 1
            if self.history_limit is not None and self.held >= self.history_limit:
                self.new_segment()
        return found

    def _room(self, rid: str) -> bool:
        """Whether another piece of evidence for `rid` is kept: always, unless memory is bounded."""
        return self.history_limit is None or len(self.seen.findings.get(rid, ())) < EVIDENCE_KEPT

    def new_segment(self) -> None:
        """Check the histories a last time, keep what they showed (final), and start empty ones."""
        checked = self.observation()
        for origin, builder in self.builders.items():
            ends = [
                math.inf if op.completed is None else op.completed for op in builder.operations if op.kind == "startRun"
            ]
            self.starts_ended[origin] = max([builder.starts_before_end, *ends])
            self.keys_before[origin] = builder.retention.earliest
        self.seen.operations_judged = checked.operations_judged
        self.seen.evaluations = checked.evaluations
        self.seen.findings = {rid: found[:EVIDENCE_KEPT] for rid, found in checked.findings.items()}
        self.builders = {}
        self.identities.clients = {}  # a client is a number within one history
        self.held = 0
        self.segments += 1

    def observation(self) -> Observation:
        """What was seen so far, with the history's findings: the answers' own are kept apart, so a later
        call does not count the history's findings twice."""
        seen = self.seen
        result = dataclasses.replace(
            seen,
            evaluations=Counter(seen.evaluations),
            findings={rid: list(found) for rid, found in seen.findings.items()},
            errors=list(seen.errors),
            credentials=len(self.identities.labels),
            secrets=sorted(self.identities.secrets),
        )
        for builder in self.builders.values():
            history = History(builder.operations)
            result.operations_judged += len(history)
            counted = _cause_counts(evaluations(history), builder)
            result.evaluations.update(counted)
            # CANCEL-005's "cancelRequestedAt keeps the first value" is CONC-007 on one client's reads:
            # the same instances and findings, not a second copy of the rule.
            result.evaluations.update({rid: counted[conc] for rid, conc in SAME_AS.items() if counted[conc]})
            findings = check_history(history)
            for _, judge in HISTORY_JUDGES:
                instances, judged = judge(history)
                result.evaluations.update(instances)
                findings += judged
            for found in findings:
                if found.requirement_id in CAUSED and not _cause_judged(
                    found.requirement_id, history[found.operations[0]], builder
                ):
                    continue
                evidence = _history_evidence(found.message, found.operations, history, builder.records, self.identities)
                for rid in (found.requirement_id, *(r for r, conc in SAME_AS.items() if conc == found.requirement_id)):
                    result.findings.setdefault(rid, []).append(evidence)
        return result


def _cause_judged(rule: str, op: Operation, builder: _Builder) -> bool:
    """Whether a 409 of `op` without a cause in the history would be CONC-003's or CONC-004's finding: only
    where the cause cannot be missing. A key-reused 409's cause may be any earlier use of the key, so it is
    judged only on a history that holds the server's every request (the first segment of a complete
    recording); an in-flight 409's overlaps it, so it is judged once every startRun the history does not
    hold had ended. A key used with a body the recording lacks is judged on neither: that use may be the
    cause. A use the server may have forgotten its key by (--key-retention) is judged on nothing."""
    if builder.retention.forgotten(op.index) or (op.credential, _raw_key(op, builder)) in builder.blind_keys:
        return False
    if rule == CAUSE_MAY_PRECEDE:
        return not builder.late
    return op.invoked > builder.starts_before_end


def _raw_key(op: Operation, builder: _Builder) -> str | None:
    """The Idempotency-Key as sent (the history's may carry a retention suffix)."""
    return builder.records[op.index].header("idempotency-key", response=False)


def _cause_counts(counted: Counter[str], builder: _Builder) -> Counter[str]:
    """CONC-003's and CONC-004's instances: each answered keyed startRun on which the rule is judged."""
    out = Counter({rid: n for rid, n in counted.items() if rid not in CAUSED})
    keyed = [
        op for op in builder.operations if op.kind == "startRun" and op.key is not None and op.completed is not None
    ]
    for rule in CAUSED:
        out[rule] = sum(1 for op in keyed if _cause_judged(rule, op, builder))
    return +out


def _history_evidence(
    message: str, indices: Sequence[int], history: History, records: Sequence[Recorded], identities: _Identities
) -> Evidence:
    """A history finding with the recorded exchanges that prove it, each named by file and line or entry."""
    where = "; ".join(f"op #{i} is {records[i].source}, {records[i].where}" for i in indices)
    timed = all(records[i].started is not None for i in indices)
    start = min((history[i].invoked for i in indices), default=0.0)
    timeline = [_entry(history[i], start) for i in indices] if timed else []  # untimed: no place on a time axis
    return Evidence(
        "observe",
        f"{message} [recorded: {where}]",
        [_exchange(records[i], identities) for i in indices],
        timeline=timeline,
    )


def _entry(op: Operation, start: float) -> TimelineEntry:
    ended = op.completed if op.completed is not None and op.completed < _UNTIMED_END else None
    return TimelineEntry(
        index=op.index,
        client=op.client,
        kind=op.kind,
        invoked=op.invoked - start,
        completed=None if ended is None else ended - start,
        status=op.status,
        highlight=True,
    )


def _exchange(rec: Recorded, identities: _Identities) -> Exchange:
    """The recorded exchange as a report shows it: credentials redacted, and where it was recorded."""
    secrets = tuple(sorted(identities.secrets, key=len, reverse=True))
    headers = redact_headers(dict(rec.request_headers), secrets)
    return Exchange(
        method=rec.method,
        url=redact_text(rec.url, secrets),
        request_headers=headers,
        request_body=None if rec.request_body is None else redact_text(rec.request_body[:EVIDENCE_BODY], secrets),
        status=rec.status,
        response_headers=redact_headers(dict(rec.response_headers), secrets),
        response_body=None if rec.response_body is None else redact_text(rec.response_body[:EVIDENCE_BODY], secrets),
        elapsed_ms=round((rec.duration or 0.0) * 1000, 3),
        error=rec.error,
        curl=f"# recorded in {rec.source}, {rec.where}",
    )


# --- the report ---------------------------------------------------------------------------------------
def rows(seen: Observation) -> list[RequirementResult]:
    """One row per requirement: failed (warning for a SHOULD) on a finding, passed on instances with none,
    not_run ("not observed") without an instance."""
    found: list[RequirementResult] = []
    for req in catalog().values():
        count = seen.evaluations.get(req.id, 0)
        evidence = seen.findings.get(req.id, [])
        if evidence:
            status = Status.FAILED if req.level is Level.MUST else Status.WARNING
            row = RequirementResult.of(req, status, evidence[0].message)
        elif req.id not in DECIDED:
            row = RequirementResult.of(
                req, Status.NOT_RUN, f"{NOT_OBSERVED}: observe mode does not judge it from traffic"
            )
        elif count == 0:
            row = RequirementResult.of(req, Status.NOT_RUN, f"{NOT_OBSERVED}: no instance in the traffic")
        else:
            row = RequirementResult.of(
                req, Status.PASSED, f"{count} instance{'s' if count != 1 else ''} observed, no violation"
            )
        row.evaluations = count
        row.evidence = evidence
        row.checks = ["observe"] if req.id in DECIDED else []
        found.append(row)
    return found


def summary(seen: Observation, violated: Sequence[str]) -> str:
    """The one line that says what was observed and whether a violation was seen."""
    ops = sum(seen.operations.values())
    judged = sum(1 for rid in DECIDED if seen.evaluations.get(rid))
    parts = [
        f"observed {seen.exchanges} exchanges in {seen.read_from or f'{len(seen.sources)} file(s)'}: "
        f"{ops} of the spec's operations, "
        f"{sum(seen.not_in_spec.values())} not in the spec; {seen.credentials} credential(s)"
    ]
    if seen.untimed:
        parts.append(f"{seen.untimed} exchanges without times (they order nothing)")
    if seen.errors:
        parts.append(f"{len(seen.errors)} unreadable (first: {seen.errors[0]})")
    if violated:
        parts.append(f"violations of {', '.join(violated)}")
    else:
        parts.append(
            f"no violation seen on the {judged} requirements observed (an observation never proves conformance)"
        )
    return "; ".join(parts)


def report_of(seen: Observation, command: str, started_at: str, duration_s: float) -> RunReport:
    results = rows(seen)
    violated = [r.id for r in results if r.status in (Status.FAILED, Status.WARNING)]
    failed = any(r.status is Status.FAILED for r in results)
    report = RunReport(
        verdict=Verdict.NOT_CONFORMANT if failed else Verdict.INCOMPLETE,
        exit_code=1 if violated else 0,
        reason=summary(seen, violated),
        suite_version=conformance.__version__,
        spec_version=spec_version(),
        spec_sha256=spec_sha256(),
        base_url="observed: " + ", ".join(seen.sources),
        profile="observe",
        strict=False,
        seed=0,
        command=command,
        started_at=started_at,
        duration_s=duration_s,
        requirements=results,
    )
    return report


def observe(
    paths: Sequence[Path],
    report_dir: Path,
    command: str = "",
    events: Events | None = None,
    clock_skew: float = 0.0,
    key_retention: float | None = DEFAULT_RETENTION,
    *,
    complete: bool = False,
) -> tuple[RunReport, Observation]:
    """Read, judge and report. exit_code: 1 on a violation, 0 otherwise, 2 when nothing at all was readable.

    `complete`: the recording holds every request the server got, from its start; only then are 409s
    without a cause in the recording judged (CONC-003, CONC-004).

    `key_retention` is how long the server may keep an Idempotency-Key (seconds, None: forever): a use of
    a key answered later than that after the key's first use is not judged against its other uses.

    `events` hears what a run's --events stream says (run_started, info, finding, requirement,
    run_finished), once the recording is judged, with every token seen scrubbed from its text.
    """
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    sources = [str(p) for p in paths]
    seen = observe_records(
        (item for path in paths for item in read_traffic(path)), sources, clock_skew, key_retention, complete=complete
    )
    report = report_of(
        seen, command or "runs-conformance observe " + " ".join(map(shlex.quote, sources)), started_at, 0.0
    )
    if seen.exchanges == 0:
        report.exit_code = 2
    report.duration_s = round(time.monotonic() - clock, 3)
    write_reports(report, report_dir, secrets=seen.secrets)
    unreadable = report_dir / UNREADABLE_NAME
    if seen.errors:
        unreadable.write_text("".join(f"{e}\n" for e in seen.errors), encoding="utf-8")
    elif unreadable.exists():
        unreadable.unlink()  # a previous observation's, not this one's
    if events is not None:
        _tell(events, report, seen)
    return report, seen


def _tell(events: Events, report: RunReport, seen: Observation) -> None:
    secrets = tuple(sorted(seen.secrets, key=len, reverse=True))
    events.emit(
        "run_started",
        banner=f"runs-conformance {conformance.__version__}, spec {spec_version()}: observe {', '.join(seen.sources)}",
        seed=0,
        profile="observe",
        checks=1,
        selected=sorted(DECIDED),
    )
    for error in seen.errors:
        events.info(f"unreadable: {error}")
    for row in report.requirements:
        for evidence in row.evidence:
            events.emit("finding", requirement=row.id, check="observe", message=redact_text(evidence.message, secrets))
    tell_outcome(events, report, seen.secrets)


def tell_outcome(events: Events, report: RunReport, secrets: Iterable[str]) -> None:
    """The report's rows and run_finished as events (live observe tells its findings as they come)."""
    secrets = tuple(sorted(secrets, key=len, reverse=True))
    for row in report.requirements:
        events.emit(
            "requirement",
            id=row.id,
            level=row.level,
            status=row.status.value,
            evaluations=row.evaluations,
            message=redact_text(row.message, secrets),
        )
    events.emit(
        "run_finished",
        report=report,
        verdict=report.verdict.value,
        exit_code=report.exit_code,
        reason=redact_text(report.reason, secrets),
        counts=report.counts(),
        duration_s=report.duration_s,
        seed=0,
    )
