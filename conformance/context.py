"""What a check works with: clients, fixtures, budgets, and the bookkeeping of a session.

One Session lives for a whole run (clients, the runs the suite started, the lifecycle monitor);
each check gets a CheckContext over it, with its own recorder and failure list.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from hypothesis import HealthCheck, settings

from conformance.client import ApiClient, ApiResponse, Recorder
from conformance.fingerprints import assertion_site, fingerprint, operation_of
from conformance.meaning import parse_instant, same_instant
from conformance.outcomes import Example, Failed, Skipped, Tally
from conformance.results import Evidence, Exchange, TimelineEntry
from conformance.spec import load_spec, schema_validator

__all__ = ["CheckContext", "Fixtures", "LifecycleMonitor", "Profile", "Session", "StartedRun"]

T = TypeVar("T")

RUNS = "/api/v1/runs"
EVIDENCE_EXCHANGES = 6  # exchanges attached to a failure: enough to see the story, not the whole run


@dataclass(frozen=True)
class Profile:
    """Example budgets. `quick` still runs every check at least once."""

    name: str
    max_examples: int  # Hypothesis examples per property-based check
    schema_examples: int  # Schemathesis examples per operation
    stateful_examples: int  # scenarios of the state machines
    stateful_steps: int
    concurrency: int  # parallel requests in the concurrency checks
    walk_size: int  # runs created for pagination walks
    workload_clients: int  # clients of the concurrent workload (checks/concurrency.py)
    workload_seconds: float  # how long the workload drives the server


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        max_examples=5,
        schema_examples=5,
        stateful_examples=3,
        stateful_steps=6,
        concurrency=20,
        walk_size=12,
        workload_clients=4,
        workload_seconds=3.0,
    ),
    "default": Profile(
        "default",
        max_examples=25,
        schema_examples=25,
        stateful_examples=15,
        stateful_steps=10,
        concurrency=25,
        walk_size=30,
        workload_clients=8,
        workload_seconds=10.0,
    ),
    "thorough": Profile(
        "thorough",
        max_examples=150,
        schema_examples=150,
        stateful_examples=60,
        stateful_steps=20,
        concurrency=50,
        walk_size=120,
        workload_clients=16,
        workload_seconds=60.0,
    ),
}


class Fixtures:
    """The workflows the suite drives: quick, long and failing."""

    NAMES = ("quick", "long", "failing")

    def __init__(self, workflows: dict[str, Any], source: str) -> None:
        self._workflows = workflows
        self.source = source

    @classmethod
    def default(cls) -> Fixtures:
        text = (resources.files("conformance") / "fixtures.yaml").read_text(encoding="utf-8")
        return cls(yaml.safe_load(text), "the suite's default fixtures")

    @classmethod
    def from_file(cls, path: Path) -> Fixtures:
        """Raises ValueError with a one-line reason when the file is not a fixtures file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read fixtures file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"fixtures file {path} must map names ({', '.join(cls.NAMES)}) to workflows")
        unknown = set(data) - set(cls.NAMES)
        if unknown:
            raise ValueError(f"fixtures file {path} has unknown keys {sorted(unknown)}; known: {list(cls.NAMES)}")
        return cls(data, str(path))

    def has(self, name: str) -> bool:
        return name in self._workflows

    def workflow(self, name: str) -> dict[str, Any]:
        """A fresh copy of a fixture workflow, or Skipped when the fixtures lack it."""
        if name not in self._workflows:
            raise Skipped(f"no '{name}' workflow in {self.source} (give one with --fixtures)")
        return copy.deepcopy(self._workflows[name])


def _transitions() -> tuple[dict[str, set[str]], set[str]]:
    status = load_spec()["components"]["schemas"]["RunStatus"]
    return {k: set(v) for k, v in status["x-transitions"].items()}, set(status["x-terminal"])


@dataclass
class Finding:
    requirement_id: str
    message: str
    exchanges: list[Exchange]


class LifecycleMonitor:
    """Checks every observation of every run against the lifecycle rules (LIFE-001..004).

    Fed by every getRun and listRuns the suite makes, so a backwards move is caught wherever it
    shows, not only in the checks that look for it.
    """

    def __init__(self) -> None:
        self.moves, self.terminal = _transitions()
        self._last: dict[str, dict[str, Any]] = {}
        self._answered: dict[str, float] = {}  # runId -> when the answer that showed _last arrived
        self._lock = threading.Lock()  # checks side by side feed one monitor
        self.findings: list[Finding] = []
        self.observations = 0
        self.evaluations: Counter[str] = Counter()  # rules judged per requirement, failed or not

    def observe(self, run: Any, exchange: Exchange | None, response: ApiResponse | None = None) -> None:
        """One Run as an answer showed it; `response` gives the real-time order of the answers.

        Moves are judged only between answers the clock orders (the earlier one arrived before the
        later one was sent): checks side by side read the same runs, and two overlapping reads may
        be applied by the server in either order, so comparing them would cry wolf.
        """
        with self._lock:
            self._observe(run, exchange, response)

    def _observe(self, run: Any, exchange: Exchange | None, response: ApiResponse | None) -> None:
        if not isinstance(run, dict) or not isinstance(run.get("runId"), str):
            return  # not a Run: the schema checks say so
        self.observations += 1
        evidence = [exchange] if exchange else []
        run_id, status = run["runId"], run.get("status")
        invoked, completed = (response.invoked, response.completed) if response is not None else (None, None)
        answered = self._answered.get(run_id)
        previous = self._last.get(run_id) if invoked is None or answered is None or answered < invoked else None

        def finding(req: str, message: str) -> None:
            self.findings.append(Finding(req, f"run {run_id}: {message}", evidence))

        finished = run.get("finishedAt")
        self.evaluations.update(("LIFE-003", "LIFE-004"))
        if status in self.terminal and finished is None:
            finding("LIFE-003", f"status {status} is terminal but finishedAt is null")
        if status not in self.terminal and status is not None and finished is not None:
            finding("LIFE-003", f"status {status} is not terminal but finishedAt is {finished!r}")
        if status == "running" and run.get("startedAt") is None:
            finding("LIFE-004", "status is running but startedAt is null")
        stamps = [(k, run.get(k)) for k in ("createdAt", "startedAt", "finishedAt")]
        parsed = [(k, parse_instant(v)) for k, v in stamps if v is not None]
        for (k1, t1), (k2, t2) in itertools.pairwise(parsed):
            if t1 is not None and t2 is not None and t1 > t2:
                finding("LIFE-004", f"{k1} {run.get(k1)} is after {k2} {run.get(k2)}")
        if previous is not None:
            self.evaluations.update(("LIFE-001", "LIFE-002"))
            before = previous.get("status")
            if before != status:
                if before in self.terminal:
                    finding("LIFE-002", f"terminal status {before} changed to {status}")
                elif status not in self.moves.get(str(before), set()) and not self.reachable(before, status):
                    finding("LIFE-001", f"moved from {before} to {status}, which the lifecycle does not allow")
            elif before in self.terminal:
                for key in ("finishedAt", "startedAt", "cancelRequestedAt"):
                    # The same instant may come back in another RFC 3339 form: compare instants.
                    if not same_instant(previous.get(key), run.get(key)):
                        finding(
                            "LIFE-002",
                            f"{key} of a {before} run changed from {previous.get(key)!r} to {run.get(key)!r}",
                        )
            started = previous.get("startedAt")
            if started is not None and not same_instant(run.get("startedAt"), started):
                finding("LIFE-004", f"startedAt changed from {previous.get('startedAt')!r} to {run.get('startedAt')!r}")
        if completed is None or answered is None or completed >= answered:
            self._last[run_id] = run
            if completed is not None:
                self._answered[run_id] = completed

    def seen_terminal(self, run_id: str) -> bool:
        """The last observation of `run_id` had a terminal status (which never changes: LIFE-002)."""
        last = self._last.get(run_id)
        return last is not None and last.get("status") in self.terminal

    def reachable(self, start: Any, goal: Any) -> bool:
        # A poller may miss states in between; a move counts if some path of allowed moves leads there.
        seen, frontier = set(), [start]
        while frontier:
            state = frontier.pop()
            for nxt in self.moves.get(str(state), set()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        return False


@dataclass
class StartedRun:
    response: ApiResponse
    run_id: str | None
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return self.response.status_code


@dataclass
class Session:
    """State shared by every check of one run of the suite."""

    base_url: str
    client: ApiClient
    other_client: ApiClient | None
    anonymous: ApiClient
    fixtures: Fixtures
    profile: Profile
    seed: int
    client_id: str  # unique to this session: the suite's runs carry it (or one derived from it)
    timeout: float  # how long a run may take to reach a status the suite waits for
    request_timeout: float
    deterministic: bool
    secrets: tuple[str, ...]
    monitor: LifecycleMonitor = field(default_factory=LifecycleMonitor)
    schema_verdicts: dict[tuple[str, bytes], str | None] = field(default_factory=dict)
    started_runs: dict[str, ApiClient] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() by which the whole run should end; set by the runner
    fan_out: int = 1  # requests a check may send side by side (its examples, its scenarios); set by the runner
    workload_clients: int | None = None  # overrides the profile's (--workload-clients)
    workload_seconds: float | None = None  # overrides the profile's (--workload-seconds)
    histories: list[Any] = field(default_factory=list)  # concurrent histories recorded, for the transcript

    @classmethod
    def open(
        cls,
        base_url: str,
        token: str,
        *,
        other_token: str | None = None,
        fixtures: Fixtures | None = None,
        profile: str | Profile = "quick",
        seed: int = 0,
        client_id: str | None = None,
        timeout: float = 30.0,
        request_timeout: float = 10.0,
        deterministic: bool = True,
    ) -> Session:
        """A session against `base_url`; close it with `close()`."""
        secrets = tuple(t for t in (token, other_token) if t)
        recorder = Recorder(secrets=secrets)

        def make(tok: str | None, var: str) -> ApiClient:
            return ApiClient(base_url, tok, request_timeout=request_timeout, recorder=recorder, token_var=var)

        return cls(
            base_url=base_url,
            client=make(token, "RUNS_TOKEN"),
            other_client=make(other_token, "RUNS_OTHER_TOKEN") if other_token else None,
            anonymous=make(None, "RUNS_TOKEN"),
            fixtures=fixtures or Fixtures.default(),
            profile=PROFILES[profile] if isinstance(profile, str) else profile,
            seed=seed,
            client_id=client_id or f"rc-{seed & 0xFFFFFFFF:08x}",
            timeout=timeout,
            request_timeout=request_timeout,
            deterministic=deterministic,
            secrets=secrets,
        )

    def close(self) -> None:
        for client in (self.client, self.other_client, self.anonymous):
            if client is not None:
                client.close()


class CheckContext:
    """The API a check is written against."""

    def __init__(self, session: Session, check_name: str) -> None:
        self.session = session
        self.check_name = check_name
        # The seed of this check's Hypothesis tests (apply with hypothesis.seed): stable per session
        # seed and check, so `--select` of one requirement replays what its checks did in the full run.
        self.seed = check_seed(session.seed, check_name)
        # clientIds made here carry the check's tag and count: the same whatever runs beside it.
        self._tag = hashlib.sha256(check_name.encode()).hexdigest()[:3]
        self._client_ids = itertools.count(1)  # next() is atomic: checks that fan out draw from threads
        self.recorder = Recorder(secrets=session.secrets, on_response=self.judge_response)
        self.tally = Tally()
        self._reported: set[tuple[str, str]] = set()
        # Each check records into its own recorder, through the session's connections.
        self.client = _view(session.client, self.recorder)
        self.anonymous = _view(session.anonymous, self.recorder)
        self._other = _view(session.other_client, self.recorder) if session.other_client else None

    # --- configuration -------------------------------------------------------------------
    @property
    def profile(self) -> Profile:
        return self.session.profile

    @property
    def fixtures(self) -> Fixtures:
        return self.session.fixtures

    @property
    def client_id(self) -> str:
        return self.session.client_id

    def fresh_client_id(self, label: str = "c") -> str:
        """A clientId no other check uses, so counts by clientId see only this check's runs."""
        return f"{self.session.client_id}.{self._tag}{label}{next(self._client_ids)}"[:64]

    @property
    def other_client(self) -> ApiClient:
        if self._other is None:
            raise Skipped("needs a second credential: give --other-token or RUNS_OTHER_TOKEN")
        return self._other

    def hypothesis_settings(self, **overrides: Any) -> settings:
        base: dict[str, Any] = {
            "max_examples": self.profile.max_examples,
            "derandomize": self.session.deterministic,
            "database": None,
            "deadline": None,
            "suppress_health_check": list(HealthCheck),
            "print_blob": False,
        }
        base.update(overrides)
        return settings(**base)

    # --- verdicts ---------------------------------------------------------------------------
    def expect(self, requirement_id: str, condition: bool, message: str) -> bool:
        """One evaluated assertion of `requirement_id`: a failure unless `condition`; go on either way."""
        if condition:
            self.tally.evaluated(requirement_id)
        else:
            self.record_failure(requirement_id, message)
        return condition

    def fail(self, requirement_id: str, message: str) -> Failed:
        """`raise ctx.fail(id, message)`: record a failure and stop the check."""
        return Failed(requirement_id, message)

    def require(self, requirement_id: str, condition: bool, message: str) -> None:
        """One evaluated assertion that the rest of the check depends on: a failure stops the check."""
        if not condition:
            raise Failed(requirement_id, message)
        self.tally.evaluated(requirement_id)

    def record_failure(
        self,
        requirement_id: str,
        message: str,
        exchanges: list[Exchange] | None = None,
        example: str | None = None,
        timeline: list[TimelineEntry] | None = None,
        site: str | None = None,
    ) -> None:
        """A failure with its evidence: the exchanges given, else the check's last few.

        `site`: what judged it, for its fingerprint; by default the code that called (the assertion).
        """
        shown = self.recorder.last(EVIDENCE_EXCHANGES) if exchanges is None else exchanges
        found = Evidence(self.check_name, message, shown, example, timeline or [])
        found.fingerprint = fingerprint(
            requirement_id, site or assertion_site(), operation_of(shown[-1] if shown else None)
        )
        self.tally.failure(requirement_id, found)

    def refused(self, what: str, response: ApiResponse, remedy: str) -> Failed | Skipped:
        """What to raise when the server would not do what a check needs (`raise ctx.refused(...)`).

        A 5xx is the server's failure (ERR-001), never a skip; anything else says the check cannot
        run here, with the server's answer and what the user can do about it.
        """
        answer = f"{what} answered {response.status_code}: {_brief(response)}"
        if response.status_code >= 500:
            return Failed("ERR-001", f"{answer}; nothing a client sends may yield a 5xx (ERR-001)")
        return Skipped(f"{answer}; {remedy}")

    def skip(self, requirement_id: str, reason: str) -> None:
        """This requirement's premise did not happen here (no insert landed during the walk): not a pass."""
        self.tally.skip(requirement_id, reason)

    def example(self) -> Example:
        """The assertions of one Hypothesis example (see conformance.outcomes.Example)."""
        return Example(self.tally)

    def _expect_once(self, requirement_id: str, kind: str, condition: bool, message: str) -> None:
        """Count every evaluation, but report each kind of finding once: a poll repeats the same answer."""
        if condition:
            self.tally.evaluated(requirement_id)
            return
        key = (requirement_id, kind)
        with _REPORTED_LOCK:
            first = key not in self._reported
            self._reported.add(key)
        if first:
            self.record_failure(requirement_id, message, self.recorder.last(1), site=f"judge:{requirement_id}")
        else:
            self.tally.evaluated(requirement_id)  # failed already: the first finding of this kind says so

    def judge_response(self, response: ApiResponse) -> None:
        """What holds of every answer the suite gets, whatever the check asked: never a 5xx (ERR-001),
        and every 4xx a Problem whose status equals the HTTP status (ERR-002)."""
        status = response.status_code
        where = _where(response.exchange)
        self._expect_once(
            "ERR-001",
            f"{where} {status}",
            status < 500,
            f"{where} answered {status}: {_brief(response)}; nothing a client sends may yield a 5xx (ERR-001)",
        )
        if 400 <= status < 500:
            problem = self._not_a_problem(response)
            self._expect_once(
                "ERR-002",
                f"{where} {status} {problem}",
                problem is None,
                f"{where} answered {status} but {problem}: {_brief(response)}; every 4xx is an "
                "application/problem+json Problem whose status equals the HTTP status (ERR-002)",
            )

    def _not_a_problem(self, response: ApiResponse) -> str | None:
        """Why a 4xx answer is not a proper Problem, or None."""
        if response.media_type != "application/problem+json":
            return f"its Content-Type is {response.headers.get('content-type') or 'missing'}"
        data = response.json_or_none()
        verdict = self._schema_verdict("Problem", response.content, data)
        if verdict is not None:
            return verdict
        if data.get("status") != response.status_code:
            return f"the Problem says status {data.get('status')!r}"
        return None

    def _schema_verdict(self, schema: str, content: bytes, data: Any) -> str | None:
        verdicts = self.session.schema_verdicts
        key = (schema, hashlib.blake2b(content, digest_size=16).digest())
        if key not in verdicts:  # polls read the same bytes again and again: judge them once
            error = next(iter(schema_validator(f"/components/schemas/{schema}").iter_errors(data)), None)
            where = "/".join(str(p) for p in error.absolute_path) or "the body" if error else ""
            verdicts[key] = f"{where} does not match the {schema} schema: {error.message}" if error else None
        return verdicts[key]

    # --- the API -------------------------------------------------------------------------------
    def start_run(
        self,
        workflow: dict[str, Any] | None = None,
        *,
        client_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        key: str | None = None,
        client: ApiClient | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> StartedRun:
        """POST a run (the quick fixture unless told otherwise) and remember it for cleanup."""
        if body is None:
            body = {
                "clientId": client_id or self.client_id,
                "workflow": workflow if workflow is not None else self.fixtures.workflow("quick"),
            }
            if inputs is not None:
                body["inputs"] = inputs
        send_headers = dict(headers or {})
        if key is not None:
            send_headers["Idempotency-Key"] = key
        api = client or self.client
        response = api.post(RUNS, json_body=body, headers=send_headers)
        run_id = None
        if response.status_code == 202:
            data = response.json_or_none()
            self._expect_body("RunRef", response, data, "startRun")
            if isinstance(data, dict) and isinstance(data.get("runId"), str):
                run_id = data["runId"]
                self.session.started_runs.setdefault(run_id, api)
        return StartedRun(response, run_id, body)

    def unknown_run_ids(self, like: str | None = None) -> list[str]:
        """runIds that name no run on this server, each confirmed by a getRun that does not find it.

        A correct server may use any IDs, sequential integers too, where changing a character of a
        real ID ("57" -> "50") names another real run. The candidates: `like` (a runId this server
        issued; by default the last one this session started) with its tail redrawn from its own
        characters, so that the server reads it as well-formed and looks it up; the same made
        longer; and a long random token no server issues. A candidate getRun finds is dropped,
        never a failure; the rest come back in that order (possibly none: the caller skips).
        """
        if like is None and self.session.started_runs:
            like = next(reversed(self.session.started_runs))
        candidates = [*(resembling_run_ids(like) if like else []), f"rc-unknown-{secrets.token_hex(16)}"]
        return self.absent_run_ids(candidates)

    def absent_run_ids(self, candidates: list[str]) -> list[str]:
        """The `candidates` no run has: getRun answers them with anything but a 2xx."""
        return [run_id for run_id in candidates if not 200 <= self.get_run(run_id).status_code < 300]

    def get_run(self, run_id: str, *, client: ApiClient | None = None) -> ApiResponse:
        response = (client or self.client).get(f"{RUNS}/{run_id}")
        if response.status_code == 200:
            data = response.json_or_none()
            self._expect_body("Run", response, data, f"getRun {run_id}")
            self.session.monitor.observe(data, response.exchange, response)
        return response

    def list_runs(self, *, client: ApiClient | None = None, **params: Any) -> ApiResponse:
        query = {k: v for k, v in params.items() if v is not None}
        response = (client or self.client).get(RUNS, params=query)
        if response.status_code == 200:
            data = response.json_or_none()
            self._expect_body("RunList", response, data, "listRuns")
            if isinstance(data, dict) and isinstance(data.get("items"), list):
                for item in data["items"]:
                    self.session.monitor.observe(item, response.exchange, response)
        return response

    def _expect_body(self, schema: str, response: ApiResponse, data: Any, what: str) -> None:
        """Every success body the suite reads is held to the spec, not only those Schemathesis reads:
        a run in a status that fuzzing never reaches (a misspelled "canceled") or a definition served
        as text/plain shows here (SCHEMA-002, SCHEMA-003)."""
        shown = response.headers.get("content-type") or "no Content-Type"
        self._expect_once(
            "SCHEMA-003",
            f"{what} {shown}",
            response.media_type == "application/json",
            f"{what}: answered {response.status_code} with {shown}; the spec documents application/json",
        )
        problem = self._schema_verdict(schema, response.content, data)
        self._expect_once("SCHEMA-002", f"{what}: {problem}", problem is None, f"{what}: {problem}")

    def walk(self, *, limit: int | None = None, max_pages: int = 1000, **filters: Any) -> Iterator[ApiResponse]:
        """Every page of a listing, following nextCursor; stops at a non-200 (the caller checks)."""
        cursor = None
        query = "&".join(f"{k}={v}" for k, v in {"limit": limit, **filters}.items() if v is not None)
        for number in range(1, max_pages + 1):
            page = self.list_runs(limit=limit, cursor=cursor, **filters)
            yield page
            cursor = self.next_cursor(page, f"page {number} of the walk listRuns?{query}")
            if cursor is None:
                return
        raise self.fail("PAGE-004", f"the walk did not end after {max_pages} pages")

    def next_cursor(self, page: ApiResponse, what: str) -> str | None:
        """The cursor a walk follows from `page`, or None where the walk ends; every walker asks here.

        Only null ends a listing (PAGE-004). A nextCursor that is an empty string (or not a string)
        is neither a cursor nor the end: treating it as the end is how a client stops early on a
        falsy value, and sending it back restarts the listing. So it fails PAGE-004 and the walk
        stops there. A page that is not a 200 RunList ends the walk too; the caller judges it.
        """
        data = page.json_or_none() if page.status_code == 200 else None
        value = data.get("nextCursor") if isinstance(data, dict) else None
        if value is None:
            return None
        proper = isinstance(value, str) and value != ""
        kind = "nextCursor" if proper else f"nextCursor {value!r}"
        if proper:
            self.tally.evaluated("PAGE-004")
            return str(value)
        with _REPORTED_LOCK:
            first = ("PAGE-004", kind) not in self._reported
            self._reported.add(("PAGE-004", kind))
        if first:
            hint = "; an empty string does not end a listing: answer null on the last page" if value == "" else ""
            self.record_failure(
                "PAGE-004",
                f"{what} answered nextCursor {json.dumps(value)}, which is neither null (nothing follows) nor a "
                f"cursor to send back; nextCursor is null exactly when no run follows the page{hint} (PAGE-004)",
                [page.exchange],
            )
        else:
            self.tally.evaluated("PAGE-004")
        return None

    def cancel_run(self, run_id: str, *, client: ApiClient | None = None) -> ApiResponse:
        response = (client or self.client).post(f"{RUNS}/{run_id}/cancel")
        if response.status_code == 202:
            self._expect_body("RunRef", response, response.json_or_none(), f"cancelRun {run_id}")
        return response

    def get_definition(
        self, run_id: str, *, headers: dict[str, str] | None = None, client: ApiClient | None = None
    ) -> ApiResponse:
        response = (client or self.client).get(f"{RUNS}/{run_id}/definition", headers=headers)
        if response.status_code == 200:
            self._expect_body("Workflow", response, response.json_or_none(), f"getRunDefinition {run_id}")
        return response

    def poll(
        self,
        probe: Callable[[], T],
        done: Callable[[T], bool],
        *,
        timeout: float | None = None,
        what: str = "the condition",
    ) -> T:
        """Call `probe` until `done(result)`, backing off from 20 ms to 0.5 s, within the deadline.

        Returns the last result either way; the caller decides what a timeout means.
        """
        deadline = time.monotonic() + (self.session.timeout if timeout is None else timeout)
        interval = 0.02
        while True:
            result = probe()
            if done(result) or time.monotonic() >= deadline:
                return result
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 2, 0.5)

    def wait_for_status(
        self, run_id: str, statuses: set[str] | frozenset[str], timeout: float | None = None
    ) -> dict[str, Any] | None:
        """Poll getRun until the status is one of `statuses`; the last Run seen (or None)."""

        def probe() -> dict[str, Any] | None:
            response = self.get_run(run_id)
            data = response.json_or_none() if response.status_code == 200 else None
            return data if isinstance(data, dict) else None

        return self.poll(
            probe,
            lambda run: run is not None and run.get("status") in statuses,
            timeout=timeout,
            what=f"run {run_id} to reach {sorted(statuses)}",
        )

    def wait_terminal(self, run_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        return self.wait_for_status(run_id, self.session.monitor.terminal, timeout)


def resembling_run_ids(run_id: str, tail: int = 12, longer: int = 8) -> list[str]:
    """Two IDs shaped like `run_id`: its last `tail` characters redrawn, and it with `longer` more.

    Each new character is drawn from the characters of its kind (digit, lower case, upper case)
    that `run_id` itself holds, so a ULID stays Crockford base32, a UUID hex, an integer digits;
    anything else is kept. Such an ID may still exist (few characters to draw from): confirm first.
    """
    kinds: list[Callable[[str], bool]] = [str.isdigit, str.islower, str.isupper]

    def pool(char: str) -> str:
        for kind in kinds:
            if char.isascii() and kind(char):
                return "".join(sorted({c for c in run_id if c.isascii() and kind(c)}))
        return char

    def redraw(chars: str) -> str:
        return "".join(secrets.choice(pool(char)) for char in chars)

    cut = max(0, len(run_id) - tail)
    return [run_id[:cut] + redraw(run_id[cut:]), run_id + redraw(run_id[-1:] * longer)]


_REPORTED_LOCK = threading.Lock()
_RUN_PATH = re.compile(r"(/api/v1/runs/)[^/?]+")


def _where(exchange: Exchange) -> str:
    """`GET /api/v1/runs/{runId}/definition`: the operation an exchange hit, IDs and query left out."""
    path = exchange.url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else "/"
    template = _RUN_PATH.sub(r"\1{runId}", path.split("?", 1)[0])
    return f"{exchange.method} {template}"


def _brief(response: ApiResponse, limit: int = 200) -> str:
    # The exchange's body, not the response's: the exchange's is redacted (a server may echo a token).
    text = (response.exchange.response_body or "").replace("\n", " ")
    return (text[:limit] + "…" if len(text) > limit else text) or "(empty body)"


def check_seed(seed: int, check_name: str) -> int:
    """The seed one check's Hypothesis tests run with: derived from the session seed and the check's name."""
    digest = hashlib.sha256(f"{seed}:{check_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _view(client: ApiClient, recorder: Recorder) -> ApiClient:
    """The same connection pool, recording into another recorder."""
    view = copy.copy(client)
    view.recorder = recorder
    return view
