"""Every documented bound is tried at the bound: each fault of tests/support/faults_bounds.py, off by a
little at one bound, is caught by a quick run that selects the requirement alone.

The isolation matrix (tests/test_isolation_matrix.py) runs one fault per requirement, the first
narrowest; these faults are narrow too but come later, so they are run alone here: a bound checked
only at a larger profile, or only beside another check, would pass them.
"""

from __future__ import annotations

import pytest
from support.harness import quick_args, run_suite
from support.servers import FAULTS, Fault
from support.tokens import TOKENS

# Taken from the joined catalog (importing faults_bounds first would import it half-built).
BOUND_FAULTS = [item for item in FAULTS if item.source == "tests/support/faults_bounds.py"]
PAIRS = [(rid, item) for item in BOUND_FAULTS for rid in item.breaks]


@pytest.mark.parametrize(("rid", "item"), PAIRS, ids=[f"{rid}-{item.name}" for rid, item in PAIRS])
def test_the_bound_fault_is_caught_alone_at_quick(rid: str, item: Fault) -> None:
    run = run_suite(item.build(TOKENS), *quick_args((rid,), *item.cli_args))
    assert run.report is not None, run.explain()
    assert not run.ids_with("error"), run.explain()
    assert run.status(rid) == "failed" and run.exit_code == 1, run.explain()


def test_a_refused_longest_key_leaves_the_whole_key_comparison_unjudged() -> None:
    # A server that refuses 255-character keys (IDEM-008's failure) gives IDEM-011's long-key leg no
    # instance: that leg is skipped, never passed on the keys of ordinary length alone.
    item = next(f for f in BOUND_FAULTS if f.name == "idem-key-max-254")
    run = run_suite(item.build(TOKENS), *quick_args(("IDEM-011",)))
    assert run.status("IDEM-011") == "skipped" and run.exit_code == 1, run.explain()
