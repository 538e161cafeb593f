"""CheckContext: the API a check is written against.

One Session lives for a whole run (conformance/session.py); each check gets a CheckContext over
it, with its own recorder, its tally of assertions (conformance/outcomes.py) and its seed. Through
it a check sends requests (every answer held to the rules that apply to all answers), records what
it evaluated, and waits.

An assertion is evidence only if a wrong answer could have failed it, so each one names what it
judges::

    run = ctx.wait_terminal(run_id)  # the last Run getRun showed, or None
    finished = parse_instant(run.get("finishedAt")) if run else None
    ctx.expect("LIFE-003", ..., "message", on=run, reads=(finished,))

`on`: the answer(s) the condition is about (an ApiResponse, a Run read from one, or several).
One that is missing (None: no answer, not a 200, no body) makes the call no evaluation: the ID is
skipped with the reason "no answer to judge", never passed. `reads`: the values the condition
reads; one that is None (a field absent or null) means the premise was not reached, so again a
skip, not a pass (`not before(None, None)` is true and proves nothing). ARCHITECTURE.md's how-to
is a whole check written this way, run by tests/test_howto.py. An assertion may name only
the IDs its check declares (`@check(...)`) or the ones judged on every answer (`CROSS_CUTTING`);
any other is a mistake in the check and raises `MisbookedAssertion`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar, cast

from hypothesis import HealthCheck, settings

from conformance.client import ApiClient, ApiResponse, Recorder
from conformance.fingerprints import assertion_site, fingerprint, operation_of
from conformance.fixtures import Fixtures
from conformance.judges import CROSS_CUTTING, Judge, brief
from conformance.near_misses import resembling_run_ids
from conformance.outcomes import Example, Failed, Skipped, Tally, gist, unjudgeable
from conformance.profiles import Profile
from conformance.results import Evidence, Exchange, TimelineEntry
from conformance.session import Session, check_seed
from conformance.walk import Walk

__all__ = [
    "EVIDENCE_EXCHANGES",
    "RUNS",
    "Answer",
    "CheckContext",
    "Judged",
    "MisbookedAssertion",
    "StartedRun",
]

T = TypeVar("T")

RUNS = "/api/v1/runs"
UNISSUED_PREFIX = "rc-unknown-"  # a runId drawn at random after it names no run any server issues
EVIDENCE_EXCHANGES = 6  # exchanges attached to a failure: enough to see the story, not the whole run

# What an assertion judges: a server's answer, or a Run (a body) read from one.
Answer: TypeAlias = "ApiResponse | StartedRun | Mapping[str, Any]"
Judged: TypeAlias = "Answer | Sequence[Answer | None] | None"


class MisbookedAssertion(Exception):
    """A check asserted an ID it does not declare: a mistake in the suite, never a server's failure."""


@dataclass
class StartedRun:
    """What a startRun got: the answer, and the runId of a 202's RunRef (None otherwise)."""

    response: ApiResponse
    run_id: str | None

    @property
    def status_code(self) -> int:
        return self.response.status_code


class CheckContext:
    """The API a check is written against."""

    def __init__(self, session: Session, check_name: str, requirements: Iterable[str] | None = None) -> None:
        self.session = session
        self.check_name = check_name
        # The IDs the check declares: what its assertions may name (None: a context built by a test
        # for helpers only, which books nothing it has to answer for).
        self.requirements = frozenset(requirements) if requirements is not None else None
        # The seed of this check's Hypothesis tests (apply with hypothesis.seed): stable per session
        # seed and check, so `--select` of one requirement replays what its checks did in the full run.
        self.seed = check_seed(session.seed, check_name)
        # clientIds made here carry the check's tag and count: the same whatever runs beside it.
        self._tag = hashlib.sha256(check_name.encode()).hexdigest()[:3]
        self._client_ids = itertools.count(1)  # next() is atomic: checks that fan out draw from threads
        self.judge = Judge(self)
        self.recorder = Recorder(secrets=session.secrets, on_response=self.judge.response)
        self.tally = Tally()
        # Each check records into its own recorder, through the session's connections.
        self.client = session.client.recording_into(self.recorder)
        self.anonymous = session.anonymous.recording_into(self.recorder)
        self._other = session.other_client.recording_into(self.recorder) if session.other_client else None

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
    def expect(
        self,
        requirement_id: str,
        condition: bool,
        message: str,
        *,
        on: Judged,
        reads: Sequence[object] = (),
    ) -> bool:
        """One evaluated assertion of `requirement_id` about the answer(s) `on`: a failure unless
        `condition`; go on either way. Returns whether it held.

        A missing answer in `on` or a None in `reads` is no evaluation: the ID is skipped with the
        reason and False comes back, so code that goes on only `if ctx.expect(...)` stops too.
        """
        self._declared(requirement_id)
        missing = unjudgeable(on, reads)
        if missing is not None:
            self.tally.skip(requirement_id, f"{missing}: {gist(message)}")
            return False
        if condition:
            self.tally.evaluated(requirement_id)
        else:
            self.record_failure(requirement_id, message)
        return condition

    def fail(self, requirement_id: str, message: str) -> Failed:
        """`raise ctx.fail(id, message)`: record a failure and stop the check."""
        self._declared(requirement_id)
        return Failed(requirement_id, message)

    def require(
        self,
        requirement_id: str,
        condition: bool,
        message: str,
        *,
        on: Judged,
        reads: Sequence[object] = (),
    ) -> None:
        """One evaluated assertion that the rest of the check depends on: a failure stops the check.

        With nothing to judge (see `expect`), the rest cannot go on either: the check is skipped.
        """
        self._declared(requirement_id)
        missing = unjudgeable(on, reads)
        if missing is not None:
            raise Skipped(f"{missing} ({requirement_id}): {gist(message)}")
        if not condition:
            raise Failed(requirement_id, message)
        self.tally.evaluated(requirement_id)

    def finished(self, *requirement_ids: str) -> None:
        """Every assertion of these IDs is made: they keep their outcome whatever stops the check later.

        Only for a check whose later part is about other IDs; without it an ID the check evaluated
        is passed only when the check runs to its end (conformance/outcomes.py).
        """
        for rid in requirement_ids:
            self._declared(rid)
            self.tally.finished(rid)

    def _declared(self, requirement_id: str) -> None:
        if self.requirements is None or requirement_id in self.requirements or requirement_id in CROSS_CUTTING:
            return
        raise MisbookedAssertion(
            f"check {self.check_name} asserted {requirement_id}, which it does not declare "
            f"({', '.join(sorted(self.requirements))}); name it in @check(...) or book the assertion where it belongs"
        )

    def record_failure(
        self,
        requirement_id: str,
        message: str,
        exchanges: list[Exchange] | None = None,
        example: str | None = None,
        timeline: list[TimelineEntry] | None = None,
        site: str | None = None,
        count: int = 1,
    ) -> None:
        """A failure with its evidence: the exchanges given, else the check's last few.

        `site`: what judged it, for its fingerprint; by default the code that called (the assertion).
        `count`: how many examples showed it, where one finding stands for several.
        """
        shown = self.recorder.last(EVIDENCE_EXCHANGES) if exchanges is None else exchanges
        found = Evidence(self.check_name, message, shown, example, timeline or [], count=count)
        found.fingerprint = fingerprint(
            requirement_id, site or assertion_site(), operation_of(shown[-1] if shown else None)
        )
        self.tally.failure(requirement_id, found)

    def refused(self, what: str, response: ApiResponse, remedy: str) -> Failed | Skipped:
        """What to raise when the server would not do what a check needs (`raise ctx.refused(...)`).

        A 5xx is the server's failure (ERR-001), never a skip; anything else says the check cannot
        run here, with the server's answer and what the user can do about it.
        """
        answer = f"{what} answered {response.status_code}: {brief(response)}"
        if response.status_code >= 500:
            return Failed("ERR-001", f"{answer}; nothing a client sends may yield a 5xx (ERR-001)")
        return Skipped(f"{answer}; {remedy}")

    def skip(self, requirement_id: str, reason: str) -> None:
        """This requirement's premise did not happen here (no insert landed during the walk): not a pass.

        The check goes on with its other IDs; to stop the whole check, `raise Skipped(reason)`.
        """
        self._declared(requirement_id)
        self.tally.skip(requirement_id, reason)

    def example(self) -> Example:
        """The assertions of one Hypothesis example (see conformance.outcomes.Example)."""
        return Example(self.tally, self._declared)

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
    ) -> StartedRun:
        """POST a run (the quick fixture unless told otherwise) as JSON; see `post_run`."""
        if body is None:
            body = {
                "clientId": client_id or self.client_id,
                "workflow": workflow if workflow is not None else self.fixtures.workflow("quick"),
            }
            if inputs is not None:
                body["inputs"] = inputs
        # The bytes ApiClient would send for json_body: a check that builds its body gets what it always got.
        return self.post_run(json.dumps(body, ensure_ascii=False).encode("utf-8"), key=key, client=client)

    def post_run(
        self,
        content: bytes,
        *,
        key: str | bytes | None = None,
        client: ApiClient | None = None,
        token: Any = None,
        content_type: str = "application/json",
    ) -> StartedRun:
        """POST these exact bytes to startRun: every startRun of a check goes through here.

        A 202's body is held to the RunRef schema, and its run is remembered for the session's
        cleanup. `token`: another bearer token than the client's (None: the client's own).
        """
        api = client or self.client
        headers: dict[str, str] = {"Content-Type": content_type}
        if key is not None:
            # bytes pass through httpx as they are: how a non-ASCII key is sent.
            headers["Idempotency-Key"] = cast(str, key)
        extra: dict[str, Any] = {} if token is None else {"token": token}
        response = api.post(RUNS, content=content, headers=headers, **extra)
        run_id = None
        if response.status_code == 202:
            data = response.json_or_none()
            self.judge.body("RunRef", response, data, "startRun")
            if isinstance(data, dict) and isinstance(data.get("runId"), str):
                run_id = data["runId"]
                self.session.started_runs.setdefault(run_id, api)
        return StartedRun(response, run_id)

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
        candidates = [*(resembling_run_ids(like) if like else []), f"{UNISSUED_PREFIX}{secrets.token_hex(16)}"]
        return self.absent_run_ids(candidates)

    def taken_meanwhile(self, run_id: str, read: ApiResponse | None = None) -> bool:
        """Whether a runId confirmed unknown names a run now: another request created it since.

        A server that numbers runs in order issues the next number to whoever starts a run next (a
        check beside this one, another scenario), so an unknown ID drawn from a real one may be taken
        between the read that confirmed it absent and the request about it. What that request got
        is then no evidence about an unknown run: call this before judging an answer that is not 404.
        `read`: a getRun of it made since that answer, if the caller has one (else one is made here).
        """
        if run_id.startswith(UNISSUED_PREFIX):
            return False  # drawn at random with the suite's own prefix: no server issues it
        return 200 <= (read or self.get_run(run_id)).status_code < 300

    def absent_run_ids(self, candidates: list[str]) -> list[str]:
        """The `candidates` no run has: getRun answers them with anything but a 2xx."""
        return [run_id for run_id in candidates if not 200 <= self.get_run(run_id).status_code < 300]

    def get_run(self, run_id: str, *, client: ApiClient | None = None) -> ApiResponse:
        response = (client or self.client).get(f"{RUNS}/{run_id}")
        if response.status_code == 200:
            data = response.json_or_none()
            self.judge.body("Run", response, data, f"getRun {run_id}")
            self.session.monitor.observe(data, response.exchange, response)
        return response

    def list_runs(self, *, client: ApiClient | None = None, **params: Any) -> ApiResponse:
        query = {k: v for k, v in params.items() if v is not None}
        response = (client or self.client).get(RUNS, params=query)
        if response.status_code == 200:
            data = response.json_or_none()
            self.judge.body("RunList", response, data, "listRuns")
            if isinstance(data, dict) and isinstance(data.get("items"), list):
                for item in data["items"]:
                    self.session.monitor.observe(item, response.exchange, response)
        return response

    def walk(
        self,
        *,
        limit: int | None = None,
        max_pages: int = 1000,
        client: ApiClient | None = None,
        what: str | None = None,
        before_page: Callable[[int], None] | None = None,
        **filters: Any,
    ) -> Walk:
        """Every page of a listing, following nextCursor (see Walk): every walker of the suite uses this."""
        return Walk(self, limit, filters, max_pages=max_pages, client=client, what=what, before_page=before_page)

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
        hint = "; an empty string does not end a listing: answer null on the last page" if value == "" else ""
        self.judge.once(
            "PAGE-004",
            f"nextCursor {value!r}",
            proper,
            f"{what} answered nextCursor {json.dumps(value)}, which is neither null (nothing follows) nor a "
            f"cursor to send back; nextCursor is null exactly when no run follows the page{hint} (PAGE-004)",
            page.exchange,
        )
        return str(value) if proper else None

    def cancel_run(self, run_id: str, *, client: ApiClient | None = None) -> ApiResponse:
        response = (client or self.client).post(f"{RUNS}/{run_id}/cancel")
        if response.status_code == 202:
            self.judge.body("RunRef", response, response.json_or_none(), f"cancelRun {run_id}")
        return response

    def get_definition(
        self, run_id: str, *, headers: dict[str, str] | None = None, client: ApiClient | None = None
    ) -> ApiResponse:
        response = (client or self.client).get(f"{RUNS}/{run_id}/definition", headers=headers)
        if response.status_code == 200:
            self.judge.body("Workflow", response, response.json_or_none(), f"getRunDefinition {run_id}")
        return response

    def poll(self, probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float | None = None) -> T:
        """Call `probe` until `done(result)`, backing off from 20 ms to 0.5 s, within the deadline.

        Returns the last result either way; the caller decides what a timeout means. Every wait of
        the suite is this one.
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
        self,
        run_id: str,
        statuses: Iterable[str],
        timeout: float | None = None,
        *,
        read: Callable[[str], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any] | None:
        """Poll the run until its status is one of `statuses`; the last Run seen (or None).

        `read`: how to read the run (a RunWatcher reads through itself); by default getRun.
        """
        wanted = frozenset(statuses)
        reader = read or self._read_run
        return self.poll(
            lambda: reader(run_id), lambda run: run is not None and run.get("status") in wanted, timeout=timeout
        )

    def wait_terminal(self, run_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        return self.wait_for_status(run_id, self.session.monitor.terminal, timeout)

    def _read_run(self, run_id: str) -> dict[str, Any] | None:
        response = self.get_run(run_id)
        data = response.json_or_none() if response.status_code == 200 else None
        return data if isinstance(data, dict) else None
