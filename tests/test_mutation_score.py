"""scripts/mutation_score.py writes what a run caught and nothing that changes from one run to the next.

Its outputs (docs/mutation-score.md, and README.md's per-area counts with --write-readme) are committed,
so a date, a Python version or a timing in them would turn every rerun into a diff.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support.harness import SuiteRun
from support.servers import SINGLE_CLIENT_FAULTS, fault

ROOT = Path(__file__).resolve().parent.parent
# A timing ("1.4 s", "152 s in all") or a date, anywhere in a written file.
NOISE = re.compile(r"\b\d+(\.\d+)? s\b|\b20\d\d-\d\d-\d\d\b|CPython")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_score", ROOT / "scripts" / "mutation_score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_score"] = module
    spec.loader.exec_module(module)
    return module


def _run(*failed: str, wall_s: float) -> SuiteRun:
    report = {"requirements": [{"id": rid, "status": "failed"} for rid in failed]}
    return SuiteRun(1 if failed else 0, report, "", "", wall_s, wall_s / 2)


def test_the_written_table_is_the_same_for_runs_that_differ_only_in_time() -> None:
    script = _script()
    item = fault("etag-strong")
    docs = [
        script.render_doc([script.fault_row(item, _run("ETAG-004", wall_s=wall))], 1, False, False)
        for wall in (0.9, 7.3)
    ]
    assert docs[0] == docs[1]
    assert not NOISE.search(docs[0]), NOISE.search(docs[0])
    assert "| etag-strong | etag | ETAG-004 | yes | **ETAG-004** |" in docs[0]
    timed = script.render_doc([script.fault_row(item, _run("ETAG-004", wall_s=0.9), True)], 1, False, True)
    assert "| 0.5 s | 0.9 s |" in timed  # asked for, the timings are there


def test_a_missed_fault_is_written_as_missed() -> None:
    script = _script()
    row = script.fault_row(fault("etag-strong"), _run(wall_s=1.0))
    assert "**NO** (not failed: ETAG-004)" in row


def test_write_readme_rewrites_only_the_counts_between_the_markers(tmp_path: Path) -> None:
    script = _script()
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{script.START}\n| stale |\n{script.END}\nafter\n", encoding="utf-8")
    table = script.area_table([(item, item.name != "etag-strong") for item in SINGLE_CLIENT_FAULTS])
    script.write_readme(table, readme)
    once = readme.read_text(encoding="utf-8")
    script.write_readme(table, readme)
    assert readme.read_text(encoding="utf-8") == once
    assert once.startswith("before\n") and once.endswith("\nafter\n") and "stale" not in once
    n = len(SINGLE_CLIENT_FAULTS)
    assert f"| **all** | **{n}** | **{n - 1}** |" in once
    assert not NOISE.search(once)


def test_write_readme_refuses_a_partial_run() -> None:
    # A run of some faults does not speak for the catalog: refused before any run starts.
    with pytest.raises(SystemExit) as info:
        _script().main(["--only", "etag-strong", "--write-readme"])
    assert info.value.code == 2
