"""Isolation proof: every requirement is caught by a run that selects it alone.

The self-check (tests/test_selfcheck.py) runs each fault with every check of its areas, so a
requirement could pass it only because a neighbouring check happened to fail. Here each requirement R
of the catalog is paired with one fault that breaks it (`support.servers.isolation_matrix`: derived from
the catalog and the faults' `breaks`, no list kept by hand), and `runs-conformance run --select R
--profile quick --strict --seed 1` (plus the fault's own arguments) must report R failed.

The 77 runs take about 110 s on a shared two-core machine (2026-12-06), one after another: the cancel
faults (10 s each, the runs that never end) and the concurrency ones (4 s, the workload) are most of it.
"""

from __future__ import annotations

import dataclasses

import pytest
from support.harness import quick_args, run_suite
from support.servers import FAULTS, Fault, fault, isolation_matrix
from support.tokens import TOKENS

from conformance.catalog import catalog

MATRIX = isolation_matrix()
PAIRS = [(rid, item) for rid, item in MATRIX.items() if item is not None]


def not_caught_alone(rid: str, item: Fault) -> str:
    """Why `--select rid` alone does not catch the fault; empty when it does."""
    run = run_suite(item.build(TOKENS), *quick_args((rid,), *item.cli_args))
    if run.report is None:
        return f"({rid}, {item.name}): no conformance.json was written\n{run.explain()}"
    if run.ids_with("error"):
        return f"({rid}, {item.name}): the suite broke on {run.ids_with('error')}\n{run.explain()}"
    if run.status(rid) != "failed" or run.exit_code != 1:
        return (
            f"({rid}, {item.name}): --select {rid} alone reported {run.status(rid)} (exit {run.exit_code}): "
            f"the fault is caught, if at all, only beside other checks\n{run.explain()}"
        )
    return ""


def test_every_requirement_has_a_fault() -> None:
    # A requirement no fault breaks has no proof that a run selecting it could ever fail.
    alone = [rid for rid, item in MATRIX.items() if item is None]
    assert not alone, (
        f"no fault names {', '.join(alone)} in its `breaks`: add a realistic fault for each "
        "(tests/support/faults*.py) and see it caught by runs-conformance run --select <ID> --profile quick"
    )


def test_the_matrix_names_a_requirement_without_a_fault_and_picks_the_narrowest() -> None:
    # The matrix is derived: drop every fault of ETAG-002 and it has none; of two faults the one breaking
    # fewer IDs is picked, so a broad fault cannot stand in for a check that only a narrow one proves.
    without = isolation_matrix([item for item in FAULTS if "ETAG-002" not in item.breaks])
    assert without["ETAG-002"] is None and set(without) == set(catalog())
    broad, narrow = fault("etag-unstable"), fault("etag-strong")  # ETAG-004 and ETAG-005; ETAG-004 only
    assert isolation_matrix([broad, narrow])["ETAG-004"] is narrow
    assert isolation_matrix([broad, narrow])["ETAG-005"] is broad


@pytest.mark.slow
def test_a_fault_that_does_not_break_the_requirement_is_not_caught_alone() -> None:
    # What the matrix says of a fault whose `breaks` claims too much: errors-no-405 answers undeclared
    # methods wrongly and leaves definitionHash alone, so a run selecting ETAG-002 alone passes it.
    overclaimed = dataclasses.replace(fault("errors-no-405"), breaks=("ERR-011", "ETAG-002"))
    assert "alone reported passed (exit 0)" in not_caught_alone("ETAG-002", overclaimed)


@pytest.mark.slow
@pytest.mark.parametrize(("rid", "item"), PAIRS, ids=[f"{rid}-{item.name}" for rid, item in PAIRS])
def test_the_requirement_is_caught_alone(rid: str, item: Fault) -> None:
    why = not_caught_alone(rid, item)
    assert not why, why
