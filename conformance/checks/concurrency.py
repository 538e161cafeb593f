"""Concurrency (CONC-001..012): many clients at once, and their whole history held to the contract.

conformance/workload.py drives the server with N clients for the profile's time (or
--workload-clients / --workload-seconds); conformance/history_checker.py judges the recorded
history with real-time order only, so latency and scheduling never make a finding. Each finding
names the few operations that prove it, with their exchanges and a timeline of them and their
neighbours; a rule whose premise never happened (no key sent twice, no walk that ended) is not
evaluated, and says so (the catalog's `instance:` lines say what one instance of each rule is).

A request of the workload that got no answer (a timeout, a reset) is an ERR-001 failure, one
finding per operation kind naming the first few; it is never part of an instance of a rule, since
it may or may not have taken effect and showed nothing.

With --disrupt (docs/disruption.md) the user's command runs part-way through the workload. A
request that failed inside the disruption's window is indeterminate: no ERR-001, and for the
rules the same as any unanswered request. A command that failed means the run did not test what
it was asked to: every CONC ID is skipped with the command's exit code and output (a skip, not a
usage error: the command runs minutes into a run, whose other results stand, and --strict still
fails on the skip). A server that does not answer again within --disrupt-wait fails ERR-001.
"""

from __future__ import annotations

from collections import Counter

from conformance.catalog import catalog
from conformance.context import CheckContext
from conformance.history import Disruption, History, Operation
from conformance.history_checker import RULES, Finding, check_history, evaluations
from conformance.registry import check
from conformance.results import Exchange, TimelineEntry
from conformance.workload import Budget, Workload

CONC_IDS = tuple(rid for rid, req in catalog().items() if req.area == "concurrency")
NEIGHBOURS = 12  # operations drawn around a finding's own: enough to see the interleaving, not the history
UNANSWERED_NAMED = 5  # unanswered operations a finding names: enough to see the pattern, not a flood


@check(*CONC_IDS, needs=["fixture:quick"], exclusive=True)  # a load test: alone, its clients are the load
def concurrent_history(ctx: CheckContext) -> None:
    """N clients at once, each a random mix of every operation; the history must contradict no rule."""
    session = ctx.session
    budget = Budget(
        clients=session.workload_clients or ctx.profile.workload_clients,
        seconds=session.workload_seconds or ctx.profile.workload_seconds,
    )
    workload = Workload(ctx, budget, ctx.seed, session.disruption)  # the plan: set by the runner from --disrupt
    history = workload.run()
    session.histories.append(history)
    disruption = history.disruption
    if disruption is not None and not disruption.succeeded:
        for rid in CONC_IDS:
            ctx.skip(rid, _command_failed(disruption))
        _report_unanswered(ctx, history)
        return
    if disruption is not None and disruption.answering is None:
        _report_not_back(ctx, history, disruption)
    counts = evaluations(history)
    for rid in CONC_IDS:
        if counts[rid]:
            ctx.tally.evaluated(rid, counts[rid])
        else:
            ctx.skip(
                rid,
                f"the workload's {len(history)} operations ({budget.clients} clients, {budget.seconds:g} s) gave no "
                f"instance of the rule ({RULES[rid]}); raise --workload-seconds or --workload-clients",
            )
    _report_unanswered(ctx, history)
    for finding in check_history(history):
        ctx.record_failure(
            finding.requirement_id,
            finding.message,
            _exchanges(history, finding),
            timeline=_timeline(history, finding),
            site=f"history:{finding.requirement_id}",
        )


def _command_failed(disruption: Disruption) -> str:
    # What went wrong first: a summary line cuts the reason short, and the command may be long.
    waited = f"ran past --disrupt-wait {disruption.wait:g} s"
    how = waited if disruption.exit_code is None else f"exited {disruption.exit_code}"
    output = " ".join(disruption.output.split()) or "no output"
    return (
        f"the --disrupt command {how} ({output}), so the workload was not judged across a disruption; "
        f"fix the command: {disruption.command!r}"
    )


def _report_not_back(ctx: CheckContext, history: History, disruption: Disruption) -> None:
    message = (
        f"after the --disrupt command {disruption.command!r} ended (+{disruption.ended - history.start:.3f} s), "
        f"the server did not answer within --disrupt-wait {disruption.wait:g} s; a server answers again after a "
        "restart (ERR-001)"
    )
    ctx.record_failure(
        "ERR-001", message, [], timeline=[_disruption_entry(history, disruption)], site="workload:disruption"
    )


def _disruption_entry(history: History, disruption: Disruption) -> TimelineEntry:
    """The disruption as a lane of its own: from the command's start until the server answered again."""
    return TimelineEntry(
        index=-1,
        client=-1,
        kind=f"disrupt: {disruption.command}",
        invoked=disruption.started - history.start,
        completed=None if disruption.answering is None else disruption.answering - history.start,
        status=disruption.exit_code,
    )


def _report_unanswered(ctx: CheckContext, history: History) -> None:
    """Each kind of operation some of whose requests got no answer: an ERR-001 failure naming them.
    Indeterminate ones (failed inside a disruption's window) are not the server's failures."""
    unanswered: dict[str, list[Operation]] = {}
    sent: Counter[str] = Counter()
    for op in history.operations:
        sent[op.kind] += 1
        if not op.answered and not op.indeterminate:
            unanswered.setdefault(op.kind, []).append(op)
    for kind, ops in unanswered.items():
        named = ops[:UNANSWERED_NAMED]
        listed = "; ".join(_unanswered(history, op) for op in named)
        more = f"; and {len(ops) - len(named)} more" if len(ops) > len(named) else ""
        message = (
            f"{len(ops)} of the workload's {sent[kind]} {kind} requests got no answer: {listed}{more}; every request "
            "gets an answer, and none may fail on the server's side (ERR-001)"
        )
        proof = Finding("ERR-001", message, tuple(op.index for op in named), named[0].run_id)
        ctx.record_failure(
            "ERR-001", message, [], timeline=_timeline(history, proof), site=f"workload:no-answer:{kind}"
        )


def _unanswered(history: History, op: Operation) -> str:
    target = f" of {op.run_id}" if op.run_id else ""
    return f"op #{op.index} (client {op.client}{target}, sent at +{op.invoked - history.start:.3f} s): {op.error}"


def _exchanges(history: History, finding: Finding) -> list[Exchange]:
    found = [history[i].exchange for i in finding.operations]
    return [x for x in found if isinstance(x, Exchange)]


def _timeline(history: History, finding: Finding) -> list[TimelineEntry]:
    """The finding's operations and the neighbours that overlap its span: who did what, and when."""
    own = [history[i] for i in finding.operations]
    first = min(op.invoked for op in own)
    last = max(op.completed if op.completed is not None else op.invoked for op in own)
    related = _related(history, own, finding.run_id)
    near = [op for op in history.operations if op.index in related and _overlaps(op, first, last)]
    near.sort(key=lambda op: abs(op.invoked - first))
    chosen = {op.index for op in own} | {op.index for op in near[:NEIGHBOURS]}
    start = history.start
    return _disrupted(history, first, last) + [
        TimelineEntry(
            index=op.index,
            client=op.client,
            kind=op.kind,
            invoked=op.invoked - start,
            completed=None if op.completed is None else op.completed - start,
            status=op.status,
            highlight=op.index in finding.operations,
        )
        for op in history.operations
        if op.index in chosen
    ]


def _disrupted(history: History, first: float, last: float) -> list[TimelineEntry]:
    """The disruption's lane, when it overlaps the finding's span: a restart between the two answers of a
    key is why they differ. One far away would only squeeze the finding's own bars into a sliver."""
    disruption = history.disruption
    if disruption is None or not (disruption.started <= last and first <= disruption.window_end):
        return []
    return [_disruption_entry(history, disruption)]


def _related(history: History, own: list[Operation], run_id: str | None) -> set[int]:
    """Operations on the same runs, keys or walks as the finding's, and on the run it is about.

    That run counts even when no operation of the proof names it (two listRuns pages): its other
    operations, a cancel between the two reads say, are often what shows why.
    """
    runs = ({op.run_id for op in own} | {_run_of(op) for op in own} | {run_id}) - {None}
    keys = {(op.credential, op.key) for op in own if op.key}
    walks = {op.walk for op in own if op.walk is not None}
    return {
        op.index
        for op in history.operations
        if op.run_id in runs or _run_of(op) in runs or (op.credential, op.key) in keys or op.walk in walks
    }


def _run_of(op: Operation) -> str | None:
    body = op.body
    run_id = body.get("runId") if isinstance(body, dict) else None
    return run_id if isinstance(run_id, str) else None


def _overlaps(op: Operation, first: float, last: float) -> bool:
    end = op.completed if op.completed is not None else op.invoked
    return end >= first - 0.05 and op.invoked <= last + 0.05
