"""A model of the whole API, driven by a Hypothesis RuleBasedStateMachine.

Each scenario has a fresh clientId and remembers what it did: the runs it started (with and
without an Idempotency-Key), the keys and bodies, the first cancelRequestedAt of each run and
each run's last status. Rules start, replay, cancel, read, list and fetch definitions in any
order Hypothesis picks; after every step the invariants are checked against the server:

- a run's status only moves forward along the lifecycle graph; a terminal one never changes;
  finishedAt is set exactly when terminal and the timestamps keep their order (LIFE-001..004);
- a replayed key gives the same runId (IDEM-001); a start without a key makes a new run (IDEM-010), and
  so does one with a key never used (IDEM-011: keys are compared exactly);
- the walk of the scenario's clientId returns exactly the runs it started: none twice, none
  missing, none of another clientId, newest first where createdAt differ (PAGE-006, PAGE-009, PAGE-001);
- a definition is JSON-equal to the workflow submitted (ETAG-001);
- cancelRequestedAt never changes once set; cancel answers as the contract says for the run's
  state; an unknown run is a 404 (CANCEL-001, CANCEL-002, CANCEL-004, CANCEL-005).

A failure stops its scenario with the requirement it breaks; the failing scenario (the
`state.…` lines, shrunk only under the thorough profile) goes into the report with the exchanges.
Every group of scenarios that fails is recorded, one finding per fingerprint with how many groups
met it: a defect another group found is not hidden behind the first.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar, cast

import hypothesis
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance.check_helpers import CANCEL_ANSWERS, LIFE_IDS, TERMINAL, rule_of, show, start_fixture
from conformance.context import EVIDENCE_EXCHANGES, CheckContext, Judged, StartedRun
from conformance.fingerprints import assertion_site, raise_site
from conformance.listing import created_order, walk_listing
from conformance.meaning import changed_run_fields, json_equal, same_instant
from conformance.outcomes import first_of
from conformance.properties import Found, record_grouped
from conformance.registry import Failed, check
from conformance.results import Exchange
from conformance.watcher import RunWatcher

MODEL_IDS = (
    "PAGE-006",
    "PAGE-009",
    "PAGE-001",
    "LIFE-001",
    "LIFE-002",
    "LIFE-003",
    "LIFE-004",
    "IDEM-001",
    "IDEM-010",
    "IDEM-011",
    "ETAG-001",
    "CANCEL-001",
    "CANCEL-002",
    "CANCEL-004",
    "CANCEL-005",
    "SCHEMA-005",
    "SCHEMA-008",
)
INVARIANT_LIMIT = 2  # the walk after every step: small pages, so page edges are crossed often
MIN_SCENARIOS_PER_GROUP = 3  # the simplest scenario, and two its group's seed draws

_inputs = st.dictionaries(
    st.sampled_from(["date", "n", "mode"]),
    st.integers(0, 9) | st.sampled_from(["a", "b", ""]),
    max_size=2,
)


class ScenarioFailed(Failed):
    """A scenario broke a requirement; `site` is the rule's line that judged it (its fingerprint's part),
    or None where the rule raised it itself (the raise is the site)."""

    def __init__(self, requirement_id: str, message: str, site: str | None) -> None:
        super().__init__(requirement_id, message)
        self.site = site


class RunsMachine(RuleBasedStateMachine):
    """One scenario of the model: what it started, and what must hold of what the server shows.

    Hypothesis builds one instance per scenario, without arguments: the check context, the
    fixtures the server has and the scenario counter are class attributes of a class bound to
    one check run (`bound_machine`).
    """

    ctx: ClassVar[CheckContext]
    fixtures: ClassVar[list[str]]
    scenarios: ClassVar[Iterator[int]]
    # Every failure a scenario of this class raised, as raised: Hypothesis replays a failing scenario to
    # report it, and against a live server the replay may take another path (FlakyStrategyDefinition).
    raised: ClassVar[list[Failed]]
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.scenario = next(self.scenarios)
        self.client_id = self.ctx.fresh_client_id("model")
        self.watcher = RunWatcher(self.ctx)
        self.started: list[str] = []  # oldest first
        self.workflows: dict[str, dict[str, Any]] = {}
        self.fixture_of: dict[str, str] = {}
        self.keys: dict[str, tuple[dict[str, Any], str]] = {}  # key -> (body, runId)
        self.stamps: dict[str, str] = {}  # runId -> first cancelRequestedAt seen
        self.must_have_stamp: set[str] = set()
        self.terminal: dict[str, dict[str, Any]] = {}  # runId -> the Run when first seen terminal

    # --- helpers ------------------------------------------------------------------------

    def fail(self, rid: str, message: str, site: str | None = None) -> Failed:
        cited = message if rid in message else f"{message} ({rid})"
        failure = ScenarioFailed(rid, f"{cited} [model scenario, clientId={self.client_id}]", site)
        self.raised.append(failure)
        return failure

    def judge(self, rid: str, holds: bool, message: str, *, on: Judged | None, instance: bool = True) -> None:
        """One assertion of a step, through the check's context; a failure stops the scenario here.

        The scenario's every evaluation goes through this one place: a wrong answer could have
        made `holds` false, and the message says what that would have meant. `instance=False`: the
        step may not be an instance of `rid` (a cancel of a run whose state nobody saw may hit a
        terminal run), so a failure is one but a pass is not counted. `on`: the answer judged; with
        none (None) a holding assertion judged nothing and is not counted either.
        """
        if not holds:
            raise self.fail(rid, message, assertion_site(2))
        if instance and on is not None:
            self.ctx.expect(rid, holds, message, on=on)

    def body(self, fixture: str, version: str | None, inputs: dict[str, Any]) -> dict[str, Any]:
        workflow = self.ctx.fixtures.workflow(fixture)
        if version is not None:
            workflow["version"] = version
        return {"clientId": self.client_id, "workflow": workflow, "inputs": inputs}

    def start(self, body: dict[str, Any], key: str | None) -> StartedRun:
        started = self.ctx.start_run(body=body, key=key)
        self.judge(
            "SCHEMA-005",
            started.run_id is not None,
            f"startRun of a valid body (a fixture workflow) answered {show(started.response)}; a valid "
            "request gets 202 with a RunRef (SCHEMA-005)",
            on=started,
        )
        return started

    def observe(self, run: dict[str, Any] | None, run_id: str) -> None:
        """What must hold of every observation of one of our runs."""
        if run is None:
            return
        stamp = run.get("cancelRequestedAt")
        if run_id in self.stamps:
            self.judge(
                "CANCEL-005",
                same_instant(stamp, self.stamps[run_id]),
                f"run {run_id}: cancelRequestedAt was {self.stamps[run_id]!r} and is now {stamp!r}; once set it "
                "keeps its first value (CANCEL-005)",
                on=run,
            )
        elif run_id in self.must_have_stamp:
            self.judge(
                "CANCEL-002",
                stamp is not None,
                f"run {run_id}: a cancel answered cancelling/cancelled, but the run shows cancelRequestedAt null: "
                f"{run} (CANCEL-002)",
                on=run,
            )
        if stamp is not None:
            self.stamps.setdefault(run_id, stamp)
        if run.get("status") in TERMINAL:
            self.terminal.setdefault(run_id, run)

    # --- rules --------------------------------------------------------------------------

    def add(self, fixture: str, version: str | None, inputs: dict[str, Any], keyed: bool) -> str:
        body = self.body(fixture, version, inputs)
        key = f"{self.client_id}.k{len(self.keys) + 1}" if keyed else None
        started = self.start(body, key)
        run_id = cast(str, started.run_id)  # judged in start
        # Without a key every start is a new run (IDEM-010); a key this session never sent is another key
        # than every used one, and keys are compared exactly (IDEM-011).
        self.judge(
            "IDEM-010" if key is None else "IDEM-011",
            run_id not in self.workflows,
            f"startRun {'with the new key ' + repr(key) if key else 'without a key'} answered runId {run_id}, "
            "the id of a run this scenario started before; "
            + (
                "each startRun without an Idempotency-Key creates a new run (IDEM-010)"
                if key is None
                else "a key is compared exactly, and a key never used starts a new run (IDEM-011)"
            ),
            on=started,
        )
        self.started.append(run_id)
        self.workflows[run_id] = body["workflow"]
        self.fixture_of[run_id] = fixture
        if key is not None:
            self.keys[key] = (body, run_id)
        return run_id

    @initialize(target=runs, extra=st.integers(0, 2), keyed=st.booleans())
    def seed_runs(self, extra: int, keyed: bool) -> MultipleResults[str]:
        # Every scenario starts with one run of each fixture, and sometimes a few more: enough
        # runs to cross page edges of the invariant's walk, and every kind of history to watch.
        kinds = [*self.fixtures, *["quick"] * extra]
        return multiple(*(self.add(kind, None, {}, keyed and n == 0) for n, kind in enumerate(kinds)))

    # A rule only in a bound class (bound_machine): its strategy needs the fixtures this server has.
    def start_run(self, fixture: str, version: str | None, inputs: dict[str, Any], keyed: bool) -> str:
        return self.add(fixture, version, inputs, keyed)

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        body, run_id = self.keys[key]
        started = self.ctx.start_run(body=body, key=key)
        self.judge(
            "IDEM-001",
            started.run_id == run_id,
            f"startRun replayed with Idempotency-Key {key!r} and the same body answered "
            f"{show(started.response)}; the first request with that key started {run_id}, and a replay "
            "gets 202 with the same runId (IDEM-001)",
            on=started,
        )

    @rule(run_id=runs)
    def get(self, run_id: str) -> None:
        run = self.watcher.get(run_id)
        self.judge(
            "SCHEMA-008",
            run is not None,
            f"getRun of {run_id}, a run this scenario started, did not answer 200 with a Run; a started "
            "run is readable through getRun (SCHEMA-008)",
            on=run,
        )
        self.observe(run, run_id)

    @rule(run_id=runs)
    def cancel(self, run_id: str) -> None:
        before = self.watcher.last_status.get(run_id)
        response = self.ctx.cancel_run(run_id)
        ref = response.json_or_none()
        answered = ref.get("status") if isinstance(ref, dict) else None
        known_terminal = self.terminal.get(run_id)
        # Both rules demand a 202 whatever the run's state; which one this cancel is an instance of
        # is known only for a run seen terminal (CANCEL-004) or last seen live (CANCEL-002): a run
        # nobody saw since its start may have finished, so its cancel counts for neither.
        rid = "CANCEL-004" if known_terminal else "CANCEL-002"
        instance = known_terminal is not None or (before is not None and before not in TERMINAL)
        self.judge(
            rid,
            response.status_code == 202,
            f"cancelRun of {run_id} (last seen {before}) answered {show(response)}; want 202 ({rid})",
            on=response,
            instance=instance,
        )
        if known_terminal is not None:
            self.judge(
                "CANCEL-004",
                answered == known_terminal.get("status"),
                f"cancelRun of {run_id}, seen {known_terminal.get('status')} before, answered status {answered!r}; "
                "a cancel of a terminal run answers its unchanged status (CANCEL-004)",
                on=response,
            )
        else:
            self.judge(
                "CANCEL-002",
                answered in CANCEL_ANSWERS | TERMINAL,
                f"cancelRun of {run_id} (last seen {before}) answered status {answered!r}: {show(response)}; a "
                "cancel answers cancelling or cancelled, or a terminal run's unchanged status (CANCEL-002)",
                on=response,
                instance=instance,
            )
        if answered in CANCEL_ANSWERS and not known_terminal:
            self.must_have_stamp.add(run_id)
        self.watcher.note_ref(run_id, answered, response)
        self.observe(self.watcher.get(run_id), run_id)
        after = self.watcher.get(run_id) if known_terminal is not None else None
        if known_terminal is not None and after is not None:  # no answer after it: nothing to compare
            changed = sorted(
                changed_run_fields(known_terminal, after, ("status", "finishedAt", "cancelRequestedAt")),
            )
            self.judge(
                "CANCEL-004",
                not changed,
                f"cancelRun of the {known_terminal.get('status')} run {run_id} changed {changed}: before "
                f"{known_terminal}, after {after}; a cancel of a terminal run changes nothing (CANCEL-004)",
                on=after,
            )

    @rule()
    def cancel_unknown(self) -> None:
        unknown = self.ctx.unknown_run_ids(like=self.started[-1] if self.started else None)
        if not unknown:
            return  # every candidate named a run that exists: nothing unknown to cancel this time
        run_id = unknown[0]
        response = self.ctx.cancel_run(run_id)
        if response.status_code != 404 and self.ctx.taken_meanwhile(run_id):
            return  # another scenario's start took the number since (sequential IDs): no unknown run now
        self.judge(
            "CANCEL-001",
            response.status_code == 404,
            f"cancelRun of the unknown run {run_id} answered {show(response)} (CANCEL-001)",
            on=response,
        )

    @rule(run_id=runs)
    def definition(self, run_id: str) -> None:
        response = self.ctx.get_definition(run_id)
        got = response.json_exact() if response.status_code == 200 else None
        self.judge(
            "ETAG-001",
            got is not None and json_equal(got, self.workflows[run_id]),
            f"getRunDefinition of {run_id} answered {show(response)}; the workflow submitted was "
            f"{self.workflows[run_id]} and the definition must be JSON-equal to it, forever (ETAG-001)",
            on=response,
        )

    @rule(limit=st.integers(1, 5))
    def walk(self, limit: int) -> None:
        self.check_listing(limit)

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def lifecycle_holds(self) -> None:
        problems = self.watcher.problems()
        if problems:
            rid, message = problems[0]
            raise self.fail(rid, f"{message}; {rule_of(rid)}")

    @invariant()
    def listing_is_exact(self) -> None:
        self.check_listing(INVARIANT_LIMIT)

    def check_listing(self, limit: int) -> None:
        pages, items = walk_listing(self.ctx, "PAGE-006", limit, clientId=self.client_id)
        sizes = [len(page.json().get("items", [])) for page in pages]
        for page in pages:
            for item in page.json()["items"]:
                self.watcher.note(item, page)
        ids = [str(item.get("runId")) for item in items if isinstance(item, dict)]
        counts = Counter(ids)
        twice = sorted(r for r, n in counts.items() if n > 1)
        missing = [r for r in self.started if r not in counts]
        extra = sorted(set(ids) - set(self.started))
        self.judge(
            "PAGE-006",
            not (twice or missing or extra),
            f"the walk listRuns?limit={limit}&clientId={self.client_id} (page sizes {sizes}) returned "
            f"{len(ids)} runs for the {len(self.started)} this scenario started: twice {twice}, missing "
            f"{missing}, not started here {extra}; a walk returns each matching run exactly once (PAGE-006)",
            on=pages,
        )
        # Only neighbours whose createdAt differ are instances: runs of one instant come in either order.
        for a, b, newer_first in created_order([item for item in items if isinstance(item, dict)]):
            self.judge(
                "PAGE-001",
                newer_first,
                f"the walk listRuns?limit={limit}&clientId={self.client_id} listed {a.get('runId')} "
                f"({a.get('createdAt')}) before the newer {b.get('runId')} ({b.get('createdAt')}); newest "
                "first (PAGE-001)",
                on=pages,
            )
        for item in items:
            if isinstance(item, dict):
                self.observe(item, str(item.get("runId")))

    def teardown(self) -> None:
        # The scenario's lifecycle rules were judged after every step (lifecycle_holds); count them.
        self.watcher.count_evaluations(LIFE_IDS)
        # Leave no long run busy once the scenario ends.
        for run_id in self.started:
            if self.fixture_of[run_id] == "long" and self.watcher.last_status.get(run_id) not in TERMINAL:
                self.ctx.cancel_run(run_id)


def bound_machine(ctx: CheckContext) -> type[RunsMachine]:
    """RunsMachine bound to one check context, with its own fixtures and scenario counter."""
    fixtures = [name for name in ("quick", "failing", "long") if ctx.fixtures.has(name)]
    start_run = rule(
        target=RunsMachine.runs,
        fixture=st.sampled_from(fixtures),
        version=st.sampled_from([None, "1", "2"]),
        inputs=_inputs,
        keyed=st.booleans(),
    )(RunsMachine.start_run)
    attributes = {
        "ctx": ctx,
        "fixtures": fixtures,
        "scenarios": itertools.count(1),
        "start_run": start_run,
        "raised": [],
    }
    return type("RunsMachine", (RunsMachine,), attributes)


@check(*MODEL_IDS, needs=["fixture:quick"])
def runs_state_machine(ctx: CheckContext) -> None:
    """A model-based walk over the whole API: start (with and without a key), replay, cancel, get,
    list and definition in the orders Hypothesis picks, with the invariants checked after every step."""
    # A fixture the server refuses skips the check here, before Hypothesis sees it.
    start_fixture(ctx, "quick", ctx.fresh_client_id("model-probe"))
    shrinking = ctx.profile.name == "thorough"
    # Scenarios are independent (each its own clientId): they run in groups, each with a seed of its
    # own, and far from the server the groups run side by side. The groups are the same at every
    # fan_out, so a seed replays the same scenarios however many ran at once, and a group that meets
    # a defect stops only itself: the others go on and report theirs. Shrinking (thorough only)
    # replays a failing scenario alone, in one group. Hypothesis runs the simplest scenario first
    # (one run started, no step): a group of one scenario would run only that.
    groups = 1 if shrinking else max(1, ctx.profile.stateful_examples // MIN_SCENARIOS_PER_GROUP)
    per_group = -(-ctx.profile.stateful_examples // groups)
    settings = ctx.hypothesis_settings(
        max_examples=per_group,
        stateful_step_count=ctx.profile.stateful_steps,
        report_multiple_bugs=False,
        # Shrinking only under `thorough`, as for the property checks (conformance.strategies): each
        # attempt replays a scenario over HTTP, and against a faulty server it took 3–5 minutes. Other
        # profiles report the failing scenario as found (at most stateful_steps steps).
        phases=[p for p in Phase if shrinking or p is not Phase.shrink],
    )

    def group(number: int) -> Found | None:
        bound = bound_machine(ctx)
        machine = hypothesis.seed(ctx.seed + number)(bound)
        # Each group's own exchanges: groups side by side share the check's recorder.
        with ctx.recorder.tap() as exchanges:
            try:
                run_state_machine_as_test(machine, settings=settings)
            except Failed as failed:
                return _found(failed, exchanges[-EVIDENCE_EXCHANGES:], number)
            except BaseExceptionGroup as raised:  # e.g. FlakyFailure: the failure did not reproduce while shrinking
                found = first_of(raised, Failed, group_notes=True)
                if found is None:
                    raise
                return _found(found, exchanges[-EVIDENCE_EXCHANGES:], number)
            except Flaky:
                # Replaying the failing scenario drew other steps: the server answered otherwise the
                # second time. The failure the first time stands; only its replay is lost.
                if not bound.raised:
                    raise
                return _found(bound.raised[0], exchanges[-EVIDENCE_EXCHANGES:], number)
        return None

    side_by_side = min(groups, ctx.session.fan_out)
    if side_by_side <= 1:
        outcomes = [group(number) for number in range(groups)]
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=side_by_side, thread_name_prefix="rc-model") as pool:
            outcomes = list(pool.map(group, range(groups)))
    # Every group that failed, one finding per defect: another group's defect is not hidden by the first's.
    record_grouped(ctx, [found for found in outcomes if found is not None])


def _found(failed: Failed, exchanges: list[Exchange], number: int) -> Found:
    """What stopped group `number`, as a finding: shown in the groups' order, never in the order they ended."""
    site = failed.site if isinstance(failed, ScenarioFailed) else None
    notes = [n for n in getattr(failed, "__notes__", []) if isinstance(n, str)]  # the scenario's steps
    scenario = "\n".join(notes) or None
    return Found(
        failed.requirement_id, failed.message, site or raise_site(failed.__traceback__), exchanges, scenario, number
    )
