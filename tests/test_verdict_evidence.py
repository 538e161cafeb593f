"""A requirement passes only on evidence evaluated in this run, and an incomplete run is never green.

Checks here are written for the test (not registered), so each shows one way a check can end: it
stops at a failure, skips, breaks, or runs to its end without a word about an ID it names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from support.tokens import OTHER_TOKEN, TOKEN

from conformance.client import ApiResponse
from conformance.config import RunConfig
from conformance.context import CheckContext
from conformance.execution import run_check
from conformance.fixtures import Fixtures
from conformance.outcomes import Cut, Outcome, Skipped
from conformance.registry import Check, registered_checks
from conformance.results import Status, Verdict
from conformance.runner import run
from conformance.session import Session


def _check(name: str, func: Callable[[CheckContext], None], *ids: str) -> Check:
    return Check(name=name, requirements=ids, func=func, needs=frozenset())


def _stops_at_the_header(ctx: CheckContext) -> None:
    raise ctx.fail("ETAG-004", "the ETag was strong")


def _listing(ctx: CheckContext) -> ApiResponse:
    return ctx.list_runs(limit=1, clientId=ctx.fresh_client_id("evidence"))


def _asserts_one_of_two(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))


def _skips_after_one(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))
    raise Skipped("no long fixture")


def _breaks_after_one(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))
    raise KeyError("etag")


def _fails_another_after_one(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))
    raise ctx.fail("ETAG-006", "the second half found the bug")


def _finishes_one_then_fails_another(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))
    ctx.finished("ETAG-005")
    raise ctx.fail("ETAG-006", "the second half found the bug")


def _cut_after_one(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))
    raise Cut("cut by --deadline")


def _dropped_after_one(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", True, "", on=_listing(ctx))
    raise httpx.ReadError("connection reset")


def test_an_id_passes_only_when_its_check_finished(reference_url: str, make_session: Callable[..., Session]) -> None:
    session = make_session(reference_url)
    stopped = run_check(_check("stops", _stops_at_the_header, "ETAG-004", "ETAG-005", "ETAG-006"), session)
    assert stopped.named_statuses() == {
        "ETAG-004": Outcome.FAILED,
        "ETAG-005": Outcome.NOT_RUN,
        "ETAG-006": Outcome.NOT_RUN,
    }
    assert stopped.outcomes["ETAG-005"].reason == "not reached: the check stopped at ETAG-004"
    assert stopped.outcomes["ETAG-004"].evaluations == 1

    quiet = run_check(_check("quiet", _asserts_one_of_two, "ETAG-005", "ETAG-006"), session)
    assert quiet.named_statuses() == {"ETAG-005": Outcome.PASSED}  # ETAG-006: nothing said, nothing claimed

    # Half a check is no pass: the assertion that held is kept as a count, not as a verdict.
    skipped = run_check(_check("skips", _skips_after_one, "ETAG-005", "ETAG-006"), session)
    assert skipped.named_statuses() == {"ETAG-005": Outcome.SKIPPED, "ETAG-006": Outcome.SKIPPED}
    assert (skipped.outcomes["ETAG-005"].evaluations, skipped.outcomes["ETAG-005"].reason) == (1, "no long fixture")

    broken = run_check(_check("breaks", _breaks_after_one, "ETAG-005", "ETAG-006"), session)
    assert broken.named_statuses() == {"ETAG-005": Outcome.ERROR, "ETAG-006": Outcome.ERROR}

    for func in (_fails_another_after_one, _cut_after_one, _dropped_after_one):
        ended = run_check(_check(func.__name__, func, "ETAG-005", "ETAG-006"), session)
        assert ended.outcome("ETAG-005") is Outcome.NOT_RUN, (func.__name__, ended.outcomes)
        assert ended.outcomes["ETAG-005"].evaluations == 1
        assert ended.outcomes["ETAG-005"].reason.startswith("not reached: the check stopped at")
        # The judge's cross-cutting IDs judged real answers on the way: they keep their verdict.
        assert ended.outcome("ERR-001") is (Outcome.FAILED if func is _dropped_after_one else Outcome.PASSED)

    declared = run_check(_check("declares", _finishes_one_then_fails_another, "ETAG-005", "ETAG-006"), session)
    assert declared.named_statuses() == {"ETAG-005": Outcome.PASSED, "ETAG-006": Outcome.FAILED}


def _judges_nothing(ctx: CheckContext) -> None:
    ctx.expect("ETAG-005", False, "the run never ended", on=None)
    run: dict[str, object] = {"runId": "r1", "finishedAt": None, "cancelRequestedAt": None}
    # `not before(None, None)` is true: a condition over absent values must not count.
    ctx.expect("ETAG-006", True, "finished before the cancel", on=run, reads=(run["finishedAt"],))


def _judges_an_empty_set_of_answers(ctx: CheckContext) -> None:
    ctx.require("ETAG-005", True, "every page matched", on=[])


def _books_another_id(ctx: CheckContext) -> None:
    ctx.expect("ETAG-001", True, "", on=_listing(ctx))


def test_an_assertion_over_nothing_is_no_evaluation(reference_url: str, make_session: Callable[..., Session]) -> None:
    session = make_session(reference_url)
    result = run_check(_check("nothing", _judges_nothing, "ETAG-005", "ETAG-006"), session)
    assert result.named_statuses() == {"ETAG-005": Outcome.SKIPPED, "ETAG-006": Outcome.SKIPPED}
    assert result.outcomes["ETAG-005"].reason.startswith("no answer to judge")
    assert result.outcomes["ETAG-006"].reason.startswith("premise not reached")
    assert result.outcomes["ETAG-005"].evaluations == result.outcomes["ETAG-006"].evaluations == 0

    empty = run_check(_check("empty", _judges_an_empty_set_of_answers, "ETAG-005"), session)
    assert empty.named_statuses() == {"ETAG-005": Outcome.SKIPPED}
    assert "no answer to judge" in empty.outcomes["ETAG-005"].reason


def test_an_assertion_of_an_id_the_check_does_not_name_is_the_suites_error(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    result = run_check(_check("misbooks", _books_another_id, "ETAG-005"), make_session(reference_url))
    assert result.named_statuses() == {"ETAG-005": Outcome.ERROR}
    assert "MisbookedAssertion" in result.message and "ETAG-001" in result.message


def _config(url: str, tmp_path: Path, **values: object) -> RunConfig:
    return RunConfig(base_url=url, token=TOKEN, report_dir=tmp_path, quiet=True, seed=1, **values)  # type: ignore[arg-type]


def test_a_baselined_failure_does_not_turn_unverified_requirements_green(reference_url: str, tmp_path: Path) -> None:
    checks = [_check("stops", _stops_at_the_header, "ETAG-004", "ETAG-005", "ETAG-006")]
    # The report's own paste-ready entry for the failure: it names the fingerprints it accepts.
    first = run(_config(reference_url, tmp_path / "first", select=("etag",)), checks=checks)
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(next(r for r in first.requirements if r.id == "ETAG-004").baseline_entry, encoding="utf-8")
    report = run(_config(reference_url, tmp_path, select=("etag",), baseline=baseline), checks=checks)
    rows = {r.id: r for r in report.requirements}
    assert rows["ETAG-004"].status is Status.BASELINED
    assert rows["ETAG-005"].status is Status.NOT_RUN
    assert "not reached: the check stopped at ETAG-004" in rows["ETAG-005"].message
    assert rows["ETAG-001"].status is Status.NOT_RUN  # selected, but no check here verifies it
    assert (report.verdict, report.exit_code) == (Verdict.INCOMPLETE, 1), report.reason


def test_every_pass_against_the_reference_server_has_evidence(reference_url: str, tmp_path: Path) -> None:
    report = run(_config(reference_url, tmp_path, other_token=OTHER_TOKEN, profile="quick"))
    assert report.verdict is Verdict.CONFORMANT, report.reason
    passed = [r for r in report.requirements if r.status is Status.PASSED]
    assert len(passed) == len(report.requirements)
    assert all(r.evaluations >= 1 for r in passed), [r.id for r in passed if r.evaluations < 1]
    written = json.loads((tmp_path / "conformance.json").read_text(encoding="utf-8"))
    assert all(r["evaluations"] >= 1 for r in written["requirements"] if r["status"] == "passed")


def test_a_run_cut_by_its_deadline_is_not_conformant(reference_url: str, tmp_path: Path) -> None:
    report = run(_config(reference_url, tmp_path, other_token=OTHER_TOKEN, profile="quick", deadline=1.0))
    assert (report.verdict, report.exit_code) == (Verdict.INCOMPLETE, 1), report.reason
    cut = [r for r in report.requirements if r.status is Status.NOT_RUN]
    assert cut and all("--deadline" in r.message for r in cut), [r.message for r in cut][:3]


def test_one_token_is_incomplete_unless_the_skip_is_accepted(reference_url: str, tmp_path: Path) -> None:
    report = run(_config(reference_url, tmp_path, select=("IDEM-007", "IDEM-001")))
    rows = {r.id: r for r in report.requirements}
    assert rows["IDEM-007"].status is Status.SKIPPED and rows["IDEM-001"].status is Status.PASSED
    assert (report.verdict, report.exit_code) == (Verdict.INCOMPLETE, 1), report.reason
    assert "IDEM-007 skipped (keys_are_scoped_to_the_credential: needs a second credential" in report.reason
    accept = tmp_path / "baseline.yaml"
    accept.write_text(rows["IDEM-007"].baseline_entry, encoding="utf-8")  # the paste-ready entry, as is
    again = run(_config(reference_url, tmp_path, select=("IDEM-007", "IDEM-001"), baseline=accept))
    assert (again.verdict, again.exit_code) == (Verdict.CONFORMANT, 0), again.reason


def _quick_run_succeeds() -> Check:
    return next(c for c in registered_checks() if c.name == "quick_run_succeeds")


def test_a_fixture_refused_with_a_4xx_skips(reference_url: str, make_session: Callable[..., Session]) -> None:
    bad = Fixtures({"quick": {"name": "q", "steps": [{"id": "a", "action": "no-such-action"}]}}, "test fixtures")
    result = run_check(_quick_run_succeeds(), make_session(reference_url, fixtures=bad))
    assert set(result.named_statuses().values()) == {Outcome.SKIPPED}, result.message


def test_a_fixture_refused_with_a_5xx_fails_err_001(make_session: Callable[..., Session]) -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"title": "busy"})

    session = make_session("http://127.0.0.1:9")
    session.client._http = httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(explode))
    result = run_check(_quick_run_succeeds(), session)
    assert result.outcome("ERR-001") is Outcome.FAILED, result.message
    assert result.named_statuses()["LIFE-005"] is Outcome.NOT_RUN
    assert "stopped at ERR-001" in result.outcomes["LIFE-005"].reason
