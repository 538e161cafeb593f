"""Conditional GETs judged from traffic: ETAG-004, ETAG-005 and ETAG-006 on a rebuilt history.

A run probes these on purpose; traffic holds them whenever a client revalidates a cached definition.
What one instance is, here:

- ETAG-004: one 200 of getRunDefinition of a run whose definitionHash some Run in the traffic
  showed: its ETag must be exactly W/"<definitionHash>".
- ETAG-005: one getRunDefinition answered 200 or 304 whose If-None-Match matches, by weak
  comparison (a list, `*`, the strong form), the run's ETag: it must be a 304 carrying that ETag.
- ETAG-006: one getRunDefinition answered 200 or 304 whose If-None-Match is a well-formed list that
  does not match the run's ETag: it must be a 200.

The run's ETag is the one every answer of its definition in the traffic carried; a run whose
answers carried more than one is CONC-012's finding, and its conditional GETs are not judged here
(which tag they should match is then unknown). A malformed If-None-Match is no instance: the
contract does not say what it gets. A 401 or 404 is ETAG-007's, never judged here. Order plays no
part: a definition's ETag never changes, so no rule here depends on when a request was sent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from conformance.history import History, Operation
from conformance.history_findings import Finding, Say

__all__ = ["RULES", "conditional_findings"]

RULES = {
    "ETAG-004": 'getRunDefinition\'s 200 carries ETag W/"<definitionHash>"',
    "ETAG-005": "a matching If-None-Match gets 304 with the ETag",
    "ETAG-006": "an If-None-Match that does not match gets 200",
}
_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')  # RFC 9110 §8.8.3 entity-tag
_OWS = " \t"


def if_none_match_tags(value: str) -> list[str] | None:
    """The opaque-tags of an If-None-Match list (§13.1.2, §5.6.1: empty elements allowed), ["*"] for `*`,
    or None when it is not well-formed."""
    if value.strip(_OWS) == "*":
        return ["*"]
    tags: list[str] = []
    at = 0
    while at < len(value):
        if value[at] in _OWS + ",":
            at += 1
            continue
        found = _TAG.match(value, at)
        if found is None:
            return None
        tags.append(found.group(2))
        at = found.end()
        rest = value[at:].lstrip(_OWS)
        if rest and not rest.startswith(","):
            return None
    return tags or None


def _opaque(etag: str) -> str | None:
    found = _TAG.fullmatch(etag.strip(_OWS))
    return found.group(2) if found else None


def conditional_findings(history: History) -> tuple[Counter[str], list[Finding]]:
    """(instances per requirement, findings): at most one finding per requirement and run."""
    say = Say(history)
    hashes: dict[str, str] = {}
    tags: dict[str, set[str]] = {}
    definitions: list[Operation] = []
    for op in history.operations:
        if op.kind == "getRunDefinition" and op.run_id is not None and op.status in (200, 304):
            definitions.append(op)
            if op.etag is not None:
                tags.setdefault(op.run_id, set()).add(op.etag.strip(_OWS))
        for run in _runs_shown(op):
            if isinstance(run.get("runId"), str) and isinstance(run.get("definitionHash"), str):
                hashes.setdefault(run["runId"], run["definitionHash"])
    counts: Counter[str] = Counter()
    findings: list[Finding] = []
    done: set[tuple[str, str]] = set()

    def judge(rule: str, op: Operation, holds: bool, message: str) -> None:
        assert op.run_id is not None
        counts[rule] += 1
        if not holds and (rule, op.run_id) not in done:
            done.add((rule, op.run_id))
            findings.append(Finding(rule, f"{message} ({rule}: {RULES[rule]})", (op.index,), op.run_id))

    for op in definitions:
        assert op.run_id is not None
        expected = f'W/"{hashes[op.run_id]}"' if op.run_id in hashes else None
        if op.status == 200 and expected is not None:
            judge(
                "ETAG-004",
                op,
                op.etag is not None and op.etag.strip(_OWS) == expected,
                f"{say.op(op.index)} carried ETag {op.etag!r}; a Run in the traffic showed definitionHash "
                f"{hashes[op.run_id]!r}, so expected {expected}",
            )
        known = tags.get(op.run_id, set())
        if op.if_none_match is None or len(known) != 1:
            continue
        etag = next(iter(known))
        sent = if_none_match_tags(op.if_none_match)
        current = _opaque(etag)
        if sent is None or current is None:
            continue
        if "*" in sent or current in sent:
            judge(
                "ETAG-005",
                op,
                op.status == 304 and op.etag is not None and op.etag.strip(_OWS) == etag,
                f"{say.op(op.index)} sent If-None-Match: {op.if_none_match}, which matches the run's ETag {etag}; "
                f"expected 304 with ETag {etag}, got {op.status} with ETag {op.etag!r}",
            )
        else:
            judge(
                "ETAG-006",
                op,
                op.status == 200,
                f"{say.op(op.index)} sent If-None-Match: {op.if_none_match}, which does not match the run's ETag "
                f"{etag}; expected 200 with the definition, got {op.status}",
            )
    return counts, sorted(findings, key=lambda f: (f.requirement_id, f.operations))


def _runs_shown(op: Operation) -> Sequence[dict[str, Any]]:
    """The Runs an answer showed: a getRun's body, a listRuns page's items."""
    if op.status != 200 or not isinstance(op.body, dict):
        return []
    if op.kind == "getRun":
        return [op.body]
    if op.kind == "listRuns" and isinstance(op.body.get("items"), list):
        return [item for item in op.body["items"] if isinstance(item, dict)]
    return []
