"""ARCHITECTURE.md's "How to add a check" is code: its example registers, passes the reference
server, fails a server with the bug and does not pass a server where its premise never happens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.check_runs import explain
from support.faults_evidence import cancel_requested_at_never_set, cancel_stamped_after_finish
from support.servers import serve
from support.tokens import TOKENS

import conformance.registry as registry
from conformance.catalog import Level, Requirement, catalog
from conformance.execution import CheckRun, run_check
from conformance.outcomes import Outcome
from conformance.registry import Check
from conformance.session import Session

ARCHITECTURE = Path(__file__).resolve().parent.parent / "ARCHITECTURE.md"
MARK = "<!-- howto-check:"
RULE = Requirement(
    id="CANCEL-006",
    level=Level.MUST,
    area="cancel",
    statement="A cancelled run's finishedAt is not before its cancelRequestedAt.",
    instance="a run cancelled while running, read once it is terminal with both timestamps set",
    operations=("cancelRun", "getRun"),
    spec_ref="paths./api/v1/runs/{runId}/cancel.post.description",
    rfc_ref=None,
)


def howto_source() -> str:
    """The fenced Python block right after the how-to's marker, unindented."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    after = text[text.index(MARK) :]
    block = re.search(r"```python\n(.*?)\n\s*```", after, re.DOTALL)
    assert block is not None, "the how-to's marked block is no ```python fence"
    lines = block.group(1).splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


@pytest.fixture
def howto_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[Check]:
    """The example, registered as a check of the new rule (the catalog given the rule, as step 1 does)."""
    monkeypatch.setattr(registry, "catalog", lambda: {**catalog(), RULE.id: RULE})
    namespace: dict[str, object] = {"__name__": "howto_example"}
    exec(compile(howto_source(), f"{ARCHITECTURE}:howto", "exec"), namespace)
    found = registry._CHECKS.pop("finished_after_cancel_requested")  # never left in the suite's registry
    yield found


def _run(check: Check, url: str, make_session: Callable[..., Session]) -> CheckRun:
    return run_check(check, make_session(url))


def test_the_howto_check_passes_the_reference_server(
    howto_check: Check, reference_url: str, make_session: Callable[..., Session]
) -> None:
    assert howto_check.requirements == ("CANCEL-006",) and howto_check.needs == frozenset({"fixture:long"})
    run = _run(howto_check, reference_url, make_session)
    assert run.outcome("CANCEL-006") is Outcome.PASSED, explain(run)
    assert run.outcomes["CANCEL-006"].evaluations == 1


def test_the_howto_check_fails_a_server_with_the_bug(howto_check: Check, make_session: Callable[..., Session]) -> None:
    with serve(cancel_stamped_after_finish(TOKENS)) as url:
        run = _run(howto_check, url, make_session)
    assert run.outcome("CANCEL-006") is Outcome.FAILED, explain(run)
    assert "before its cancel was requested" in run.message


def test_the_howto_check_does_not_pass_without_its_premise(
    howto_check: Check, make_session: Callable[..., Session]
) -> None:
    # cancelRequestedAt is never set: the old example counted `not before(None, None)` as a pass.
    with serve(cancel_requested_at_never_set(TOKENS)) as url:
        run = _run(howto_check, url, make_session)
    assert run.outcome("CANCEL-006") is Outcome.SKIPPED, explain(run)
    assert run.outcomes["CANCEL-006"].reason.startswith("premise not reached"), run.outcomes
