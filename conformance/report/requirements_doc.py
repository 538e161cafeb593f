"""docs/requirements.md: the catalog as a page, one table per area, each rule with what one instance of it is.

Generated, never edited: `RUNS_UPDATE_SNAPSHOTS=1 pytest tests/test_catalog.py` (or `python -m
conformance.report.requirements_doc`) rewrites it, and tests/test_catalog.py fails while it differs
from conformance/requirements.yaml.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from conformance.catalog import Requirement, catalog

__all__ = ["DOC", "render"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "requirements.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(requirements: Iterable[Requirement] | None = None) -> str:
    """The page's Markdown for these requirements (the catalog's, by default), in catalog order."""
    reqs = list(catalog().values() if requirements is None else requirements)
    lines = [
        "# Requirements",
        "",
        "Generated from `conformance/requirements.yaml` by `conformance/report/requirements_doc.py`"
        " (`RUNS_UPDATE_SNAPSHOTS=1 pytest tests/test_catalog.py`); do not edit.",
        "",
        f"{len(reqs)} requirements. A requirement passes only on instances: each assertion that judged one"
        " instance of it is an evaluation (`evaluations` in conformance.json), and a rule with none is not"
        " passed. **One instance** says what one is: the premise an answer must meet to count, and what it"
        " is judged on.",
    ]
    for area in dict.fromkeys(req.area for req in reqs):
        lines += ["", f"## {area}", "", "| ID | level | statement | one instance |", "|---|---|---|---|"]
        lines += [
            f"| {req.id} | {req.level.value} | {_cell(req.statement)} | {_cell(req.instance)} |"
            for req in reqs
            if req.area == area
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
