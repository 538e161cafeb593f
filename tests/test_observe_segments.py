"""Observe with a history limit (conformance/observe.py `Observer(history_limit=N)`): what the live proxy
holds stays bounded however long it runs, what earlier segments found stays in the report, and a segment
boundary makes no finding a whole recording would not (a 409's cause may lie in the segment before).

Exchanges are built here, as a recording's reader would hand them over, so that each test says exactly
what the traffic held.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conformance.observe import EVIDENCE_KEPT, Observer, report_of
from conformance.observe_live import LiveObserver
from conformance.observe_traffic import Recorded
from conformance.results import Status

BASE = "http://api.test/api/v1/runs"
AUTH = {"Authorization": "Bearer segment-token"}
HASH = "sha256:" + "0" * 64
WORKFLOW = {"name": "etl", "steps": [{"id": "a", "action": "noop"}]}


class _Traffic:
    """Exchanges one after another, 10 ms apart and 1 ms long: each answered before the next is sent."""

    def __init__(self) -> None:
        self.count = 0

    def exchange(
        self,
        method: str,
        url: str,
        status: int,
        body: Any,
        *,
        request: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        at: float | None = None,
        lasting: float = 0.001,
    ) -> Recorded:
        """`at`: seconds after the traffic's start that the request was sent (default: 10 ms after the last)."""
        self.count += 1
        return Recorded(
            source="synthetic",
            where=f"line {self.count}",
            method=method,
            url=url,
            request_headers={**AUTH, **(headers or {})},
            request_body=None if request is None else json.dumps(request),
            status=status,
            response_headers={"Content-Type": content_type},
            response_body=json.dumps(body),
            started=1_700_000_000.0 + (self.count * 0.01 if at is None else at),
            duration=lasting,
            precision=0.001,
            credential=AUTH["Authorization"],
        )

    def start(self, key: str, run_id: str, body: dict[str, Any] | None = None, **when: float) -> Recorded:
        request = body or {"clientId": "c1", "workflow": WORKFLOW}
        return self.exchange(
            "POST",
            BASE,
            202,
            {"runId": run_id, "status": "queued"},
            request=request,
            headers={"Idempotency-Key": key},
            **when,
        )

    def conflict(self, key: str, body: dict[str, Any], kind: str = "reused", **when: float) -> Recorded:
        """A 409 of type idempotency-key-reused (or -in-flight) to a startRun with `key` and `body`."""
        problem = {
            "type": f"https://scheduler.example.com/problems/idempotency-key-{kind}",
            "title": "Idempotency-Key conflict",
            "status": 409,
            "detail": kind,
        }
        return self.exchange(
            "POST",
            BASE,
            409,
            problem,
            request=body,
            headers={"Idempotency-Key": key},
            content_type="application/problem+json",
            **when,
        )

    def get(
        self, run_id: str, finished: str | None = "2026-01-01T00:00:02Z", status: str = "succeeded", **when: float
    ) -> Recorded:
        run = {
            "runId": run_id,
            "clientId": "c1",
            "status": status,
            "definitionHash": HASH,
            "inputs": {},
            "createdAt": "2026-01-01T00:00:00Z",
            "startedAt": "2026-01-01T00:00:01Z",
            "finishedAt": finished,
            "cancelRequestedAt": None,
        }
        return self.exchange("GET", f"{BASE}/{run_id}", 200, run, **when)


def _held(observer: Observer) -> int:
    return sum(len(b.operations) for b in observer.builders.values())


def test_the_history_held_is_bounded_and_the_first_segments_findings_stay_in_the_report() -> None:
    traffic = _Traffic()
    observer = Observer(["synthetic"], history_limit=100, complete=True)
    # A key that got two runs (CONC-001, IDEM-001): only a history shows it, and it is in the first segment.
    observer.add(traffic.start("k-1", "run-1"))
    observer.add(traffic.start("k-1", "run-2"))
    for n in range(1, 451):
        observer.add(traffic.get(f"run-{n % 7}"))
        assert _held(observer) < 100  # never more than the limit, at any moment
    assert observer.segments == 5
    seen = observer.observation()
    assert {"CONC-001", "IDEM-001"} <= set(seen.findings), sorted(seen.findings)
    assert "run-1" in seen.findings["CONC-001"][0].message and "run-2" in seen.findings["CONC-001"][0].message
    assert seen.operations_judged == 452 and seen.exchanges == 452
    # Instances of earlier segments are counted still: each segment's reads of a run after another (CONC-005).
    assert seen.evaluations["CONC-005"] > 400
    report = report_of(seen, "observe", "2026-01-01T00:00:00+00:00", 0.0)
    rows = {r.id: r for r in report.requirements}
    assert rows["CONC-001"].status is Status.FAILED and report.exit_code == 1


def test_a_409_whose_cause_is_in_the_segment_before_is_no_finding() -> None:
    # The key's first body got its 202 in the first segment; the other body's 409 key-reused comes in the
    # second. A recording that started between them cannot show the cause, and a correct server did this.
    traffic = _Traffic()
    observer = Observer(["synthetic"], history_limit=3, complete=True)
    observer.add(traffic.start("k-1", "run-1"))
    observer.add(traffic.get("run-1"))
    observer.add(traffic.get("run-1"))
    assert observer.segments == 2
    observer.add(traffic.conflict("k-1", {"clientId": "c1", "workflow": {**WORKFLOW, "name": "other"}}))
    seen = observer.observation()
    assert "CONC-003" not in seen.findings, seen.findings["CONC-003"][0].message
    # Nor is it an instance: the segment could not have failed it.
    assert seen.evaluations["CONC-003"] == 1  # the first segment's 202, which could have been a causeless 409


def test_the_same_409_within_one_segment_is_still_judged() -> None:
    # The exception is the boundary only: a causeless 409 inside the first segment is CONC-003's finding.
    traffic = _Traffic()
    observer = Observer(["synthetic"], history_limit=100, complete=True)
    observer.add(traffic.start("k-1", "run-1"))
    observer.add(traffic.conflict("k-1", {"clientId": "c1", "workflow": WORKFLOW}))
    assert "CONC-003" in observer.observation().findings


def test_an_in_flight_409_is_judged_in_a_later_segment_only_once_the_earlier_start_runs_had_ended() -> None:
    body = {"clientId": "c1", "workflow": WORKFLOW}

    def second_segment_409(sent_at: float) -> Observer:
        traffic = _Traffic()
        observer = Observer(["synthetic"], history_limit=2, complete=True)
        observer.add(traffic.start("k-1", "run-1", at=0.0, lasting=0.03))  # in flight from 0 to 30 ms
        observer.add(traffic.get("run-1", at=0.031))
        assert observer.segments == 2
        observer.add(traffic.conflict("k-1", body, kind="in-flight", at=sent_at, lasting=0.015))
        return observer

    # Sent at 20 ms, while the first segment's startRun was in flight: that was its cause, and a segment
    # that begins after it cannot show it.
    overlapping = second_segment_409(0.02).observation()
    assert "CONC-004" not in overlapping.findings, overlapping.findings["CONC-004"][0].message
    assert overlapping.evaluations["CONC-004"] == 1  # the first segment's startRun only
    # Sent at 50 ms, when nothing with the key was in flight anywhere: the segment proves it causeless.
    causeless = second_segment_409(0.05).observation()
    assert "CONC-004" in causeless.findings and causeless.evaluations["CONC-004"] == 2


def test_evidence_of_an_answer_broken_every_time_is_bounded() -> None:
    # Each answer names its own run: without a bound, one piece of evidence per exchange, forever.
    traffic = _Traffic()
    observer = Observer(["synthetic"], history_limit=100, complete=True)
    for n in range(EVIDENCE_KEPT * 4):
        observer.add(traffic.get(f"run-{n}", finished=None))  # terminal without finishedAt: LIFE-003
    seen = observer.observation()
    assert len(seen.findings["LIFE-003"]) == EVIDENCE_KEPT and seen.evaluations["LIFE-003"] == EVIDENCE_KEPT * 4
    assert len(observer.reported) <= EVIDENCE_KEPT * 2
    # Without a limit (offline observe of a file), every distinct finding is kept, as before.
    unbounded = Observer(["synthetic"], complete=True)
    for n in range(EVIDENCE_KEPT * 2):
        unbounded.add(traffic.get(f"run-{n}", finished=None))
    assert len(unbounded.observation().findings["LIFE-003"]) == EVIDENCE_KEPT * 2


def test_what_the_live_observer_has_told_stays_as_bounded_as_its_report(tmp_path: Path) -> None:
    # Segments of three: a key that gets two runs, a report, then a read that ends the segment. Once
    # EVIDENCE_KEPT are kept, each segment's findings are told at its report and then dropped at its end
    # (the evidence is full): what is remembered as told must be only what the report still holds.
    traffic = _Traffic()
    with LiveObserver("http://api.test", tmp_path, history_limit=3, complete=True) as live:

        def put(*items: Recorded) -> None:
            for item in items:
                live.put(item)
            deadline = time.monotonic() + 10
            while live.observer.seen.exchanges < traffic.count:
                assert time.monotonic() < deadline, "the observer thread took no exchange"
                time.sleep(0.001)

        for n in range(EVIDENCE_KEPT + 5):
            put(traffic.start(f"k-{n}", f"run-{n}-a"), traffic.start(f"k-{n}", f"run-{n}-b"))
            if n >= EVIDENCE_KEPT:
                live.write_report(final=False)
            put(traffic.get(f"run-{n}-a"))
        report = live.close()
    assert report.exit_code == 1 and live.observer.segments == EVIDENCE_KEPT + 6
    told = live._told  # what the observer keeps to tell nothing twice: private, and the memory at issue here
    assert told == {(row.id, e.message) for row in report.requirements for e in row.evidence}
    assert len(told) == 3 * EVIDENCE_KEPT and {rid for rid, _ in told} == {"CONC-001", "IDEM-001", "IDEM-002"}
