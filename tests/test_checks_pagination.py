"""The pagination checks: each passes the reference server and fails on the bug it targets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from support.check_module_contract import CheckModuleContract
from support.check_runs import assert_passed, explain, open_session, run_named_check
from support.faults_evidence import oldest_first_whole_seconds, whole_seconds
from support.servers import serve
from support.tokens import OTHER_TOKEN, TOKEN, TOKENS
from support.variants import LenientCursorCodec

from conformance.outcomes import Outcome
from conformance.profiles import PROFILES
from conformance.registry import registered_checks
from conformance.session import Session
from reference_impl.app import create_app
from reference_impl.cursors import CursorCodec, Filters
from reference_impl.endpoints import RunsApi
from reference_impl.problems import ProblemError
from reference_impl.serve import serve_in_thread

MODULES = ("conformance.checks.pagination", "conformance.checks.pagination_cursors")
CHECKS = sorted(c.name for c in registered_checks() if c.func.__module__ in MODULES)

FAULT_CASES: list[tuple[str, str, set[str]]] = [
    ("offset_cursors", "walk_during_inserts", {"PAGE-006"}),
    ("boundary_dropped", "walk_during_inserts", {"PAGE-006"}),
    ("boundary_repeated", "walk_during_inserts", {"PAGE-006"}),
    ("oldest_first", "walk_during_inserts", {"PAGE-001"}),
    ("filters_lost_after_first_page", "walk_during_inserts", {"PAGE-009"}),
    ("limit_ignored", "walk_during_inserts", {"PAGE-002"}),
    ("cursor_on_full_last_page", "page_sizes", {"PAGE-004"}),
    ("limit_ignored", "page_sizes", {"PAGE-002"}),
    ("boundary_dropped", "page_sizes", {"PAGE-004"}),
    ("server_side_cursors", "cursor_replay", {"PAGE-005"}),
    ("tampered_cursor_500", "bad_cursors", {"PAGE-007"}),
    ("bad_cursor_restarts", "bad_cursors", {"PAGE-007"}),
    ("offset_cursors", "bad_cursors", {"PAGE-007"}),
    ("cursor_ignores_filters", "foreign_cursors", {"PAGE-008"}),
    ("filters_lost_after_first_page", "page_filters", {"PAGE-009"}),
    ("boundary_dropped", "page_filters", {"PAGE-006"}),
    ("limit_coerced", "limit_bounds", {"PAGE-003"}),
    ("page-limit-max-199", "limit_bounds", {"PAGE-003"}),
    ("page-size-capped-100", "largest_page", {"PAGE-002"}),  # a short page shows only over more than 100 runs
    ("filters_unvalidated", "bad_filters", {"PAGE-010"}),
]


@pytest.fixture(scope="module")
def reference_session(reference_url: str) -> Iterator[Session]:
    with open_session(reference_url) as session:
        yield session


class TestPaginationChecks(CheckModuleContract):
    CHECKS = CHECKS
    FAULT_CASES = FAULT_CASES
    FAULT_TIMEOUT = 2.0


def test_a_tampered_cursor_that_crashes_the_server_is_reported_as_a_5xx(make_session: Callable[..., Session]) -> None:
    with serve("tampered_cursor_500") as url:
        run = run_named_check("bad_cursors", make_session(url))
    messages = [item.message for item in run.evidence["PAGE-007"]]
    assert any("a 5xx" in m and "→ 500" in m for m in messages), messages


def test_the_walk_creates_runs_while_it_pages(reference_url: str, make_session: Callable[..., Session]) -> None:
    # The concurrent creator is what finds offset cursors: it must add runs during the walk, not before or after.
    session = make_session(reference_url)
    assert_passed(run_named_check("walk_during_inserts", session))
    walked = [r for r in session.started_runs if r]  # every run the check started, initial and concurrent
    assert len(walked) > session.profile.walk_size


class _ClientIdQuota(RunsApi):
    """Refuses runs beyond a quota per clientId (400): every run the walk's creator adds is refused."""

    quota = PROFILES["quick"].walk_size

    async def start_run(self, request: Request) -> Response:
        body = json.loads(await request.body())
        client_id = body.get("clientId") if isinstance(body, dict) else None
        if isinstance(client_id, str) and len(self.store.list_runs(None, client_id, None, self.quota)[0]) >= self.quota:
            raise ProblemError("invalid-request", f"clientId {client_id!r} has used its quota of {self.quota} runs")
        return await super().start_run(request)


def test_a_walk_without_concurrent_inserts_does_not_pass_page_006(make_session: Callable[..., Session]) -> None:
    # The premise of PAGE-006's claim is runs created during the walk: without one it is a skip, never a pass,
    # and each refused startRun of a valid body is SCHEMA-005's failure.
    with serve_in_thread(create_app([TOKEN, OTHER_TOKEN], api_class=_ClientIdQuota)) as url:
        run = run_named_check("walk_during_inserts", make_session(url, profile="quick"))
    statuses = run.statuses()
    assert statuses["PAGE-006"] is Outcome.SKIPPED, explain(run)
    assert "no run was created while the walk" in run.outcomes["PAGE-006"].reason
    assert statuses["SCHEMA-005"] is Outcome.FAILED, explain(run)
    assert "quota" in run.evidence["SCHEMA-005"][0].message
    assert statuses["PAGE-009"] is Outcome.PASSED, explain(run)


def test_a_lenient_decoder_that_reads_a_changed_cursor_as_the_same_one_passes(
    make_session: Callable[..., Session],
) -> None:
    """Hex read in either case and base64 with or without padding: the tamper gets the original page."""
    with serve_in_thread(create_app(list(TOKENS), cursor_codec=LenientCursorCodec(b"k" * 32))) as url:
        run = run_named_check("bad_cursors", make_session(url))
    assert_passed(run)


def test_newest_first_is_judged_only_between_runs_whose_created_at_differs(
    make_session: Callable[..., Session],
) -> None:
    # Oldest first with whole-second createdAt: most neighbours share an instant, and `<=` counted
    # them as evidence, so this server passed --select PAGE-001 before issue 18.
    with serve(oldest_first_whole_seconds(TOKENS)) as url:
        run = run_named_check("walk_during_inserts", make_session(url, profile="quick"))
    assert run.outcome("PAGE-001") is Outcome.FAILED, explain(run)
    # The same whole seconds, newest first, is a correct server: the walk makes its own instance.
    with serve_in_thread(create_app(list(TOKENS), clock=whole_seconds)) as url:
        run = run_named_check("walk_during_inserts", make_session(url, profile="quick"))
    assert_passed(run)
    assert run.outcomes["PAGE-001"].evaluations >= 1


LONG_CURSOR_TAIL = "~" + "0" * 1400  # an encrypted state of a kilobyte and a half, as some servers send


class _LongCursorCodec(CursorCodec):
    """The reference cursors with 1.4 KB more: a correct server may use cursors of any length."""

    def encode(self, after: int, filters: Filters) -> str:
        return super().encode(after, filters) + LONG_CURSOR_TAIL

    def decode(self, cursor: str, filters: Filters) -> int:
        if not cursor.endswith(LONG_CURSOR_TAIL) or cursor.count("~") != 1:
            raise ProblemError("invalid-cursor", "The cursor is malformed or was not issued by this server.")
        return super().decode(cursor[: -len(LONG_CURSOR_TAIL)], filters)


class _FrontEnd:
    """An ordinary front end: a request line over 8 KB gets its own text/plain 414, never the app's Problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.longest = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            line = len(b"GET " + scope["raw_path"] + b"?" + scope["query_string"] + b" HTTP/1.1")
            self.longest = max(self.longest, line)
            if line > 8192:
                await PlainTextResponse("URI Too Long", status_code=414)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def test_tampered_cursors_keep_the_request_line_within_8_kb(make_session: Callable[..., Session]) -> None:
    front = _FrontEnd(create_app(list(TOKENS), cursor_codec=_LongCursorCodec(b"k" * 32)))
    with serve_in_thread(front) as url:
        run = run_named_check("bad_cursors", make_session(url))
    assert_passed(run)
    assert 1400 < front.longest <= 8192, front.longest
