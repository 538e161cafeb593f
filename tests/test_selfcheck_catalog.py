"""The self-check's catalog of faults, without serving any: every requirement has a fault that breaks it,
and the README's mutation table counts the faults there are.

tests/test_selfcheck.py proves each fault is caught on the IDs it names; these fast tests make
sure that proof reaches every requirement, and that the table shown to users is the one
scripts/mutation_score.py wrote for the faults of today.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from support.servers import CONCURRENCY_FAULTS, FAULTS, SINGLE_CLIENT_FAULTS, VARIANTS

from conformance.catalog import catalog

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_requirement_is_broken_by_a_fault() -> None:
    # A requirement no fault breaks is one the self-check never shows the suite can catch.
    proven = {rid for item in FAULTS for rid in item.breaks}
    unproven = sorted(set(catalog()) - proven)
    assert not unproven, (
        f"no fault of tests/support/servers.py names {', '.join(unproven)} in its `breaks`: add a realistic "
        "fault for each (and see it caught: pytest tests/test_selfcheck.py -k <fault-name>)"
    )


def test_the_readme_table_counts_the_faults_of_today() -> None:
    # Areas and fault counts as the script writes them for today's single-client faults (the ones it
    # scores); the caught column is the last run's (tests/test_selfcheck.py proves each fault caught),
    # so it is not compared.
    script = _script("mutation_score")
    expected = script.area_table([(item, True) for item in SINGLE_CLIENT_FAULTS])
    shown = script.readme_table((ROOT / "README.md").read_text(encoding="utf-8"))

    def counts(table: str) -> list[list[str]]:
        return [[cell.strip() for cell in line.split("|")[1:3]] for line in table.splitlines()]

    assert counts(shown) == counts(expected), (
        f"README.md's mutation table (area, faults) is\n{shown}\nbut tests/support/faults.py has\n{expected}\n"
        "run python scripts/mutation_score.py --write-readme, which rewrites it"
    )


def test_the_scripts_build_every_server_they_name() -> None:
    # The flake check and the concurrency score are run by hand, far from CI: a server they cannot
    # build would only show after the first long run (it happened once: a name that was never imported).
    for make in _script("flake_check").SERVERS.values():
        assert callable(make())
    servers = _script("concurrency_score")._servers()
    assert {"reference", *(item.name for item in CONCURRENCY_FAULTS), *(item.name for item in VARIANTS)} <= set(servers)
    for _, make, _ in servers.values():
        assert callable(make())
