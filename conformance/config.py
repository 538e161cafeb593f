"""RunConfig: what one run of the suite is told to do, from the CLI, the environment or the plugin.

Where each value comes from is conformance/options.py's business; everything a user can get wrong
is checked here, before any request is sent, and reported as a UsageError with a one-line message
(the CLI exits 2 with it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.catalog import catalog
from conformance.fixtures import Fixtures
from conformance.history_disruption import DisruptionPlan
from conformance.options import UsageError, resolve
from conformance.profiles import PROFILES
from conformance.registry import Check

__all__ = ["DEADLINES", "RunConfig", "UsageError", "resolve_selection"]

# The overall deadline of a whole run, per profile, unless --deadline says otherwise. When it
# passes, the checks not yet started are not run (and the run is incomplete); a running check is
# bounded by its own request timeouts and budgets.
DEADLINES: dict[str, float] = {"quick": 300.0, "default": 900.0, "thorough": 3600.0}

MAX_SEED = 2**32 - 1


@dataclass
class RunConfig:
    """What one run is told to do. The fields and their defaults are conformance.options.OPTIONS'."""

    base_url: str | None = None  # None: start the bundled reference server
    token: str | None = None
    other_token: str | None = None
    fixtures: Path | None = None
    profile: str = "default"
    seed: int | None = None  # None: a random seed, printed so it can be replayed
    select: tuple[str, ...] = ()  # requirement IDs, areas or check names; empty: everything
    report_dir: Path = Path("reports")
    summary: Path | None = None  # the Markdown summary's file
    step_summary: Path | None = None  # GitHub's job summary ($GITHUB_STEP_SUMMARY): appended to when summary is None
    strict: bool = False
    baseline: Path | None = None
    timeout: float = 30.0  # how long a run may take to reach a status the suite waits for
    request_timeout: float = 10.0  # per HTTP request
    deadline: float | None = None  # the whole run; None: DEADLINES[profile]
    workers: int | str = "auto"  # checks side by side: a number, or "auto" (scheduler.auto_workers)
    workload_clients: int | None = None  # None: the profile's
    workload_seconds: float | None = None  # None: the profile's
    require_coverage: bool = False  # a documented response never observed fails the gate
    events: str | None = None  # NDJSON events to this file, or "-" for stdout
    quiet: bool = False  # no progress lines
    final_reads_after: float = 0.0  # seconds the final reads wait after the checks
    disrupt: str | None = None  # a shell command run during the concurrent workload
    disrupt_at: float | None = None  # None: the workload's middle
    disrupt_grace: float | None = None  # None: twice request_timeout
    disrupt_wait: float = 30.0
    deterministic: bool = False  # derandomised generation (set under CI)
    heartbeat_s: float = 10.0

    @classmethod
    def from_sources(
        cls,
        given: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        cwd: Path | None = None,
    ) -> RunConfig:
        """A config from what the user gave (None: not given), the environment and the config file."""
        env = os.environ if env is None else env
        values = resolve(given or {}, env=env, config_file=config_file, cwd=cwd)
        config = cls(**values)
        config.deterministic = env.get("CI", "").strip().lower() in {"1", "true", "yes"}
        step_summary = env.get("GITHUB_STEP_SUMMARY", "").strip()
        config.step_summary = Path(step_summary) if step_summary else None
        return config

    def disruption_plan(self) -> DisruptionPlan | None:
        """What --disrupt asks of the concurrent workload, or None without it."""
        if self.disrupt is None or not self.disrupt.strip():
            return None
        return DisruptionPlan(self.disrupt, at=self.disrupt_at, grace=self.disrupt_grace, wait=self.disrupt_wait)

    def resolved_workers(self, round_trip_s: float) -> int:
        """The number given, or for auto as many as hide the server's round trip behind the suite's work."""
        from conformance.scheduler import auto_workers

        return self.workers if isinstance(self.workers, int) else auto_workers(round_trip_s)

    @property
    def overall_deadline(self) -> float:
        return self.deadline if self.deadline is not None else DEADLINES.get(self.profile, 900.0)

    def resolved_seed(self) -> int:
        """The seed given, else 0 under CI (every CI run makes the same requests), else a random one."""
        if self.seed is None:
            self.seed = 0 if self.deterministic else secrets.randbelow(MAX_SEED)
        return self.seed

    def validate(self) -> None:
        """Raise UsageError for the first problem found."""
        if self.profile not in PROFILES:
            raise UsageError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise UsageError(f"--base-url must be an http:// or https:// URL, not {self.base_url!r}")
            if not self.token:
                raise UsageError("no token for the server: give --token or set RUNS_TOKEN")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"--seed must be between 0 and {MAX_SEED}, not {self.seed}")
        for name, value in (("--timeout", self.timeout), ("--request-timeout", self.request_timeout)):
            if not value > 0:
                raise UsageError(f"{name} must be more than 0 seconds, not {value}")
        if self.deadline is not None and not self.deadline > 0:
            raise UsageError(f"--deadline must be more than 0 seconds, not {self.deadline}")
        if self.fixtures is not None:
            self.load_fixtures()  # raises UsageError when unreadable
        if self.baseline is not None:
            self._check_baseline(self.baseline)
        if self.token and self.other_token and self.token == self.other_token:
            raise UsageError("--other-token must be a different credential from --token")
        self._check_disruption()

    def _check_disruption(self) -> None:
        if self.disrupt is None or not self.disrupt.strip():
            given = (("--disrupt-at", self.disrupt_at), ("--disrupt-grace", self.disrupt_grace))
            named = [flag for flag, value in given if value is not None]
            if named:
                raise UsageError(f"{' and '.join(named)} without --disrupt: give the command to run")
        elif self.base_url is None:
            # The bundled server runs inside the suite's own process: no command can restart it.
            raise UsageError("--disrupt needs --base-url: a server the command can restart (docs/disruption.md)")

    @staticmethod
    def _check_baseline(path: Path) -> None:
        if not path.is_file():
            raise UsageError(f"cannot read baseline file {path}: no such file")
        from conformance.baseline import load_baseline

        try:
            load_baseline(path)
        except ValueError as exc:
            raise UsageError(str(exc).splitlines()[0]) from None

    def load_fixtures(self) -> Fixtures:
        if self.fixtures is None:
            return Fixtures.default()
        try:
            return Fixtures.from_file(self.fixtures)
        except ValueError as exc:
            raise UsageError(str(exc).replace("\n", " ")) from None


def resolve_selection(select: Iterable[str], checks: Iterable[Check]) -> tuple[set[str], list[Check]]:
    """The requirement IDs and the checks a --select list means.

    Each item is a requirement ID (SCHEMA-001), an area (idempotency) or a check name. A check
    runs when it names any selected requirement, or is itself named. Empty: everything.
    """
    all_checks = list(checks)
    reqs = catalog()
    items = [s.strip() for s in select if s.strip()]
    if not items:
        return set(reqs), all_checks
    areas = {r.area for r in reqs.values()}
    by_name = {c.name: c for c in all_checks}
    selected: set[str] = set()
    named: set[str] = set()
    for item in items:
        upper = item.upper()
        if upper in reqs:
            selected.add(upper)
        elif item.lower() in areas:
            selected.update(r.id for r in reqs.values() if r.area == item.lower())
        elif item in by_name:
            named.add(item)
        else:
            raise UsageError(
                f"--select {item!r} is not a requirement ID, an area ({', '.join(sorted(areas))}) or a check name"
            )
    chosen = [c for c in all_checks if c.name in named or selected.intersection(c.requirements)]
    for c in chosen:
        if c.name in named:
            selected.update(c.requirements)
    return selected, chosen
