"""The ASGI app: routes, error handling, and the lifespan that runs the executor.

Every part with behaviour (store, executor, cursors, ETags, idempotency, auth, the operations)
is passed in or made by a replaceable factory, so a faulty variant of this server is one
override away; see docs/reference-server.md.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .actions import DEFAULT_ACTIONS, Action
from .auth import BearerAuth
from .bodies import MAX_BODY_BYTES
from .cursors import CursorCodec
from .endpoints import RUNS_PATH, Endpoint, RunsApi
from .etags import EtagPolicy
from .executor import DEFAULT_WORKERS, Executor
from .idempotency import IdempotencyPolicy
from .problems import ProblemError, handle_http_exception, handle_problem, handle_unexpected
from .store import RunStore
from .timestamps import MonotonicTimestamps, WallClock, utc_now

ExecutorFactory = Callable[[RunStore, Mapping[str, Action]], Executor]


class _Dispatch:
    """One ASGI endpoint per path that knows its methods: others get a 405 Problem with Allow.

    Only the methods the spec declares are allowed (no implicit HEAD), as ERR-011 reads it. An
    ASGI class rather than a function, so that Starlette routes every method here instead of
    answering undeclared ones itself.
    """

    def __init__(self, methods: Mapping[str, Endpoint]) -> None:
        self.methods = dict(methods)
        self.allow = ", ".join(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        handler = self.methods.get(request.method)
        if handler is None:
            raise ProblemError(
                "method-not-allowed",
                f"{request.method} is not allowed on {request.url.path!r}; allowed: {self.allow}.",
                headers={"Allow": self.allow},
            )
        response = await handler(request)
        await response(scope, receive, send)


def build_routes(api: RunsApi) -> list[Route]:
    return [
        Route(RUNS_PATH, _Dispatch({"GET": api.list_runs, "POST": api.start_run}), methods=None),
        Route(RUNS_PATH + "/{runId}", _Dispatch({"GET": api.get_run}), methods=None),
        Route(RUNS_PATH + "/{runId}/definition", _Dispatch({"GET": api.get_run_definition}), methods=None),
        Route(RUNS_PATH + "/{runId}/cancel", _Dispatch({"POST": api.cancel_run}), methods=None),
    ]


def _check_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of strings, not one string")
    checked = tuple(tokens)
    if not checked:
        raise ValueError("at least one bearer token is required")
    for token in checked:
        # A token must be sendable as `Authorization: Bearer <token>`: visible ASCII, no spaces.
        if not token or not all("\x21" <= char <= "\x7e" for char in token):
            raise ValueError("bearer tokens must be non-empty visible ASCII without spaces")
    return checked


def create_app(
    tokens: Sequence[str],
    db_path: str | None = None,
    *,
    store: RunStore | None = None,
    actions: Mapping[str, Action] | None = None,
    clock: WallClock = utc_now,
    cursor_codec: CursorCodec | None = None,
    etags: EtagPolicy | None = None,
    idempotency: IdempotencyPolicy | None = None,
    executor_factory: ExecutorFactory | None = None,
    workers: int = DEFAULT_WORKERS,
    api_class: type[RunsApi] = RunsApi,
    auth_class: type[BearerAuth] = BearerAuth,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The Runs API as an ASGI app; the executor starts and stops with the app's lifespan.

    Without `db_path` (or a `store`) runs live in memory and are gone when the process ends.
    """
    checked_tokens = _check_tokens(tokens)
    run_store = store if store is not None else RunStore(db_path, MonotonicTimestamps(clock))
    action_table = dict(actions if actions is not None else DEFAULT_ACTIONS)
    if executor_factory is None:
        executor = Executor(run_store, action_table, workers)
    else:
        executor = executor_factory(run_store, action_table)
    # With a file the secret is stored in it (cursors survive a restart); in memory it is random.
    codec = cursor_codec or CursorCodec(run_store.cursor_secret() if run_store.path else secrets.token_bytes(32))
    api = api_class(
        store=run_store,
        executor=executor,
        actions=action_table,
        cursors=codec,
        etags=etags or EtagPolicy(),
        idempotency=idempotency or IdempotencyPolicy(),
        max_body_bytes=max_body_bytes,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await executor.start()
        try:
            yield
        finally:
            await executor.stop()
            if run_store.path is not None:
                # Release the file; the store reopens it if the same app is served again.
                run_store.close()

    app = Starlette(
        routes=build_routes(api),
        middleware=[Middleware(auth_class, tokens=checked_tokens)],
        exception_handlers={
            ProblemError: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    # `/api/v1/runs/` is not a path of the API: a 404 Problem, not a redirect to one.
    app.router.redirect_slashes = False
    app.state.store = run_store
    app.state.executor = executor
    app.state.api = api
    return app
