"""The suite inside a team's own pytest run (entry point pytest11: runs_conformance).

    pytest --runs-conformance --runs-base-url https://staging:8443 --runs-profile quick

With --runs-conformance the plugin adds one item per requirement (`runs-conformance::AUTH-003`);
the suite runs once, when the first of them runs, and each item then passes, fails or skips as
its requirement did (a SHOULD warning passes with a warning; a suite error is an error). The same
DIR/conformance.json is written. Without --runs-conformance the plugin adds nothing: it only
registers its options, and imports nothing of the suite.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conformance.results import RequirementResult, RunReport

__all__ = ["ConformanceWarning"]

_STATE = pytest.StashKey["_State"]()


class ConformanceWarning(UserWarning):
    """A SHOULD requirement the server does not keep."""


class _State:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report: RunReport | None = None
        self.failure: str | None = None  # usage error or unreachable: every item fails with it

    def run(self) -> RunReport | None:
        if self.report is not None or self.failure is not None:
            return self.report
        from conformance.config import RunConfig, UsageError
        from conformance.runner import run

        opt = self.config.getoption
        select = tuple(s for item in (opt("runs_select") or []) for s in item.split(",") if s)
        run_config = RunConfig.from_env(
            base_url=opt("runs_base_url") or os.environ.get("RUNS_BASE_URL") or None,
            token=opt("runs_token"),
            other_token=opt("runs_other_token"),
            fixtures_path=Path(opt("runs_fixtures")) if opt("runs_fixtures") else None,
            profile=opt("runs_profile"),
            seed=opt("runs_seed"),
            select=select,
            report_dir=Path(opt("runs_report_dir")),
            strict=bool(opt("runs_strict")),
            baseline=Path(opt("runs_baseline")) if opt("runs_baseline") else None,
            timeout=float(opt("runs_timeout")),
            request_timeout=float(opt("runs_request_timeout")),
            quiet=True,
        )
        try:
            self.report = run(run_config)
        except UsageError as exc:
            self.failure = f"runs-conformance usage error: {exc}"
            return None
        if self.report.exit_code == 3:
            self.failure = f"runs-conformance: {self.report.reason}"
        return self.report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runs-conformance", "Runs API conformance suite")
    group.addoption(
        "--runs-conformance",
        action="store_true",
        default=False,
        help="run the Runs API conformance suite: one test item per requirement",
    )
    group.addoption("--runs-base-url", default=None, help="server to test ($RUNS_BASE_URL; default: bundled server)")
    group.addoption("--runs-token", default=None, help="bearer token ($RUNS_TOKEN)")
    group.addoption("--runs-other-token", default=None, help="a second credential ($RUNS_OTHER_TOKEN)")
    group.addoption("--runs-fixtures", default=None, help="fixtures YAML with quick/long/failing workflows")
    group.addoption("--runs-profile", default="quick", help="quick, default or thorough (default: quick)")
    group.addoption("--runs-seed", type=int, default=None, help="replay a seed")
    group.addoption("--runs-select", action="append", default=[], help="requirement IDs, areas or check names")
    group.addoption("--runs-report-dir", default="reports", help="where conformance.json goes (default: reports)")
    group.addoption("--runs-strict", action="store_true", default=False, help="a failed SHOULD fails")
    group.addoption("--runs-baseline", default=None, help="a baseline file of accepted failures")
    group.addoption("--runs-timeout", type=float, default=30.0, help="seconds a run may take to reach a status")
    group.addoption("--runs-request-timeout", type=float, default=10.0, help="seconds per HTTP request")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("runs_conformance", default=False):
        config.stash[_STATE] = _State(config)


class RequirementItem(pytest.Item):
    def __init__(self, *, requirement_id: str, statement: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requirement_id = requirement_id
        self.statement = statement

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        report = state.run()
        if state.failure is not None or report is None:
            raise RequirementFailed(state.failure or "runs-conformance did not run")
        result = next(r for r in report.requirements if r.id == self.requirement_id)
        _mirror(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RequirementFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "runs-conformance", None, f"{self.requirement_id}: {self.statement}"


class RequirementFailed(Exception):
    pass


def _mirror(result: RequirementResult) -> None:
    from conformance.results import Status

    detail = result.message
    evidence = next((x.curl for e in result.evidence for x in e.exchanges if x.curl), "")
    lines = [f"{result.id} ({result.level}) {result.status.value}: {detail}", f"  {result.statement}"]
    if evidence:
        lines.append(f"  reproduce: {evidence}")
    if result.rerun:
        lines.append(f"  rerun: {result.rerun}")
    if result.status is Status.PASSED:
        return
    if result.status is Status.WARNING:
        warnings.warn(ConformanceWarning("\n".join(lines)), stacklevel=1)
        return
    if result.status in {Status.SKIPPED, Status.NOT_RUN, Status.NOT_SELECTED, Status.BASELINED}:
        pytest.skip(f"{result.status.value}: {detail}")
    raise RequirementFailed("\n".join(lines))


class RequirementsCollector(pytest.Collector):
    def collect(self) -> list[pytest.Item]:
        from conformance.catalog import catalog
        from conformance.config import UsageError, resolve_selection
        from conformance.registry import registered_checks

        select = [s for item in (self.config.getoption("runs_select") or []) for s in item.split(",") if s]
        try:
            selected, _ = resolve_selection(select, registered_checks())
        except UsageError:
            selected = set(catalog())  # every item then fails with the usage error
        return [
            RequirementItem.from_parent(self, name=req.id, requirement_id=req.id, statement=req.statement)
            for req in catalog().values()
            if req.id in selected
        ]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if _STATE not in config.stash:
        return
    collector = RequirementsCollector.from_parent(session, name="runs-conformance")
    items.extend(collector.collect())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or state.report is None:
        return
    # The session's exit code is the CLI's whenever the suite did not pass: an incomplete run (a MUST
    # skipped or not reached) must not turn green because its items only skipped.
    if state.report.exit_code != 0 and session.exitstatus == 0:
        session.exitstatus = state.report.exit_code
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        report = state.report
        reporter.write_line(
            f"runs-conformance: {report.verdict.value}: {report.reason} (seed {report.seed}; "
            f"report {Path(session.config.getoption('runs_report_dir')) / 'conformance.json'})"
        )
