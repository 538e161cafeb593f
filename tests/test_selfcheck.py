"""Prove the suite: it catches every fault of the catalog on the IDs the fault names, and passes every
correct variant with no failure and no warning.

Each case serves its server on a loopback port and runs `runs-conformance run` in this process
(`conformance.cli.main`), then reads DIR/conformance.json. Faults run with `--select` of the areas
of the IDs they break (every check of those areas, so a fault also shows it is caught where it
should be and not by luck of one check); scripts/mutation_score.py runs the whole quick suite
against each fault and shows what else fails. Hostile servers (hangs, garbage, resets, 500s, huge bodies, HTML) are
covered by tests/test_runner_hostile.py.

Every fault and variant comes from tests/support/servers.py, the concurrency ones
(tests/support/faults_concurrency.py, variants_concurrency.py) included. Here each runs once;
scripts/concurrency_score.py runs each concurrency fault 20 times at the default profile and shows how
reliably it is caught.
"""

from __future__ import annotations

from collections import Counter

import pytest
from support.harness import SuiteRun, quick_args, run_suite
from support.servers import FAULTS, SINGLE_CLIENT_FAULTS, VARIANTS, Fault, Variant
from support.tokens import TOKENS

from conformance.catalog import catalog

pytestmark = pytest.mark.slow


def test_the_catalog_is_well_formed() -> None:
    reqs = catalog()
    names = [f.name for f in FAULTS]
    assert len(names) == len(set(names)), [n for n, c in Counter(names).items() if c > 1]
    assert len(SINGLE_CLIENT_FAULTS) >= 25
    for item in FAULTS:
        assert item.breaks, item.name
        unknown = [rid for rid in item.breaks if rid not in reqs]
        assert not unknown, (item.name, unknown)
    # Every area of the catalog has a fault that breaks one of its requirements.
    covered = {reqs[rid].area for item in FAULTS for rid in item.breaks}
    assert covered == {r.area for r in reqs.values()}
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)


def _assert_clean_output(run: SuiteRun) -> None:
    # The suite's own output; the faulty server's log (uvicorn prints the 500s it sends) is not on these streams.
    assert "Traceback" not in run.stdout + run.stderr, run.explain()
    assert run.report is not None, f"no conformance.json was written\n{run.explain()}"


# The ids carry the IDs each fault breaks: `pytest -k CANCEL-006` runs every fault of a requirement.
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.name}--{'+'.join(f.breaks)}")
def test_the_suite_catches_the_fault(fault: Fault) -> None:
    run = run_suite(fault.build(TOKENS), *quick_args(fault.select, *fault.cli_args))
    _assert_clean_output(run)
    assert run.exit_code == 1, run.explain()
    missed = {rid: run.status(rid) for rid in fault.breaks if run.status(rid) != "failed"}
    assert not missed, f"{fault.name}: expected {list(fault.breaks)} to fail; not failed: {missed}\n{run.explain()}"
    assert not run.ids_with("error"), f"the suite broke on {run.ids_with('error')}\n{run.explain()}"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_the_suite_passes_the_correct_variant(variant: Variant) -> None:
    run = run_suite(variant.build(TOKENS), *quick_args())
    _assert_clean_output(run)
    bad = run.ids_with("failed", "warning", "error", "skipped")
    assert run.exit_code == 0 and not bad, f"{variant.name}: {bad}\n{run.explain()}"
    counts = run.report["counts"] if run.report else {}
    assert counts.get("passed") == len(catalog()), counts
