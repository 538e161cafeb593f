"""Runs queued runs: steps in dependency order, a fixed pool of workers, prompt cancellation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from .actions import Action, StepFailed
from .store import RunStore
from .validation import dependency_order

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 16


class Executor:
    """Each run executes in its own task, so a cancel is `task.cancel()`: a sleeping step stops
    at once rather than at its next check. The store's guarded updates decide every status; this
    class only reports what happened to a run's steps.
    """

    def __init__(self, store: RunStore, actions: Mapping[str, Action], workers: int = DEFAULT_WORKERS) -> None:
        self._store = store
        self._actions = actions
        self._workers = workers
        self._queue: asyncio.Queue[str] | None = None
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._active: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> bool:
        return self._queue is not None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        for run_id in self._store.recover():
            self._queue.put_nowait(run_id)
        self._worker_tasks = [asyncio.create_task(self._work(), name=f"runs-worker-{n}") for n in range(self._workers)]

    async def stop(self) -> None:
        """Stops the workers. Runs still in flight stay `running` in the store; the next start
        settles them (see RunStore.recover), which is the same path a crash takes."""
        for task in self._worker_tasks:
            task.cancel()
        await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        self._worker_tasks = []
        self._active.clear()
        self._queue = None

    def submit(self, run_id: str) -> None:
        if self._queue is not None:
            self._queue.put_nowait(run_id)

    def cancel(self, run_id: str) -> None:
        """Called after the store moved the run to `cancelling`."""
        task = self._active.get(run_id)
        if task is not None:
            task.cancel()
        else:
            # Nothing is executing it (e.g. no executor running): settle it here and now.
            self._store.finish(run_id, "cancelled", ("cancelling",))

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            run_id = await queue.get()
            try:
                await self._execute(run_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("run %s: the executor failed", run_id)
                self._store.finish(run_id, "failed", ("running", "cancelling"), "internal error in the executor")

    async def _execute(self, run_id: str) -> None:
        run = self._store.get(run_id)
        # No await between the status change and registering the task: a cancel always finds it.
        if run is None or not self._store.mark_running(run_id):
            return
        steps = dependency_order(run.workflow()["steps"])
        task = asyncio.create_task(self._run_steps(steps), name=f"run-{run_id}")
        self._active[run_id] = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            # The worker itself is stopping (shutdown): stop the run's steps with it.
            task.cancel()
            raise
        finally:
            self._active.pop(run_id, None)
        if task.cancelled():
            if not self._store.finish(run_id, "cancelled", ("cancelling",)):
                # Cancelled by something other than cancelRun: never leave it running forever.
                self._store.finish(run_id, "failed", ("running",), "the run's steps were interrupted")
            return
        error = task.exception()
        if error is None:
            # From cancelling too: the work finished before the cancel reached it.
            self._store.finish(run_id, "succeeded", ("running", "cancelling"))
        elif isinstance(error, StepFailed):
            self._store.finish(run_id, "failed", ("running", "cancelling"), str(error))
        else:
            logger.error("run %s: a step raised %r", run_id, error)
            self._store.finish(run_id, "failed", ("running", "cancelling"), f"a step raised {type(error).__name__}")

    async def _run_steps(self, steps: list[Mapping[str, object]]) -> None:
        for step in steps:
            action = self._actions[str(step["action"])]
            params = step.get("params")
            try:
                await action.run(params if isinstance(params, Mapping) else {})
            except StepFailed as exc:
                raise StepFailed(f"step {step['id']!r} failed: {exc}") from exc
