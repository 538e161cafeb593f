"""One run of the suite, as a pipeline of stages over one RunState:

    resolve the server → preflight → execute the checks → aggregate per requirement → clean up → gate

    report = run(RunConfig(base_url=..., token=..., profile="quick"))
    report.exit_code   # 0 conformant, 1 not conformant or incomplete, 3 unreachable (2 is raised as UsageError)

Every stage speaks through the run's events (conformance/events.py): the progress line, the
console summary and the --events stream are listeners, so the CLI and the pytest plugin share this
one path. The report is written to DIR/conformance.json (docs/results-format.md), with HTML and JUnit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx

import conformance
from conformance._compat.hypothesis import storage_directory
from conformance.aggregation import requirement_rows
from conformance.baseline import apply_baseline
from conformance.catalog import catalog
from conformance.cleanup import cancel_leftovers
from conformance.client import Recorder, ResponseTooLarge
from conformance.config import RunConfig, UsageError, resolve_selection
from conformance.coverage import coverage_of
from conformance.events import Events, Listener, NdjsonWriter
from conformance.execution import CheckRun, guarded, report_finished
from conformance.final_reads import REQUIREMENTS as FINAL_READS
from conformance.final_reads import cursor_pages_of, final_reads_check, ledger_of
from conformance.gate import gate_verdict
from conformance.history import History
from conformance.preflight import preflight
from conformance.progress import Progress
from conformance.registry import Check, registered_checks
from conformance.report import write_reports
from conformance.report.summary import write_summary
from conformance.results import Evidence, RequirementResult, RunReport, Status, Verdict
from conformance.scheduler import run_checks
from conformance.session import Session
from conformance.spec import spec_sha256, spec_version
from conformance.target import Target, resolve_target

__all__ = ["EXCHANGES_NAME", "REPORT_NAME", "RunState", "hypothesis_cache_dir", "rerun_command", "run"]

REPORT_NAME = "conformance.json"
EXCHANGES_NAME = "exchanges.jsonl"  # every exchange of the run, one JSON object a line
HISTORY_NAME = "history.jsonl"  # the concurrent workload's operations, one a line (times in ms from its start)
CACHE_ENV = "XDG_CACHE_HOME"


@dataclass
class RunState:
    """Everything one run knows, stage by stage. A stage that ends the run early sets `report`."""

    config: RunConfig
    checks: list[Check]  # the checks to run, in order
    selected: set[str]  # the requirement IDs selected
    seed: int
    events: Events
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    clock: float = field(default_factory=time.monotonic)
    target: Target | None = None
    session: Session | None = None
    check_runs: list[CheckRun] = field(default_factory=list)
    interrupted: bool = False
    report: RunReport | None = None
    secrets: list[str] = field(default_factory=list)  # tokens to keep out of every file written


def run(
    config: RunConfig,
    *,
    stream: TextIO | None = None,
    checks: Sequence[Check] | None = None,
    listeners: Iterable[Listener] = (),
) -> RunReport:
    """Run the suite as configured. Raises UsageError (exit 2) before any request when misconfigured."""
    config.validate()
    selected, chosen = resolve_selection(config.select, list(registered_checks() if checks is None else checks))
    progress = Progress(stream=stream, heartbeat_s=config.heartbeat_s, quiet=config.quiet)
    sinks: list[Listener] = [progress, *listeners]
    with ExitStack() as outputs:
        if config.events is not None:
            sinks.append(NdjsonWriter(_events_stream(config.events, outputs)))
        return _run(config, chosen, selected, progress, sinks)


def _events_stream(target: str, outputs: ExitStack) -> TextIO:
    if target == "-":
        return sys.stdout
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return outputs.enter_context(path.open("w", encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write the events to {target}: {exc.strerror or exc}") from None


def _run(
    config: RunConfig, chosen: list[Check], selected: set[str], progress: Progress, sinks: list[Listener]
) -> RunReport:
    state = RunState(config, chosen, selected, config.resolved_seed(), Events(sinks))
    state.secrets = [t for t in (config.token, config.other_token) if t]
    state.events.emit(
        "run_started",
        banner=f"runs-conformance {conformance.__version__}, spec {spec_version()}: seed {state.seed}, profile "
        f"{config.profile}{' (deterministic)' if config.deterministic else ''}",
        seed=state.seed,
        profile=config.profile,
        checks=len(chosen) + (1 if selected & set(FINAL_READS) else 0),  # the final reads come last
        selected=sorted(selected),
    )
    try:
        with ExitStack() as stack:
            stack.enter_context(storage_directory(_hypothesis_home(stack)))
            _stages(state, stack)
    except BaseException:
        progress.close()  # a usage error found late, or an interrupt outside the checks: no report
        raise
    report = state.report
    assert report is not None  # every stage that ends the run sets it
    report.duration_s = round(time.monotonic() - state.clock, 3)
    _write(state, report)
    _finish(state, report)
    return report


def _stages(state: RunState, stack: ExitStack) -> None:
    target = resolve_target(state.config, stack, state.events.info)
    if isinstance(target, str):
        state.report = _early_report(state, "", target, Verdict.UNREACHABLE)
        return
    state.target = target
    state.secrets += [t for t in (target.token, target.other_token) if t]
    session = _open_session(state, target)
    stack.callback(session.close)
    session.workload_clients = state.config.workload_clients
    session.workload_seconds = state.config.workload_seconds
    session.disruption = state.config.disruption_plan()
    state.session = session
    if not _preflight(state, session):
        return
    state.events.info(f"server {target.base_url} answers as a Runs API; session clientId {session.client_id}")
    deadline = state.clock + state.config.overall_deadline
    session.deadline = deadline
    workers = state.config.resolved_workers(_round_trip(session))
    state.events.info(f"checks side by side: {workers} (--workers {state.config.workers})")
    session.fan_out = workers
    state.check_runs, state.interrupted = run_checks(state.checks, session, state.events, deadline, workers)
    _final_reads(state, session)
    _write_exchanges(state)
    state.report = _assemble(state, session, target)
    state.events.info(f"cleanup: cancelling the suite's unfinished runs ({len(session.started_runs)} started)")
    state.report.cleanup = cancel_leftovers(session)
    _gate(state, state.report)


def _final_reads(state: RunState, session: Session) -> None:
    """Re-verify what the checks established, after them and before cleanup cancels anything
    (conformance/final_reads.py): one more check, named final_reads in the report."""
    if state.interrupted:
        return  # cut short: the rest of the run is not run, and neither are its final reads
    # Roughly in time order, the earliest facts first (they are always re-read): the scheduler runs
    # the exclusive checks first and alone, then the others as they come in the list.
    in_order = sorted(state.check_runs, key=lambda cr: not cr.check.exclusive)
    ledger = ledger_of(x for cr in in_order for x in cr.exchanges)
    ledger.cursors = cursor_pages_of(cr.exchanges for cr in in_order)  # ordered within each check only
    check = final_reads_check(ledger, state.selected)
    if check is None:
        return
    state.events.info(
        f"final reads: {len(ledger.keys)} keys, {len(ledger.runs)} runs, {len(ledger.definitions)} definitions, "
        f"{len(ledger.client_ids)} clientIds, "
        f"{len(ledger.cursors)} cursor pages established (bounded by profile {state.config.profile})"
    )
    if state.config.final_reads_after > 0:
        state.events.info(f"final reads: waiting {state.config.final_reads_after:g} s first (--final-reads-after)")
        try:
            # The wait is the point (what a server keeps for a while must have lapsed), not a poll for a
            # condition; Ctrl-C ends it at once, and the run is interrupted as it would be in a check.
            time.sleep(state.config.final_reads_after)
        except KeyboardInterrupt:
            state.interrupted = True
            return
    state.events.emit("check_started", check=check.name)
    result = guarded(check, session)
    report_finished(result, state.events)
    state.check_runs.append(result)


def _open_session(state: RunState, target: Target) -> Session:
    config = state.config
    return Session.open(
        target.base_url,
        target.token,
        other_token=target.other_token,
        fixtures=config.load_fixtures(),
        profile=config.profile,
        seed=state.seed,
        client_id=f"rc-{secrets.token_hex(4)}",
        timeout=config.timeout,
        request_timeout=config.request_timeout,
        deterministic=config.deterministic,
    )


def _preflight(state: RunState, session: Session) -> bool:
    """Reachable, a Runs API, and our token accepted; else the run ends unreachable (exit 3)."""
    check = preflight(session.client)
    if check.ok:
        return True
    assert state.target is not None
    report = _early_report(state, state.target.base_url, check.reason, Verdict.UNREACHABLE)
    if check.exchange is not None:
        first = next((r for r in report.requirements if r.status is Status.SKIPPED), None)
        if first is not None:
            first.evidence.append(Evidence("preflight", check.reason, [check.exchange]))
    state.report = report
    return False


def _round_trip(session: Session, samples: int = 3) -> float:
    """The server's round-trip time, the median of a few cheap reads (recorded apart from every check)."""
    probe = copy.copy(session.client)
    probe.recorder = Recorder(secrets=session.secrets)
    took: list[float] = []
    for _ in range(samples):
        began = time.perf_counter()
        try:
            probe.get("/api/v1/runs", params={"limit": 1})
        except (httpx.TransportError, ResponseTooLarge):
            continue
        took.append(time.perf_counter() - began)
    return statistics.median(took) if took else 0.0


def _assemble(state: RunState, session: Session, target: Target) -> RunReport:
    rows = requirement_rows(
        state.selected,
        state.check_runs,
        session.monitor,
        strict=state.config.strict,
        rerun=lambda rid: rerun_command(state.config, target, state.seed, [rid]),
    )
    report = _report(state, rows, session.client_id)
    report.coverage = coverage_of((x for run in state.check_runs for x in run.exchanges), rows)
    report.disruptions = [h.disruption.as_record(h.start) for h in session.histories if h.disruption is not None]
    return report


def _gate(state: RunState, report: RunReport) -> None:
    """The baseline, then the verdict (gate.gate_verdict is the one place it is decided)."""
    try:
        apply_baseline(report, state.config.baseline, state.config.strict)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot use baseline file {state.config.baseline}: {exc}".splitlines()[0]) from None
    if state.interrupted:
        report.verdict, report.exit_code, report.reason = gate_verdict(report, state.config.strict, interrupted=True)


def _finish(state: RunState, report: RunReport) -> None:
    for row in report.requirements:
        if row.status is not Status.NOT_SELECTED:
            state.events.emit(
                "requirement",
                id=row.id,
                level=row.level,
                status=row.status.value,
                evaluations=row.evaluations,
                message=row.message,
            )
    state.events.emit(
        "run_finished",
        report=report,
        verdict=report.verdict.value,
        exit_code=report.exit_code,
        reason=report.reason,
        counts=report.counts(),
        duration_s=report.duration_s,
        seed=report.seed,
    )


# --- the report ------------------------------------------------------------------------------------
def rerun_command(config: RunConfig, target: Target | None, seed: int, select: Sequence[str]) -> str:
    """The one-line command that replays this run (or part of it)."""
    parts = ["runs-conformance", "run"]
    if target is not None and not target.embedded:
        parts += ["--base-url", target.base_url]
    if config.profile != "default":
        parts += ["--profile", config.profile]
    parts += ["--seed", str(seed)]
    if config.fixtures is not None:
        parts += ["--fixtures", str(config.fixtures)]
    if config.strict:
        parts.append("--strict")
    if select:
        parts += ["--select", *select]
    return " ".join(shlex.quote(p) for p in parts)


def _report(state: RunState, results: list[RequirementResult], client_id: str) -> RunReport:
    config = state.config
    return RunReport(
        verdict=Verdict.NOT_CONFORMANT,
        exit_code=1,
        reason="",
        suite_version=conformance.__version__,
        spec_version=spec_version(),
        spec_sha256=spec_sha256(),
        base_url=state.target.base_url if state.target is not None else (config.base_url or ""),
        profile=config.profile,
        strict=config.strict,
        seed=state.seed,
        command=rerun_command(config, state.target, state.seed, list(config.select)),
        started_at=state.started_at,
        duration_s=0.0,
        requirements=results,
        session_client_id=client_id,
        require_coverage=config.require_coverage,
    )


def _early_report(state: RunState, base_url: str, reason: str, verdict: Verdict) -> RunReport:
    """A report when no check could run: every selected requirement skipped, with the reason."""
    results = [
        RequirementResult.of(req, Status.SKIPPED, f"not checked: {reason}")
        if req.id in state.selected
        else RequirementResult.of(req, Status.NOT_SELECTED, "not selected")
        for req in catalog().values()
    ]
    report = _report(state, results, "")
    report.base_url = base_url or report.base_url
    report.verdict, report.exit_code, report.reason = verdict, 3, reason
    return report


def _write(state: RunState, report: RunReport) -> None:
    directory = state.config.report_dir
    try:
        paths = write_reports(report, directory, secrets=state.secrets)
    except OSError as exc:
        state.events.info(f"could not write the reports into {directory}: {exc}")
    else:
        state.events.info(f"report: {', '.join(str(p) for p in paths)}")
    _write_summary(state, report)


def _write_summary(state: RunState, report: RunReport) -> None:
    """--summary's file, else GitHub's job summary, which earlier steps of the job also write: appended to."""
    config = state.config
    path, append = (config.summary, False) if config.summary is not None else (config.step_summary, True)
    if path is None:
        return
    try:
        write_summary(report, path, append=append, secrets=state.secrets)
    except OSError as exc:
        state.events.info(f"could not write the summary to {path}: {exc.strerror or exc}")
    else:
        state.events.info(f"summary: {path}")


def _write_exchanges(state: RunState) -> None:
    """The full transcript: each exchange as recorded (Authorization redacted, bodies truncated)."""
    path = state.config.report_dir / EXCHANGES_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for cr in state.check_runs:
                for exchange in cr.exchanges:
                    # ASCII only: a U+2028 in a body would split the line for readers that split on it too.
                    out.write(json.dumps({"check": cr.check.name, **dataclasses.asdict(exchange)}, ensure_ascii=True))
                    out.write("\n")
    except OSError as exc:
        state.events.info(f"could not write {path}: {exc}")
    if state.session is not None and state.session.histories:
        _write_histories(state, state.session.histories)


def _write_histories(state: RunState, histories: list[History]) -> None:
    """Who did what when: each operation of each concurrent history, its exchange by position in the transcript."""
    path = state.config.report_dir / HISTORY_NAME
    try:
        with path.open("w", encoding="utf-8") as out:
            for number, history in enumerate(histories):
                for op in history.operations:
                    record = {
                        "history": number,
                        "op": op.index,
                        "client": op.client,
                        "credential": op.credential,
                        "kind": op.kind,
                        "invoked_ms": round((op.invoked - history.start) * 1000, 3),
                        "completed_ms": None
                        if op.completed is None
                        else round((op.completed - history.start) * 1000, 3),
                        "status": op.status,
                        "indeterminate": op.indeterminate,
                        "run_id": op.run_id,
                        "key": op.key,
                        "walk": op.walk,
                        "page": op.page,
                        "url": getattr(op.exchange, "url", None),
                    }
                    out.write(json.dumps(record, ensure_ascii=True) + "\n")
    except OSError as exc:
        state.events.info(f"could not write {path}: {exc}")


# --- Hypothesis' storage ----------------------------------------------------------------------------
def hypothesis_cache_dir() -> Path:
    """Where Hypothesis keeps its caches between runs: $XDG_CACHE_HOME (or ~/.cache)/runs-conformance/hypothesis."""
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache")
    return Path(base) / "runs-conformance" / "hypothesis"


def _hypothesis_home(stack: ExitStack) -> Path:
    """Hypothesis' storage (its Unicode tables, the constants it collects) out of the user's working
    directory, in a cache that outlives the run: rebuilding it costs seconds each run. No example
    database is kept there or anywhere (every check's settings say database=None), so runs stay
    deterministic under CI. A user's HYPOTHESIS_STORAGE_DIRECTORY wins; an unwritable cache
    gives way to a temporary directory for this run."""
    chosen = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
    if chosen:
        return Path(chosen)
    home = hypothesis_cache_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not os.access(home, os.W_OK):
            raise PermissionError(f"{home} is not writable")
    except OSError:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="runs-conformance-hypothesis-")))
    return home
