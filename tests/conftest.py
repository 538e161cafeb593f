"""Shared fixtures: the reference server on a loopback port, and sessions of the suite against it.

Only fixtures and the Hypothesis settings live here; every other helper is in tests/support.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from support.tokens import OTHER_TOKEN, TOKEN

from conformance.session import Session

# The project's own property tests: derandomised under CI, and never failed for being slow on a
# loaded two-core machine (a health check about speed says nothing about correctness).
settings.register_profile(
    "project",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("CI") == "true",
    database=None if os.environ.get("CI") == "true" else settings.default.database,
)
settings.load_profile("project")


@pytest.fixture(scope="session")
def reference_url() -> Iterator[str]:
    """A reference server shared by the tests that only add runs of their own clientIds."""
    from reference_impl.app import create_app
    from reference_impl.serve import serve_in_thread

    with serve_in_thread(create_app([TOKEN, OTHER_TOKEN])) as url:
        yield url


@pytest.fixture
def make_session() -> Iterator[Callable[..., Session]]:
    """Open suite sessions against a URL; each gets its own clientId and is closed afterwards."""
    opened: list[Session] = []

    def make(base_url: str, **kwargs: Any) -> Session:
        kwargs.setdefault("other_token", OTHER_TOKEN)
        kwargs.setdefault("client_id", f"rc-test-{secrets.token_hex(4)}")
        kwargs.setdefault("timeout", 15.0)
        session = Session.open(base_url, kwargs.pop("token", TOKEN), **kwargs)
        opened.append(session)
        return session

    yield make
    for session in opened:
        session.close()
