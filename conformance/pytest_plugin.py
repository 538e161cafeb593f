"""The suite inside a team's own pytest run (entry point pytest11: runs_conformance).

    pytest --runs-conformance --runs-base-url https://staging:8443 --runs-profile quick

Its options are the CLI's (conformance/options.py), named --runs-<flag>, with the same
environment variables, config file and defaults.

With --runs-conformance the plugin adds one item per requirement (`runs-conformance::AUTH-003`);
the suite runs once, when the first of them runs, and each item then passes, fails or skips as
its requirement did (a SHOULD warning passes with a warning; a suite error is an error). The same
DIR/conformance.json is written, and the session's exit code is the CLI's whenever the suite did
not pass. Without --runs-conformance the plugin adds nothing: it registers its options (read from
the small, dependency-free conformance.options) and imports nothing else of the suite.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conformance.results import RequirementResult, RunReport

__all__ = ["ConformanceWarning"]

_STATE = pytest.StashKey["_State"]()


def _dest(option: Any) -> str:
    return "runs_" + str(option.name)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


class ConformanceWarning(UserWarning):
    """A SHOULD requirement the server does not keep."""


class _State:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report: RunReport | None = None
        self.report_dir = Path("reports")
        self.failure: str | None = None  # usage error or unreachable: every item fails with it

    def run(self) -> RunReport | None:
        if self.report is not None or self.failure is not None:
            return self.report
        from conformance.config import RunConfig, UsageError
        from conformance.options import OPTIONS
        from conformance.runner import run

        given = {option.name: self.config.getoption(_dest(option)) for option in OPTIONS}
        try:
            run_config = RunConfig.from_sources(given, config_file=_path(self.config.getoption("runs_config")))
            run_config.quiet = True  # pytest shows the outcome per item; the summary line says the verdict
            self.report_dir = run_config.report_dir
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
    from conformance.options import OPTIONS

    for option in OPTIONS:
        kwargs: dict[str, Any] = {"dest": _dest(option), "default": None, "help": f"{option.help} (${option.env})"}
        if option.kind == "flag":
            kwargs["action"] = "store_true"
        elif option.kind == "list":
            kwargs["action"] = "append"
        else:
            kwargs["type"] = option.parse
        group.addoption(option.pytest_flag, **kwargs)
    group.addoption("--runs-config", default=None, help="a runs-conformance config file (see the README)")


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

        select = [s for item in (self.config.getoption("runs_select") or []) for s in item.replace(",", " ").split()]
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
            f"report {state.report_dir / 'conformance.json'})"
        )
