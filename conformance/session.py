"""The Session: what every check of one run shares (clients, fixtures, budgets, the runs started, the monitor)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from conformance.client import ApiClient, Recorder
from conformance.fixtures import Fixtures
from conformance.history_disruption import DisruptionPlan
from conformance.monitor import LifecycleMonitor
from conformance.profiles import PROFILES, Profile

__all__ = ["Session", "check_seed"]


@dataclass
class Session:
    """State shared by every check of one run of the suite."""

    base_url: str
    client: ApiClient
    other_client: ApiClient | None
    anonymous: ApiClient
    fixtures: Fixtures
    profile: Profile
    seed: int
    client_id: str  # unique to this session: the suite's runs carry it (or one derived from it)
    timeout: float  # how long a run may take to reach a status the suite waits for
    request_timeout: float
    deterministic: bool
    secrets: tuple[str, ...]
    monitor: LifecycleMonitor = field(default_factory=LifecycleMonitor)
    schema_verdicts: dict[tuple[str, bytes], str | None] = field(default_factory=dict)
    started_runs: dict[str, ApiClient] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() by which the whole run should end; set by the runner
    fan_out: int = 1  # requests a check may send side by side (its examples, its scenarios); set by the runner
    workload_clients: int | None = None  # overrides the profile's (--workload-clients)
    workload_seconds: float | None = None  # overrides the profile's (--workload-seconds)
    disruption: DisruptionPlan | None = None  # --disrupt: the user's command run during the workload
    histories: list[Any] = field(default_factory=list)  # concurrent histories recorded, for the transcript

    @classmethod
    def open(
        cls,
        base_url: str,
        token: str,
        *,
        other_token: str | None = None,
        fixtures: Fixtures | None = None,
        profile: str | Profile = "quick",
        seed: int = 0,
        client_id: str | None = None,
        timeout: float = 30.0,
        request_timeout: float = 10.0,
        deterministic: bool = True,
    ) -> Session:
        """A session against `base_url`; close it with `close()`."""
        secrets = tuple(t for t in (token, other_token) if t)
        recorder = Recorder(secrets=secrets)

        def make(tok: str | None, var: str) -> ApiClient:
            return ApiClient(base_url, tok, request_timeout=request_timeout, recorder=recorder, token_var=var)

        return cls(
            base_url=base_url,
            client=make(token, "RUNS_TOKEN"),
            other_client=make(other_token, "RUNS_OTHER_TOKEN") if other_token else None,
            anonymous=make(None, "RUNS_TOKEN"),
            fixtures=fixtures or Fixtures.default(),
            profile=PROFILES[profile] if isinstance(profile, str) else profile,
            seed=seed,
            client_id=client_id or f"rc-{seed & 0xFFFFFFFF:08x}",
            timeout=timeout,
            request_timeout=request_timeout,
            deterministic=deterministic,
            secrets=secrets,
        )

    def close(self) -> None:
        for client in (self.client, self.other_client, self.anonymous):
            if client is not None:
                client.close()


def check_seed(seed: int, check_name: str) -> int:
    """The seed one check's Hypothesis tests run with: derived from the session seed and the check's name."""
    digest = hashlib.sha256(f"{seed}:{check_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
