"""What the self-check's faults alone do not show about the near-miss probes and ERR-002.

Every 4xx the suite meets is held to ERR-002, whichever check met it: one 4xx sent as text/plain is
caught. conformance/judges.py sees every answer of every check (and Schemathesis' through
checks/schema.py), so a server whose one kind of 4xx is not a Problem fails ERR-002 even when only
a check of another area ever provokes that 4xx. Each case serves the reference server with one
(operation, status, Problem type) rewritten to text/plain, runs the check that provokes it with
ERR-002 selected, and demands ERR-002 failed with evidence from that check, not from the checks of
the errors area (which ERR-002's selection brings along).

The near misses never cry wolf on IDs a correct server may choose: sequential integers (so "5" is a
prefix of "57" and a run of its own) and UUIDs looked up case-insensitively (so the other case of
an ID is the same run) pass the areas whose checks probe IDs, keys and filters with near misses.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Sequence

import pytest
from starlette.requests import Request
from starlette.types import ASGIApp
from support.asgi import ResponseRewrite
from support.faults import one_4xx_as_text
from support.harness import quick_args, run_suite
from support.tokens import TOKENS

from reference_impl.app import create_app
from reference_impl.endpoints import RunsApi
from reference_impl.problems import ProblemError
from reference_impl.store import RunRecord, RunStore

pytestmark = pytest.mark.slow

# (operation, status, Problem type slug, the check that provokes it)
PLACES = [
    ("startRun", 409, "idempotency-key-reused", "same_key_other_body_conflicts"),
    ("listRuns", 400, "invalid-cursor", "bad_cursors"),
    ("cancelRun", 404, "not-found", "cancel_unknown_run"),
    ("getRunDefinition", 404, "not-found", "errors_win_over_not_modified"),
]


@pytest.mark.parametrize(("op", "status", "slug", "check"), PLACES, ids=[f"{p[0]}-{p[1]}" for p in PLACES])
def test_one_4xx_as_text_plain_is_caught_wherever_it_is_met(op: str, status: int, slug: str, check: str) -> None:
    app = ResponseRewrite(create_app(list(TOKENS)), one_4xx_as_text(status, slug, on=op))
    run = run_suite(app, *quick_args((check, "ERR-002")))
    assert run.status("ERR-002") == "failed", run.explain()
    entry = next(r for r in (run.report or {}).get("requirements", []) if r["id"] == "ERR-002")
    # One finding per fingerprint: the first check that met it, and the others that met it too.
    by = {item["check"] for item in entry["evidence"]} | {c for item in entry["evidence"] for c in item["also_in"]}
    assert check in by, f"ERR-002 failed only through {sorted(by)}, not through {check}\n{run.explain()}"
    assert any("text/plain" in item["message"] for item in entry["evidence"]), entry["evidence"]


class _OpaqueIds(RunsApi):
    """Looks a run up by the whole ID as sent (no format check): a correct lookup for any ID scheme."""

    def find_run(self, request: Request) -> RunRecord:
        run_id = self.canonical(str(request.path_params["runId"]))
        run = self.store.get(run_id)
        if run is None:
            raise ProblemError("not-found", f"There is no run {run_id[:64]!r}.")
        return run

    def canonical(self, run_id: str) -> str:
        return run_id


class _CaseInsensitiveUuids(_OpaqueIds):
    """A UUID column compares case-insensitively: the ID in upper case is the same run."""

    def canonical(self, run_id: str) -> str:
        return run_id.lower()


def _sequential_ids(tokens: Sequence[str]) -> ASGIApp:
    counter, lock = itertools.count(1), threading.Lock()

    def next_id() -> str:
        with lock:
            return str(next(counter))

    return create_app(list(tokens), store=RunStore(id_factory=next_id), api_class=_OpaqueIds)


def _uuids(tokens: Sequence[str]) -> ASGIApp:
    store = RunStore(id_factory=lambda: str(uuid.uuid4()))
    return create_app(list(tokens), store=store, api_class=_CaseInsensitiveUuids)


ID_SCHEMES: dict[str, Callable[[Sequence[str]], ASGIApp]] = {
    "sequential-integers": _sequential_ids,
    "case-insensitive-uuids": _uuids,
}
# The areas whose checks send near misses; ETAG-007 makes its own unknown IDs (not judged here).
NEAR_MISS_AREAS = ("errors", "pagination", "idempotency", "schema")


@pytest.mark.parametrize("scheme", sorted(ID_SCHEMES))
def test_near_misses_pass_correct_id_schemes(scheme: str) -> None:
    run = run_suite(ID_SCHEMES[scheme](TOKENS), *quick_args(NEAR_MISS_AREAS))
    bad = run.ids_with("failed", "warning", "error", "skipped")
    assert run.exit_code == 0 and not bad, f"{scheme}: {bad}\n{run.explain()}"
