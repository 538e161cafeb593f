"""One run of the suite: preflight, the selected checks, aggregation per requirement, cleanup, report.

    report = run(RunConfig(base_url=..., token=..., profile="quick"))
    report.exit_code   # 0 conformant, 1 not conformant, 3 unreachable (2 is raised as UsageError)

The report is also written to DIR/conformance.json (docs/results-format.md).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import secrets
import shlex
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import conformance
from conformance.baseline import apply_baseline
from conformance.catalog import Level, Requirement, catalog
from conformance.client import ApiClient, Recorder
from conformance.config import RunConfig, UsageError, resolve_selection
from conformance.context import Session
from conformance.execution import CheckRun, not_run, run_check
from conformance.outcomes import Outcome, RequirementOutcome
from conformance.preflight import preflight
from conformance.progress import Progress
from conformance.registry import Check, registered_checks
from conformance.report import write_reports
from conformance.results import (
    Cleanup,
    Evidence,
    RequirementResult,
    RunReport,
    Status,
    Verdict,
    gate_verdict,
    unverified,
)
from conformance.spec import spec_sha256, spec_version

__all__ = ["REPORT_NAME", "check_seed", "hypothesis_seed", "run"]

REPORT_NAME = "conformance.json"
EXCHANGES_NAME = "exchanges.jsonl"  # every exchange of the run, one JSON object a line
MONITOR = "lifecycle monitor"
CLEANUP_BUDGET_S = 60.0
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def check_seed(seed: int, check_name: str) -> int:
    """The seed one check's Hypothesis tests run with: stable per (session seed, check name).

    Derived per check so that `--select` of one requirement replays the same examples its checks
    got in the full run.
    """
    digest = hashlib.sha256(f"{seed}:{check_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@contextlib.contextmanager
def hypothesis_seed(seed: int) -> Iterator[None]:
    """Seed every @given run inside: the same effect as pytest's --hypothesis-seed.

    Checks build their Hypothesis tests with ctx.hypothesis_settings(), which never writes an
    example database and derandomises under CI; outside CI this global seed makes a run
    replayable with --seed.
    """
    import hypothesis.core as hypothesis_core

    previous = hypothesis_core.global_force_seed
    hypothesis_core.global_force_seed = seed  # type: ignore[assignment]
    try:
        yield
    finally:
        hypothesis_core.global_force_seed = previous


CACHE_ENV = "XDG_CACHE_HOME"


def hypothesis_cache_dir() -> Path:
    """Where Hypothesis keeps its caches between runs: $XDG_CACHE_HOME (or ~/.cache)/runs-conformance/hypothesis."""
    import os

    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache")
    return Path(base) / "runs-conformance" / "hypothesis"


@contextlib.contextmanager
def _private_hypothesis_home() -> Iterator[None]:
    """Keep Hypothesis' storage out of the user's working directory, in a cache that outlives the run.

    Hypothesis stores its Unicode tables and the constants it collects from source files there;
    rebuilding them costs seconds each run, so they live in the user's cache directory
    (hypothesis_cache_dir()). No example database is kept there or anywhere: every check's
    settings say database=None, so runs stay deterministic under CI. When the cache directory
    cannot be created, a temporary one serves this run. Left alone when the user chose a place
    with HYPOTHESIS_STORAGE_DIRECTORY.
    """
    import os
    import tempfile

    import hypothesis.configuration as hypothesis_configuration

    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    attribute = "__hypothesis_home_directory"
    previous = getattr(hypothesis_configuration, attribute, None)
    with ExitStack() as stack:
        home = hypothesis_cache_dir()
        try:
            home.mkdir(parents=True, exist_ok=True)
            if not os.access(home, os.W_OK):
                raise PermissionError(f"{home} is not writable")
        except OSError:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="runs-conformance-hypothesis-")))
        hypothesis_configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            setattr(hypothesis_configuration, attribute, previous)


@dataclass
class _Target:
    base_url: str
    token: str
    other_token: str | None
    embedded: bool


def run(config: RunConfig, *, stream: TextIO | None = None, checks: Sequence[Check] | None = None) -> RunReport:
    """Run the suite as configured. Raises UsageError (exit 2) before any request when misconfigured."""
    config.validate()
    all_checks = list(registered_checks() if checks is None else checks)
    selected, chosen = resolve_selection(config.select, all_checks)
    seed = config.resolved_seed()
    stream = stream if stream is not None else sys.stderr
    progress = Progress(len(chosen), stream=stream, heartbeat_s=config.heartbeat_s, quiet=config.quiet)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    progress.line(
        f"runs-conformance {conformance.__version__}, spec {spec_version()}: seed {seed}, profile "
        f"{config.profile}{' (deterministic)' if config.deterministic else ''}"
    )
    hidden = [t for t in (config.token, config.other_token) if t]
    try:
        with ExitStack() as stack:
            stack.enter_context(_private_hypothesis_home())
            target = _target(config, stack, progress)
            if isinstance(target, _Target):
                hidden += [t for t in (target.token, target.other_token) if t]
            if isinstance(target, RunReport):
                report = target
            else:
                report = _run_against(config, target, selected, chosen, seed, progress, started_at, clock)
    finally:
        progress.close()
    report.duration_s = round(time.monotonic() - clock, 3)
    try:
        paths = write_reports(report, config.report_dir, secrets=hidden)
    except OSError as exc:
        progress.line(f"could not write the reports into {config.report_dir}: {exc}")
    else:
        progress.line(f"report: {', '.join(str(p) for p in paths)}")
    _summary(report, progress)
    return report


def _target(config: RunConfig, stack: ExitStack, progress: Progress) -> _Target | RunReport:
    if config.base_url is not None:
        assert config.token is not None  # validate() made sure
        return _Target(config.base_url.rstrip("/"), config.token, config.other_token, False)
    from conformance.embedded import embedded_server

    progress.info("no --base-url: starting the bundled reference server on a loopback port")
    try:
        server = stack.enter_context(embedded_server(ready_timeout=max(10.0, config.request_timeout)))
    except Exception as exc:  # the bundled server is part of the suite: say why it did not start
        reason = f"the bundled reference server did not start: {type(exc).__name__}: {exc}".splitlines()[0]
        return _early_report(config, "", reason, Verdict.UNREACHABLE, 3)
    progress.info(f"bundled reference server at {server.base_url}")
    return _Target(server.base_url, server.token, server.other_token, True)


def _run_against(
    config: RunConfig,
    target: _Target,
    selected: set[str],
    chosen: list[Check],
    seed: int,
    progress: Progress,
    started_at: str,
    clock: float,
) -> RunReport:
    session = Session.open(
        target.base_url,
        target.token,
        other_token=target.other_token,
        fixtures=config.fixtures(),
        profile=config.profile,
        seed=seed,
        client_id=f"rc-{secrets.token_hex(4)}",
        timeout=config.timeout,
        request_timeout=config.request_timeout,
        deterministic=config.deterministic,
    )
    try:
        check = preflight(session.client)
        if not check.ok:
            report = _early_report(
                config, target.base_url, check.reason, Verdict.UNREACHABLE, 3, selected, seed, started_at, target
            )
            if check.exchange is not None:
                for req in report.requirements:
                    if req.status is Status.SKIPPED:
                        req.evidence.append(Evidence("preflight", check.reason, [check.exchange]))
                        break
            return report
        progress.info(f"server {target.base_url} answers as a Runs API; session clientId {session.client_id}")
        check_runs, interrupted = _run_checks(config, session, chosen, seed, progress, clock)
        _write_exchanges(config.report_dir, check_runs, progress)
        results = _aggregate(config, session, selected, check_runs, seed, target)
        report = _report(config, target, seed, started_at, results, session.client_id)
        progress.info(f"cleanup: cancelling the suite's unfinished runs ({len(session.started_runs)} started)")
        report.cleanup = _cleanup(session)
        _apply_baseline(config, report)
        report.verdict, report.exit_code, report.reason = gate_verdict(report, config.strict, interrupted=interrupted)
        return report
    finally:
        session.close()


# --- running the checks ------------------------------------------------------------------------
def _unmet_need(check: Check, session: Session) -> str | None:
    for need in sorted(check.needs):
        if need == "other_token" and session.other_client is None:
            return "needs a second credential: give --other-token or RUNS_OTHER_TOKEN"
        if need.startswith("fixture:"):
            name = need.split(":", 1)[1]
            if not session.fixtures.has(name):
                return f"no '{name}' workflow in {session.fixtures.source} (give one with --fixtures)"
    return None


def _run_checks(
    config: RunConfig, session: Session, chosen: list[Check], seed: int, progress: Progress, clock: float
) -> tuple[list[CheckRun], bool]:
    deadline = clock + config.overall_deadline
    session.deadline = deadline
    results: list[CheckRun] = []
    interrupted = False
    for index, check in enumerate(chosen):
        if time.monotonic() >= deadline:
            reason = f"cut by --deadline: the run's {config.overall_deadline:g} s passed before this check started"
            results.extend(not_run(c, Outcome.NOT_RUN, reason) for c in chosen[index:])
            progress.line(f"overall deadline reached: {len(chosen) - index} checks not run")
            break
        need = _unmet_need(check, session)
        if need is not None:
            results.append(not_run(check, Outcome.SKIPPED, need))
            progress.start(check.name)
            progress.finish(check.name, "skipped", need)
            continue
        progress.start(check.name)
        try:
            with hypothesis_seed(check_seed(seed, check.name)):
                outcome = _run_one(check, session)
        except KeyboardInterrupt:
            interrupted = True
            results.extend(not_run(c, Outcome.NOT_RUN, "the run was interrupted") for c in chosen[index:])
            progress.line("interrupted: cleaning up and writing the report")
            break
        results.append(outcome)
        worst = outcome.worst()
        detail = outcome.message if worst is not Outcome.PASSED else ""
        progress.finish(check.name, worst.value, detail.splitlines()[0][:160] if detail else "")
    return results, interrupted


def _run_one(check: Check, session: Session) -> CheckRun:
    started = time.perf_counter()
    try:
        return run_check(check, session)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # e.g. an exception group a check let escape: the suite's error
        message = f"the check itself broke: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        tb = "".join(traceback.format_exception(exc))
        run = not_run(check, Outcome.ERROR, message)
        run.evidence = {rid: [Evidence(check.name, message, [], tb)] for rid in check.requirements}
        run.duration_s = time.perf_counter() - started
        return run


# --- aggregation -----------------------------------------------------------------------------------
def _status(req: Requirement, outcome: Outcome, strict: bool) -> Status:
    if outcome is Outcome.FAILED:
        if req.level is Level.MUST or (req.level is Level.SHOULD and strict):
            return Status.FAILED
        return Status.WARNING
    return {
        Outcome.PASSED: Status.PASSED,
        Outcome.NOT_RUN: Status.NOT_RUN,
        Outcome.SKIPPED: Status.SKIPPED,
        Outcome.ERROR: Status.ERROR,
    }[outcome]


def rerun_command(config: RunConfig, target: _Target | None, seed: int, select: Sequence[str]) -> str:
    parts = ["runs-conformance", "run"]
    if target is not None and not target.embedded:
        parts += ["--base-url", target.base_url]
    if config.profile != "default":
        parts += ["--profile", config.profile]
    parts += ["--seed", str(seed)]
    if config.fixtures_path is not None:
        parts += ["--fixtures", str(config.fixtures_path)]
    if config.strict:
        parts.append("--strict")
    if select:
        parts += ["--select", *select]
    return " ".join(shlex.quote(p) for p in parts)


def _aggregate(
    config: RunConfig,
    session: Session,
    selected: set[str],
    check_runs: list[CheckRun],
    seed: int,
    target: _Target,
) -> list[RequirementResult]:
    """One row per requirement, on the evidence: the worst outcome any check had for it."""
    seen: dict[str, list[tuple[str, RequirementOutcome, float]]] = {}
    evidence: dict[str, list[Evidence]] = {}
    named: dict[str, list[str]] = {}
    for cr in check_runs:
        for rid in cr.check.requirements:
            named.setdefault(rid, []).append(cr.check.name)
        for rid, outcome in cr.outcomes.items():
            if rid in selected:
                seen.setdefault(rid, []).append((cr.check.name, outcome, cr.duration_s))
                evidence.setdefault(rid, []).extend(cr.evidence.get(rid, []))
    # The lifecycle monitor judged every Run the checks saw; it counts as a check of its rules.
    monitor = session.monitor
    found: dict[str, list[str]] = {}
    for finding in monitor.findings:
        found.setdefault(finding.requirement_id, []).append(finding.message)
        if finding.requirement_id in selected:
            evidence.setdefault(finding.requirement_id, []).append(
                Evidence(MONITOR, finding.message, list(finding.exchanges))
            )
    for rid, count in monitor.evaluations.items():
        if rid in selected and (count or rid in found):
            judged = Outcome.FAILED if rid in found else Outcome.PASSED
            seen.setdefault(rid, []).append((MONITOR, RequirementOutcome(judged, count), 0.0))
    results: list[RequirementResult] = []
    for req in catalog().values():
        result = RequirementResult.of(req, Status.NOT_SELECTED, "not selected")
        if req.id in selected:
            result.rerun = rerun_command(config, target, seed, [req.id])
            rows = seen.get(req.id)
            if not rows:
                result.status = Status.NOT_RUN
                checks = named.get(req.id, [])
                result.checks = sorted(set(checks))
                result.message = (
                    f"not evaluated: {', '.join(result.checks)} ran without an assertion about it"
                    if checks
                    else "not evaluated: no selected check verifies this requirement"
                )
            else:
                worst = max((o.outcome for _, o, _ in rows), key=lambda o: o.rank)
                result.status = _status(req, worst, config.strict)
                result.evaluations = sum(o.evaluations for _, o, _ in rows)
                result.checks = sorted({name for name, _, _ in rows})
                result.duration_s = round(sum(d for _, _, d in rows), 3)
                result.evidence = evidence.get(req.id, [])
                result.message = _message(worst, rows, result.evidence, result.evaluations)
        results.append(result)
    return results


def _message(
    worst: Outcome, rows: list[tuple[str, RequirementOutcome, float]], evidence: list[Evidence], evaluations: int
) -> str:
    if worst is Outcome.PASSED:
        checks = len({name for name, _, _ in rows})
        return (
            f"verified by {checks} check{'s' if checks != 1 else ''}: "
            f"{evaluations} assertion{'s' if evaluations != 1 else ''} evaluated, none failed"
        )
    if worst is Outcome.FAILED:
        first = next((e for e in evidence if e.check), None)
        if first is not None:
            more = f" (and {len(evidence) - 1} more)" if len(evidence) > 1 else ""
            return f"{first.check}: {first.message.splitlines()[0] if first.message else 'failed'}{more}"
    for name, outcome, _ in rows:
        if outcome.outcome is worst:
            return f"{name}: {outcome.reason}" if outcome.reason else name
    return worst.value


def _report(
    config: RunConfig,
    target: _Target | None,
    seed: int,
    started_at: str,
    results: list[RequirementResult],
    client_id: str,
) -> RunReport:
    return RunReport(
        verdict=Verdict.NOT_CONFORMANT,
        exit_code=1,
        reason="",
        suite_version=conformance.__version__,
        spec_version=spec_version(),
        spec_sha256=spec_sha256(),
        base_url=target.base_url if target is not None else (config.base_url or ""),
        profile=config.profile,
        strict=config.strict,
        seed=seed,
        command=rerun_command(config, target, seed, list(config.select)),
        started_at=started_at,
        duration_s=0.0,
        requirements=results,
        session_client_id=client_id,
    )


def _early_report(
    config: RunConfig,
    base_url: str,
    reason: str,
    verdict: Verdict,
    exit_code: int,
    selected: set[str] | None = None,
    seed: int | None = None,
    started_at: str | None = None,
    target: _Target | None = None,
) -> RunReport:
    """A report when no check could run: every selected requirement skipped, with the reason."""
    selected = set(catalog()) if selected is None else selected
    seed = config.resolved_seed() if seed is None else seed
    results = []
    for req in catalog().values():
        chosen = req.id in selected
        results.append(
            RequirementResult.of(
                req,
                Status.SKIPPED if chosen else Status.NOT_SELECTED,
                f"not checked: {reason}" if chosen else "not selected",
            )
        )
    report = _report(config, target, seed, started_at or datetime.now(UTC).isoformat(timespec="seconds"), results, "")
    report.base_url = base_url or report.base_url
    report.verdict, report.exit_code, report.reason = verdict, exit_code, reason
    return report


# --- baseline, cleanup, verdict ---------------------------------------------------------------
def _apply_baseline(config: RunConfig, report: RunReport) -> None:
    """conformance.baseline marks baselined failures, writes paste-ready entries and sets the verdict.

    Called even without --baseline, so every new failure gets its baseline_entry.
    """
    try:
        apply_baseline(report, config.baseline, config.strict)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot use baseline file {config.baseline}: {exc}".splitlines()[0]) from None


def _cleanup(session: Session) -> Cleanup:
    """Cancel every run the suite started that is still going. Never part of the verdict.

    Runs the lifecycle monitor last saw in a terminal status are not asked about again: a
    terminal status never changes (LIFE-002), so they cannot be going (and most of the suite's
    runs are such: a quick run's 150 getRuns took ~0.4 s).
    """
    result = Cleanup(runs_started=len(session.started_runs))
    deadline = time.monotonic() + max(CLEANUP_BUDGET_S, session.request_timeout * 3)
    recorder = Recorder(secrets=session.secrets)
    pending = [(rid, client) for rid, client in session.started_runs.items() if not session.monitor.seen_terminal(rid)]
    for index, (run_id, client) in enumerate(pending):
        if time.monotonic() >= deadline:
            result.errors.append(f"cleanup stopped at its deadline; {len(pending) - index} runs not checked")
            break
        api = _with_recorder(client, recorder)
        try:
            response = api.get(f"/api/v1/runs/{run_id}")
            data = response.json_or_none() if response.status_code == 200 else None
            status = data.get("status") if isinstance(data, dict) else None
            if response.status_code != 200:
                result.errors.append(f"run {run_id}: getRun answered {response.status_code}")
                continue
            if status in TERMINAL:
                continue
            cancel = api.post(f"/api/v1/runs/{run_id}/cancel")
            if cancel.status_code == 202:
                result.runs_cancelled += 1
            else:
                result.errors.append(f"run {run_id}: cancelRun answered {cancel.status_code}")
        except Exception as exc:  # a broken server must not break the report
            result.errors.append(f"run {run_id}: {type(exc).__name__}: {exc}".splitlines()[0])
        if len(result.errors) >= 20:
            result.errors.append("cleanup gave up after 20 errors")
            break
    return result


def _write_exchanges(report_dir: Path, check_runs: list[CheckRun], progress: Progress) -> None:
    """The full transcript: each exchange as recorded (Authorization redacted, bodies truncated)."""
    path = report_dir / EXCHANGES_NAME
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for cr in check_runs:
                for exchange in cr.exchanges:
                    out.write(json.dumps({"check": cr.check.name, **dataclasses.asdict(exchange)}, ensure_ascii=False))
                    out.write("\n")
    except OSError as exc:
        progress.line(f"could not write {path}: {exc}")


def _with_recorder(client: ApiClient, recorder: Recorder) -> ApiClient:
    view = copy.copy(client)
    view.recorder = recorder
    return view


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:8]) + (f", … {len(ids) - 8} more" if len(ids) > 8 else "")


def _summary(report: RunReport, progress: Progress) -> None:
    for req in report.requirements:
        if req.status in {Status.FAILED, Status.WARNING}:
            progress.line(f"  {req.status.value.upper():<7} {req.id} ({req.level}) {req.message}")
            curl = next((x.curl for e in req.evidence for x in e.exchanges if x.curl), "")
            if curl:
                progress.line(f"          reproduce: {curl}")
            if req.rerun:
                progress.line(f"          rerun: {req.rerun}")
    for req in report.requirements:
        if req.status is Status.ERROR:
            progress.line(f"  SUITE ERROR {req.id}: {req.message}")
    gaps = [r for r in unverified(report, report.strict) if r.status is not Status.ERROR]
    for req in gaps[:10]:
        progress.line(f"  {req.status.value.upper().replace('_', ' '):<7} {req.id} ({req.level}) {req.message}")
    if len(gaps) > 10:
        progress.line(f"  … and {len(gaps) - 10} more not verified (the report lists them)")
    if gaps:
        progress.line("  to accept a gap on purpose, add its baseline entry (conformance.json: baseline_entry)")
    counts = report.counts()
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    progress.line(f"{report.verdict.value} (exit {report.exit_code}): {report.reason}")
    progress.line(
        f"requirements: {shown}; cleanup: {report.cleanup.runs_cancelled} of "
        f"{report.cleanup.runs_started} runs cancelled, {len(report.cleanup.errors)} errors"
    )
    progress.line(f"seed {report.seed} — replay with --seed {report.seed}")
