"""Example budgets: how much each profile generates, walks and drives. `quick` still runs every check once."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True)
class Profile:
    """Example budgets. `quick` still runs every check at least once."""

    name: str
    max_examples: int  # Hypothesis examples per property-based check
    schema_examples: int  # Schemathesis examples per operation
    stateful_examples: int  # scenarios of the state machines
    stateful_steps: int
    concurrency: int  # parallel requests in the concurrency checks
    walk_size: int  # runs created for pagination walks
    workload_clients: int  # clients of the concurrent workload (checks/concurrency.py)
    workload_seconds: float  # how long the workload drives the server


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        max_examples=5,
        schema_examples=5,
        stateful_examples=3,
        stateful_steps=6,
        concurrency=20,
        walk_size=12,
        workload_clients=4,
        workload_seconds=3.0,
    ),
    "default": Profile(
        "default",
        max_examples=25,
        schema_examples=25,
        stateful_examples=15,
        stateful_steps=10,
        concurrency=25,
        walk_size=30,
        workload_clients=8,
        workload_seconds=10.0,
    ),
    "thorough": Profile(
        "thorough",
        max_examples=150,
        schema_examples=150,
        stateful_examples=60,
        stateful_steps=20,
        concurrency=50,
        walk_size=120,
        workload_clients=16,
        workload_seconds=60.0,
    ),
}
