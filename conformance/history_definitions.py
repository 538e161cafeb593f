"""The history checker per run's definition: one ETag and one workflow on every answer (CONC-012)."""

from __future__ import annotations

from typing import Any

from conformance.history import History, Operation
from conformance.history_findings import Finding, Say, finding
from conformance.meaning import json_equal

__all__ = ["definition_findings"]


def definition_findings(history: History, say: Say) -> list[Finding]:
    etags: dict[str, Operation] = {}
    bodies: dict[str, tuple[Operation, Any]] = {}
    done: set[str] = set()
    findings: list[Finding] = []
    for op in history.operations:
        if op.kind != "getRunDefinition" or op.run_id is None or op.status not in (200, 304) or op.run_id in done:
            continue
        run_id = op.run_id
        if op.etag is not None:
            first = etags.setdefault(run_id, op)
            if first.etag is not None and first.etag.strip() != op.etag.strip():
                done.add(run_id)
                findings.append(
                    finding(
                        "CONC-012",
                        f"run {run_id}: {say.op(first.index)} carried ETag {first.etag} and {say.op(op.index)} "
                        f"carried {op.etag}; expected one ETag on every answer for a run's definition",
                        (first.index, op.index),
                    )
                )
                continue
        if op.status == 200 and op.body is not None:
            if run_id not in bodies:
                bodies[run_id] = (op, op.body)
            elif not json_equal(bodies[run_id][1], op.body):
                done.add(run_id)
                findings.append(
                    finding(
                        "CONC-012",
                        f"run {run_id}: {say.op(bodies[run_id][0].index)} and {say.op(op.index)} returned workflows "
                        "that are not equal as JSON; expected the workflow as submitted, on every request",
                        (bodies[run_id][0].index, op.index),
                    )
                )
    return findings
