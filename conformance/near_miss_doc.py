"""docs/near-misses.md: every comparison the spec implies, the requirement that judges it, and its probes.

Generated, never edited: `RUNS_UPDATE_SNAPSHOTS=1 pytest tests/test_near_misses.py` (or `python -m
conformance.near_miss_doc`) rewrites it, and tests/test_near_misses.py fails while it differs from
the code, or while a comparison has no probes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.comparisons import Comparison, implied_comparisons, probe_values, probes_of

__all__ = ["DOC", "render"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "near-misses.md"


def _cell(text: str) -> str:
    shown = text.replace("\t", "\\t").replace("|", "\\|")
    return f"`{shown}`" if shown and "`" not in shown else shown


def _section(comparison: Comparison) -> list[str]:
    lines = [
        "",
        f"## {comparison.key}",
        "",
        f"{comparison.kind}, compared {comparison.rule}; sent to {', '.join(comparison.operations)}.",
    ]
    probes = probes_of().get(comparison.key, ())
    if not probes:
        return [*lines, "", "**No probes**: no check sends near misses of it."]
    for probe in probes:
        lines += ["", f"{probe.requirement}, sent by `{probe.sender}`, expected answer: {probe.expected}.", ""]
        values = probe_values(probe, comparison)
        if values:
            # The scheme's cases are no near miss: the same credential, to be accepted.
            heading = "same credential as" if probe.generate == "scheme_cases" else "near miss of"
            lines += [f"| {heading} {_cell(comparison.example)} | sent |", "|---|---|"]
            lines += [f"| {label} | {_cell(value)} |" for label, value in values.items()]
        if probe.by_hand:
            lines += [*([""] if values else []), f"Listed by hand in the check: {probe.by_hand}."]
    return lines


def render() -> str:
    """The page's Markdown: one section per comparison, in the spec's terms."""
    comparisons = implied_comparisons()
    lines = [
        "# Near misses",
        "",
        "Generated from `openapi/runs.yaml` and `conformance/comparisons.py` by `conformance/near_miss_doc.py`"
        " (`RUNS_UPDATE_SNAPSHOTS=1 pytest tests/test_near_misses.py`); do not edit.",
        "",
        f"{len(comparisons)} comparisons the contract implies: the bearer credential of every operation, every"
        " string parameter, and every body field a query parameter filters on. A server that compares loosely"
        " (case folding, a prefix, a trimmed or re-split value) agrees with an exact one on the values sent as"
        " they are; only a value one edit away tells them apart. Each probe below is shown on the spec's example"
        " value; the checks send them on the values of their own runs and credentials.",
        "",
        "Not near misses, because the standards make them equal: the scheme name `Bearer` in any case"
        " (RFC 9110 §11.1: sent with the valid token, AUTH-006 requires it accepted; the token's near misses"
        " keep the scheme as `Bearer`), more than one space after it (§11.4, `1*SP`), whitespace around a"
        " field value (§5.5, HTTP strips it); `W/` on a tag compared weakly, whitespace and empty elements in"
        " an If-None-Match list (§8.8.3.2, §5.6.1). Not comparisons: integer parameters (their near misses"
        " are their bounds) and body fields no request names again. Invalid near misses (PAGE-010's) are kept"
        " only when the parameter's own schema refuses them.",
    ]
    for comparison in comparisons:
        lines += _section(comparison)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
