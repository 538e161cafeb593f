"""The five operations: parse and check the request, call the store and executor, render JSON.

A seam: a faulty variant can subclass RunsApi and override one operation or helper.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from .actions import Action
from .auth import TOKEN_STATE_KEY
from .bodies import MAX_BODY_BYTES, check_json_media_type, parse_json_object, read_capped
from .cursors import CursorCodec, Filters
from .definitions import NotCanonicalizable, canonical_json, definition_hash
from .etags import EtagPolicy
from .executor import Executor
from .idempotency import IdempotencyPolicy
from .problems import ProblemError
from .store import RUN_ID_PATTERN, IdempotencyClaim, IdempotencyKeyReused, RunRecord, RunStore
from .validation import WORKFLOW_RULES, WorkflowRule, check_run_start_request, parse_list_query

RUNS_PATH = "/api/v1/runs"
_RUN_ID = re.compile(RUN_ID_PATTERN)

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


@dataclass
class RunsApi:
    store: RunStore
    executor: Executor
    actions: Mapping[str, Action]
    cursors: CursorCodec
    etags: EtagPolicy
    idempotency: IdempotencyPolicy
    max_body_bytes: int = MAX_BODY_BYTES

    # The workflow rules startRun enforces beyond the schema; a seam for faults that drop one.
    workflow_rules: ClassVar[tuple[WorkflowRule, ...]] = WORKFLOW_RULES

    # --- helpers ------------------------------------------------------------------------------

    def check_request(self, body: dict[str, Any]) -> None:
        """400 unless `body` is a valid RunStartRequest for this server: schema, then workflow rules."""
        check_run_start_request(body, self.actions, self.workflow_rules)

    def find_run(self, request: Request) -> RunRecord:
        """The run named in the path, or 404: a malformed id is just an id no run has."""
        run_id = str(request.path_params["runId"])
        run = self.store.get(run_id) if _RUN_ID.fullmatch(run_id) else None
        if run is None:
            shown = run_id if len(run_id) <= 64 else run_id[:64] + "…"
            raise ProblemError("not-found", f"There is no run {shown!r}.")
        return run

    @staticmethod
    def run_ref(run: RunRecord) -> dict[str, str]:
        return {"runId": run.run_id, "status": run.status}

    # --- operations ---------------------------------------------------------------------------

    async def start_run(self, request: Request) -> Response:
        # Order matters: 415 and 413 before the body is parsed, and the key only after the
        # request is known valid, so that a rejected request never uses up its key.
        check_json_media_type(request)
        raw = await read_capped(request, self.max_body_bytes)
        body = parse_json_object(raw)
        self.check_request(body)
        try:
            fingerprint = self.idempotency.fingerprint(body)
            digest = definition_hash(body["workflow"])
            canonical_json(body.get("inputs", {}))
        except NotCanonicalizable as exc:
            raise ProblemError("invalid-request", f"The body is outside I-JSON (RFC 7493): {exc}") from exc
        key = self.idempotency.key(request.headers.get(self.idempotency.header))
        claim = None
        if key is not None:
            token: str = request.scope["state"][TOKEN_STATE_KEY]
            claim = IdempotencyClaim(scope=self.idempotency.scope(token), key=key, fingerprint=fingerprint)
        try:
            outcome = self.store.start_run(
                client_id=body["clientId"],
                workflow=body["workflow"],
                inputs=body.get("inputs", {}),
                definition_hash=digest,
                claim=claim,
            )
        except IdempotencyKeyReused as exc:
            raise ProblemError(
                "idempotency-key-reused",
                f"This Idempotency-Key was first used with a different body (run {exc.run_id}); "
                "send a new key to start a new run.",
            ) from exc
        if outcome.created:
            self.executor.submit(outcome.run.run_id)
        location = f"{RUNS_PATH}/{outcome.run.run_id}"
        return json_response(self.run_ref(outcome.run), status=202, headers={"Location": location})

    async def get_run(self, request: Request) -> Response:
        return json_response(self.find_run(request).to_api())

    async def get_run_definition(self, request: Request) -> Response:
        run = self.find_run(request)  # 404 before 304
        etag = self.etags.etag_for(run.definition_hash)
        if_none_match = request.headers.getlist("if-none-match")
        combined = ", ".join(if_none_match) if if_none_match else None
        if self.etags.none_match(combined, etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(run.workflow_json.encode("utf-8"), media_type="application/json", headers={"ETag": etag})

    async def list_runs(self, request: Request) -> Response:
        query = parse_list_query(request.query_params.multi_items())
        filters = Filters(status=query.status, client_id=query.client_id)
        before = self.cursors.decode(query.cursor, filters) if query.cursor is not None else None
        runs, more = self.store.list_runs(query.status, query.client_id, before, query.limit)
        next_cursor = self.cursors.encode(runs[-1].seq, filters) if more and runs else None
        return json_response({"items": [run.to_api() for run in runs], "nextCursor": next_cursor})

    async def cancel_run(self, request: Request) -> Response:
        run = self.find_run(request)
        updated = self.store.request_cancel(run.run_id)
        assert updated is not None
        if updated.status == "cancelling":
            self.executor.cancel(updated.run_id)
            # The executor may have settled it synchronously (nothing was executing it).
            updated = self.store.get(updated.run_id) or updated
        return json_response(self.run_ref(updated), status=202)
