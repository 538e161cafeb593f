"""runs_in_every_status_match_the_schema: passes the reference, catches a status Schemathesis never reaches."""

from __future__ import annotations

from collections.abc import Callable

from support.check_runs import run_named_check
from support.servers import serve

from conformance.outcomes import Outcome
from conformance.session import Session

CHECK = "runs_in_every_status_match_the_schema"


def test_passes_the_reference_server(reference_url: str, make_session: Callable[..., Session]) -> None:
    result = run_named_check(CHECK, make_session(reference_url))
    statuses = result.statuses()
    assert {statuses.get("SCHEMA-002"), statuses.get("SCHEMA-003")} == {Outcome.PASSED}, result.message
    assert set(statuses.values()) == {Outcome.PASSED}, statuses


def test_catches_a_misspelled_terminal_status(make_session: Callable[..., Session]) -> None:
    with serve("schema-misspelled-status") as url:
        result = run_named_check(CHECK, make_session(url))
    assert result.statuses()["SCHEMA-002"] is Outcome.FAILED
    assert "'canceled' is not one of" in result.message
    # A poll repeats the same wrong body; the finding is reported once per read that differs.
    assert len(result.evidence["SCHEMA-002"]) <= 3


def test_catches_a_definition_served_as_text(make_session: Callable[..., Session]) -> None:
    with serve("schema-wrong-content-type") as url:
        result = run_named_check(CHECK, make_session(url))
    assert result.statuses()["SCHEMA-003"] is Outcome.FAILED
    assert "text/plain" in result.message
