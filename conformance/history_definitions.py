"""The history checker per run's definition: one ETag and one workflow on every answer (CONC-012)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
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
    owners = _EtagOwners(history, say)
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
                        f"carried {op.etag}{owners.explain(run_id, (first, op))}; expected one ETag on every answer "
                        "for a run's definition",
                        (first.index, op.index),
                        run_id,
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
                        run_id,
                    )
                )
    return findings


class _EtagOwners:
    """Whose W/"<definitionHash>" an ETag is, from the Runs the history showed: a wrong ETag that is another
    run's, fetched at the same time, tells a reader the answers were mixed up between requests."""

    def __init__(self, history: History, say: Say) -> None:
        self.history = history
        self.say = say
        self._hashes: dict[str, tuple[str, int]] | None = None  # runId -> (definitionHash, op that showed it)
        self._fetches: list[Operation] = []  # answered getRunDefinition, by invocation
        self._longest = 0.0

    def _load(self) -> dict[str, tuple[str, int]]:
        if self._hashes is None:  # built on the first finding only: a correct server never pays for it
            self._hashes = {}
            for op in self.history.operations:
                if op.status != 200 or not isinstance(op.body, dict):
                    continue
                if op.kind == "getRun":
                    items: list[Any] = [op.body]
                elif op.kind == "listRuns" and isinstance(op.body.get("items"), list):
                    items = op.body["items"]
                else:
                    continue
                for item in items:
                    run_id = item.get("runId") if isinstance(item, dict) else None
                    digest = item.get("definitionHash") if isinstance(item, dict) else None
                    if isinstance(run_id, str) and isinstance(digest, str):
                        self._hashes.setdefault(run_id, (digest, op.index))
            self._fetches = sorted(
                (op for op in self.history.operations if op.kind == "getRunDefinition" and op.completed is not None),
                key=lambda op: op.invoked,
            )
            self._longest = max(((op.completed or op.invoked) - op.invoked for op in self._fetches), default=0.0)
        return self._hashes

    def explain(self, run_id: str, ops: Sequence[Operation]) -> str:
        hashes = self._load()
        own = hashes.get(run_id)
        if own is None:
            return ""
        said: list[str] = []
        for op in ops:
            tag = _opaque_tag(op.etag or "")
            if tag == own[0]:
                said.append(f"op #{op.index}'s is the run's own definitionHash, as op #{own[1]} showed")
                continue
            others = {rid for rid, (digest, _) in hashes.items() if digest == tag and rid != run_id}
            if not others:
                continue
            during = self._fetching(others, op)
            whose = (
                f"run {during.run_id}'s, whose definition {self.say.op(during.index)} was fetching at the same time"
                if during is not None
                else f"run {min(others)}'s"
            )
            said.append(f"op #{op.index}'s is not this run's definitionHash but {whose}")
        return f" ({'; '.join(said)})" if said else ""

    def _fetching(self, runs: set[str], op: Operation) -> Operation | None:
        """A getRunDefinition of one of `runs` that overlapped `op`."""
        assert op.completed is not None
        start = bisect.bisect_left(self._fetches, op.invoked - self._longest, key=lambda x: x.invoked)
        stop = bisect.bisect_right(self._fetches, op.completed, key=lambda x: x.invoked)
        for other in self._fetches[start:stop]:
            if other.run_id in runs and other.completed is not None and other.completed >= op.invoked:
                return other
        return None


def _opaque_tag(etag: str) -> str:
    """The entity tag without W/ and quotes: what W/"<definitionHash>" puts inside."""
    tag = etag.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    return tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag
