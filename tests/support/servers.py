"""Every faulty server and correct variant of the tests, reachable from one place, and one way to serve them.

- `FAULTS`: every fault of the self-check, each with the requirement IDs the suite must report failed
  (tests/test_selfcheck.py holds the suite to each): `SINGLE_CLIENT_FAULTS` (faults.py; scored by
  scripts/mutation_score.py) and `CONCURRENCY_FAULTS`, which only concurrent clients see
  (faults_concurrency.py; scored by scripts/concurrency_score.py).
- `VARIANTS`: every correct variant, which the suite must pass (variants.py, variants_concurrency.py).
- `CHECK_FAULTS`, `CHECK_VARIANTS`: the servers the checks' own unit tests (tests/test_checks_*.py)
  run one check against, by snake_case name (faults_cancel_page.py, faults_idem_etag.py).

`fault(name)` and `variant(name)` look a kebab-case name up; `build(name)` makes the app of any name
above, for the tests' tokens; `serve(name)` serves it on a loopback port. `isolation_matrix()` pairs
each requirement of the catalog with the fault that must be caught by a run selecting it alone
(tests/test_isolation_matrix.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

from starlette.types import ASGIApp

from conformance.catalog import catalog
from reference_impl.serve import serve_in_thread

from . import faults_cancel_page, faults_idem_etag
from .faults import SINGLE_CLIENT_FAULTS as _CATALOGUED
from .faults import Fault
from .faults_bounds import BOUND_FAULTS
from .faults_concurrency import CONCURRENCY_FAULTS
from .faults_final import final_faults
from .faults_nearmiss import NEAR_MISS_FAULTS
from .faults_schema import SCHEMA_FAULTS
from .faults_stall import KEYLESS_FAULTS
from .tokens import TOKENS
from .variants import SINGLE_CLIENT_VARIANTS, Variant
from .variants_concurrency import CONCURRENCY_VARIANTS

__all__ = [
    "CHECK_FAULTS",
    "CHECK_VARIANTS",
    "CONCURRENCY_FAULTS",
    "FAULTS",
    "SINGLE_CLIENT_FAULTS",
    "VARIANTS",
    "Fault",
    "Variant",
    "build",
    "fault",
    "isolation_matrix",
    "serve",
    "variant",
]

# The single-client faults: faults.py's, and those of the files that build on faults.py (joined here,
# not there, so that any of them can be imported first).
SINGLE_CLIENT_FAULTS: list[Fault] = [
    *_CATALOGUED,
    *(Fault(*fault) for fault in SCHEMA_FAULTS),
    *KEYLESS_FAULTS,
    *BOUND_FAULTS,
    *NEAR_MISS_FAULTS,
    *final_faults(),
]
FAULTS: list[Fault] = [*SINGLE_CLIENT_FAULTS, *CONCURRENCY_FAULTS]
VARIANTS: list[Variant] = [*SINGLE_CLIENT_VARIANTS, *CONCURRENCY_VARIANTS]


def _joined(*tables: Mapping[str, Callable[[], ASGIApp]]) -> dict[str, Callable[[], ASGIApp]]:
    joined: dict[str, Callable[[], ASGIApp]] = {}
    for table in tables:
        clash = set(joined) & set(table)
        if clash:
            raise ValueError(f"two servers are named {sorted(clash)}")
        joined.update(table)
    return joined


CHECK_FAULTS = _joined(faults_cancel_page.FAULTS, faults_idem_etag.FAULTS)
CHECK_VARIANTS = _joined(faults_cancel_page.CORRECT_VARIANTS, faults_idem_etag.CORRECT_VARIANTS)


def fault(name: str) -> Fault:
    """The fault of that name."""
    for item in FAULTS:
        if item.name == name:
            return item
    raise KeyError(f"no fault {name!r} in tests/support/servers.py")


def isolation_matrix(faults: Sequence[Fault] = FAULTS) -> dict[str, Fault | None]:
    """Each requirement of the catalog, in catalog order, with the fault that proves it alone: of the faults
    whose `breaks` name it, the one that breaks fewest IDs (the most specific bug), the first in `faults`
    on a tie; None when no fault breaks it. A fault that needs a `--select` of its own (its cli_args) is
    no proof of a run selecting the requirement alone. Derived, so a new requirement or fault needs no
    list kept."""
    matrix: dict[str, Fault | None] = {}
    for rid in catalog():
        breaking = [item for item in faults if rid in item.breaks and "--select" not in item.cli_args]
        matrix[rid] = min(breaking, key=lambda item: len(item.breaks)) if breaking else None
    return matrix


def variant(name: str) -> Variant:
    """The correct variant of that name."""
    for item in VARIANTS:
        if item.name == name:
            return item
    raise KeyError(f"no variant {name!r} in tests/support/servers.py")


def build(name: str) -> ASGIApp:
    """The app of any fault or variant above, by name, for the tests' tokens."""
    factory = CHECK_FAULTS.get(name) or CHECK_VARIANTS.get(name)
    if factory is not None:
        return factory()
    if any(item.name == name for item in VARIANTS):
        return variant(name).build(TOKENS)
    return fault(name).build(TOKENS)


@contextlib.contextmanager
def serve(server: str | ASGIApp) -> Iterator[str]:
    """Serve a fault or variant (by name, or an app `build` made, to look inside it) on a loopback port;
    yields its base URL."""
    with serve_in_thread(build(server) if isinstance(server, str) else server) as url:
        yield url
