"""Unit tests of the reference server's parts: store, executor, cursors, ETags, bodies, timestamps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from reference_impl.actions import DEFAULT_ACTIONS
from reference_impl.bodies import parse_json_object
from reference_impl.cursors import CursorCodec, Filters
from reference_impl.etags import EtagPolicy, parse_if_none_match
from reference_impl.executor import Executor
from reference_impl.problems import ProblemError
from reference_impl.store import IdempotencyClaim, IdempotencyKeyReused, RunStore
from reference_impl.timestamps import MonotonicTimestamps, parse_timestamp
from reference_impl.validation import dependency_order, find_cycle

WORKFLOW = {"name": "w", "steps": [{"id": "a", "action": "noop"}]}


def new_run(store: RunStore, workflow: object = WORKFLOW, claim: IdempotencyClaim | None = None) -> str:
    return store.start_run("unit", workflow, {}, "sha256:" + "0" * 64, claim).run.run_id


def test_store_lifecycle_guards_never_move_backwards() -> None:
    store = RunStore()
    run_id = new_run(store)
    assert store.mark_running(run_id)
    assert not store.mark_running(run_id)
    assert store.finish(run_id, "succeeded", ("running", "cancelling"))
    assert not store.finish(run_id, "failed", ("running", "cancelling"))
    record = store.request_cancel(run_id)
    assert record is not None and record.status == "succeeded" and record.cancel_requested_at is None


def test_store_cancel_keeps_first_request_time() -> None:
    store = RunStore()
    run_id = new_run(store)
    store.mark_running(run_id)
    first = store.request_cancel(run_id)
    second = store.request_cancel(run_id)
    assert first is not None and second is not None
    assert first.status == second.status == "cancelling"
    assert first.cancel_requested_at == second.cancel_requested_at


def test_store_idempotency_claims() -> None:
    store = RunStore()
    claim = IdempotencyClaim("scope", "key", "fp1")
    first = store.start_run("unit", WORKFLOW, {}, "sha256:x", claim)
    again = store.start_run("unit", WORKFLOW, {}, "sha256:x", claim)
    assert first.created and not again.created and first.run.run_id == again.run.run_id
    with pytest.raises(IdempotencyKeyReused):
        store.start_run("unit", WORKFLOW, {}, "sha256:x", IdempotencyClaim("scope", "key", "fp2"))
    other_scope = store.start_run("unit", WORKFLOW, {}, "sha256:x", IdempotencyClaim("scope2", "key", "fp2"))
    assert other_scope.created
    assert store.count() == 2


def test_store_keyset_pages_and_has_more() -> None:
    store = RunStore()
    ids = [new_run(store) for _ in range(5)]
    page, more = store.list_runs(None, None, None, 2)
    assert [r.run_id for r in page] == ids[:-3:-1] and more
    page2, more2 = store.list_runs(None, None, page[-1].seq, 3)
    assert [r.run_id for r in page2] == ids[2::-1] and not more2


def test_created_at_never_decreases_when_the_clock_steps_back() -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    store = RunStore(timestamps=MonotonicTimestamps(lambda: now[0]))
    first = new_run(store)
    now[0] -= timedelta(hours=1)
    second = new_run(store)
    a, b = store.get(first), store.get(second)
    assert a is not None and b is not None and a.created_at <= b.created_at


def test_restart_floor_comes_from_the_file(tmp_path: object) -> None:
    path = f"{tmp_path}/floor.db"
    future = datetime(2099, 1, 1, tzinfo=UTC)
    store = RunStore(path, MonotonicTimestamps(lambda: future))
    new_run(store)
    store.close()
    reopened = RunStore(path, MonotonicTimestamps(lambda: datetime(2000, 1, 1, tzinfo=UTC)))
    record = reopened.get(new_run(reopened))
    assert record is not None and parse_timestamp(record.created_at) >= future


def test_cursor_codec_round_trip_binding_and_tampering() -> None:
    codec = CursorCodec(b"s" * 32)
    filters = Filters("queued", "c1")
    cursor = codec.encode(42, filters)
    assert codec.decode(cursor, filters) == 42
    assert all(c.isalnum() or c in "-_." for c in cursor)
    with pytest.raises(ProblemError):
        codec.decode(cursor, Filters(None, "c1"))
    with pytest.raises(ProblemError):
        CursorCodec(b"t" * 32).decode(cursor, filters)
    payload, mac = cursor.split(".")
    forged = CursorCodec(b"t" * 32).encode(1, filters).split(".")[0] + "." + mac
    with pytest.raises(ProblemError):
        codec.decode(forged, filters)
    assert payload


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("*", ["*"]),
        ('W/"a", "b"', ['W/"a"', '"b"']),
        (' , "a" ,, ', ['"a"']),
        ('"a" "b"', None),
        ("a", None),
        ('W/"a', None),
        ("", None),
        ('*, "a"', None),
    ],
)
def test_if_none_match_parsing(header: str, expected: list[str] | None) -> None:
    assert parse_if_none_match(header) == expected


def test_weak_comparison() -> None:
    policy = EtagPolicy()
    etag = policy.etag_for("sha256:ab")
    assert etag == 'W/"sha256:ab"'
    assert policy.none_match('"sha256:ab"', etag)
    assert policy.none_match('W/"x", W/"sha256:ab"', etag)
    assert not policy.none_match('"sha256:abc"', etag)
    assert not policy.none_match(None, etag)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":1e999}',
        b"[1]",
        b'"x"',
        b"",
        b"\xff",
        b"{",
        b"[" * 100000,
    ],
)
def test_strict_json_rejects(raw: bytes) -> None:
    with pytest.raises(ProblemError) as info:
        parse_json_object(raw)
    assert info.value.status == 400


def test_cycles_and_order() -> None:
    steps = [{"id": "c", "dependsOn": ["b"]}, {"id": "a"}, {"id": "b", "dependsOn": ["a"]}]
    assert [s["id"] for s in dependency_order(steps)] == ["a", "b", "c"]
    assert find_cycle(steps) == []
    assert find_cycle([{"id": "x", "dependsOn": ["x"]}]) == ["x", "x"]
    cycle = find_cycle(
        [{"id": "a", "dependsOn": ["b"]}, {"id": "b", "dependsOn": ["c"]}, {"id": "c", "dependsOn": ["a"]}]
    )
    assert cycle[0] == cycle[-1] and len(cycle) == 4


async def _until(predicate: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_executor_runs_in_order_fails_and_cancels_promptly() -> None:
    order: list[str] = []

    async def record(params: object) -> None:
        order.append(str(params["tag"]))  # type: ignore[index]

    from reference_impl.actions import Action

    actions = {**DEFAULT_ACTIONS, "record": Action(check=lambda p: None, run=record)}

    async def scenario() -> None:
        store = RunStore()
        executor = Executor(store, actions, workers=2)
        await executor.start()
        try:
            wf = {
                "name": "o",
                "steps": [
                    {"id": "late", "action": "record", "params": {"tag": "late"}, "dependsOn": ["early"]},
                    {"id": "early", "action": "record", "params": {"tag": "early"}},
                ],
            }
            ok = new_run(store, wf)
            failing = new_run(store, {"name": "f", "steps": [{"id": "x", "action": "fail"}]})
            sleeping = new_run(
                store, {"name": "s", "steps": [{"id": "z", "action": "sleep", "params": {"seconds": 60}}]}
            )
            for run_id in (ok, failing, sleeping):
                executor.submit(run_id)
            await _until(lambda: store.get(ok).status == "succeeded")  # type: ignore[union-attr]
            assert order == ["early", "late"]
            await _until(lambda: store.get(failing).status == "failed")  # type: ignore[union-attr]
            await _until(lambda: store.get(sleeping).status == "running")  # type: ignore[union-attr]
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert store.request_cancel(sleeping).status == "cancelling"  # type: ignore[union-attr]
            executor.cancel(sleeping)
            await _until(lambda: store.get(sleeping).status == "cancelled", timeout=1.0)  # type: ignore[union-attr]
            assert loop.time() - began < 1.0
        finally:
            await executor.stop()

    asyncio.run(scenario())


def test_recover_settles_in_flight_runs(tmp_path: object) -> None:
    store = RunStore(f"{tmp_path}/r.db")
    queued, running, cancelling = new_run(store), new_run(store), new_run(store)
    store.mark_running(running)
    store.mark_running(cancelling)
    store.request_cancel(cancelling)
    assert store.recover() == [queued]
    statuses = {rid: store.get(rid).status for rid in (queued, running, cancelling)}  # type: ignore[union-attr]
    assert statuses == {queued: "queued", running: "failed", cancelling: "cancelled"}
    failed = store.get(running)
    assert failed is not None and failed.failure_reason and failed.finished_at
