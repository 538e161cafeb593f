"""The reference server with one realistic bug each, for the idempotency and ETag checks.

Every fault goes through a seam of the reference server (its IdempotencyPolicy, EtagPolicy,
RunsApi or RunStore, all passed to `create_app`) or wraps it in ASGI middleware, as a proxy in
front of a real server would; none patches a module, so the shared reference server of the
other tests is never touched. `CORRECT_VARIANTS` are servers that differ from the reference but
still keep the contract: the checks must pass them (no false alarms).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_impl.app import create_app
from reference_impl.auth import TOKEN_STATE_KEY
from reference_impl.definitions import definition_hash
from reference_impl.endpoints import RunsApi, json_response
from reference_impl.etags import EtagPolicy, parse_if_none_match
from reference_impl.idempotency import IdempotencyPolicy
from reference_impl.problems import ProblemError
from reference_impl.store import IdempotencyClaim, RunStore, StartOutcome
from reference_impl.timestamps import MonotonicTimestamps

from .asgi import ResponseRewrite
from .tokens import OTHER_TOKEN, TOKEN

__all__ = ["CORRECT_VARIANTS", "FAULTS", "TOKENS", "key_slot"]

TOKENS = [TOKEN, OTHER_TOKEN]
RACE_WINDOW_S = 0.05  # the await between looking a key up and storing it: a round trip to a remote cache


# --- idempotency ------------------------------------------------------------------------------


class IgnoresKeys(IdempotencyPolicy):
    """Never reads the header (e.g. a header name the framework does not pass through)."""

    def key(self, raw: str | None) -> str | None:
        return None


class NoFingerprint(IdempotencyPolicy):
    """Looks the key up but never compares bodies: a reused key replays the first run for any body."""

    def fingerprint(self, body: Any) -> str:
        return "same"


class FingerprintsOnlyTheWorkflow(IdempotencyPolicy):
    """Fingerprints the workflow alone: the same key with other inputs replays the first run."""

    def fingerprint(self, body: Any) -> str:
        return super().fingerprint(body["workflow"])


class ComparesSerialisedBody(IdempotencyPolicy):
    """Fingerprints the body as parsed, key order kept: JSON-equal bodies with other key order differ."""

    def fingerprint(self, body: Any) -> str:
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()


class GlobalKeys(IdempotencyPolicy):
    """Keys in one namespace for every credential."""

    def scope(self, token: str) -> str:
        return "global"


class AcceptsAnyKey(IdempotencyPolicy):
    """No syntax check on the key."""

    def key(self, raw: str | None) -> str | None:
        return raw


class DefaultKey(IdempotencyPolicy):
    """A missing header read as the empty key (`headers.get(name, "")`): keyless requests share one key."""

    def key(self, raw: str | None) -> str | None:
        return "-" if raw is None else super().key(raw)


def key_slot(request: Request) -> tuple[str, str] | None:
    """What a key is held under (the credential and the key, as the contract scopes it), or None without one."""
    key = request.headers.get(IdempotencyPolicy.header)
    return None if key is None else (str(request.scope["state"][TOKEN_STATE_KEY]), key)


def _reparsed(request: Request, *, drop_key: bool) -> Request:
    """The same request for the reference handler; its body was already read (Starlette keeps it)."""
    scope = dict(request.scope)
    if drop_key:
        scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"idempotency-key"]
    copy = Request(scope, request.receive)
    copy._body = request._body  # the body is read once; hand it on
    return copy


class CreatesRunOnConflict(RunsApi):
    """Inserts the run before it checks the key, and the conflict path forgets to roll it back."""

    async def start_run(self, request: Request) -> Response:
        raw = await request.body()
        try:
            return await super().start_run(_reparsed(request, drop_key=False))
        except ProblemError as exc:
            if exc.slug == "idempotency-key-reused":
                body = json.loads(raw)
                outcome = self.store.start_run(
                    client_id=body["clientId"],
                    workflow=body["workflow"],
                    inputs=body.get("inputs", {}),
                    definition_hash=definition_hash(body["workflow"]),
                )
                self.executor.submit(outcome.run.run_id)
            raise


class RacyKeyCache(RunsApi):
    """Keys kept in a cache beside the store: look up, await, start the run, then remember it."""

    async def start_run(self, request: Request) -> Response:
        cache: dict[tuple[str, str], Response] = self.__dict__.setdefault("cache", {})
        await request.body()
        slot = key_slot(request)
        if slot is None:
            return await super().start_run(request)
        cached = cache.get(slot)
        if cached is not None:
            return cached
        await asyncio.sleep(RACE_WINDOW_S)  # the bug: nothing holds the key during this await
        response = await super().start_run(_reparsed(request, drop_key=True))
        if response.status_code == 202:
            cache[slot] = response
        return response


class BurnsRejectedKeys(RunsApi):
    """Records a key as soon as a request arrives, so a rejected request uses it up: the next use conflicts."""

    async def start_run(self, request: Request) -> Response:
        burned: set[tuple[str, str]] = self.__dict__.setdefault("burned", set())
        key = request.headers.get("idempotency-key")
        slot = (str(request.scope["state"][TOKEN_STATE_KEY]), key or "")
        if key is not None and slot in burned:
            raise ProblemError("idempotency-key-reused", "This Idempotency-Key was used before.")
        try:
            return await super().start_run(request)
        except ProblemError as exc:
            if key is not None and exc.status in (400, 413, 415):
                burned.add(slot)
            raise


# --- ETags ---------------------------------------------------------------------------------------


class StrongEtag(EtagPolicy):
    def etag_for(self, definition_hash: str) -> str:
        return f'"{definition_hash}"'


class UnstableEtag(EtagPolicy):
    """A tag with a per-response counter in it (e.g. a version stamp taken at render time)."""

    def __init__(self) -> None:
        self.counter = itertools.count()

    def etag_for(self, definition_hash: str) -> str:
        return f'W/"{definition_hash}.{next(self.counter)}"'


class OwnEtag(EtagPolicy):
    """A stable weak tag, but the server's own (an MD5 of the hash), not W/"<definitionHash>"."""

    def etag_for(self, definition_hash: str) -> str:
        return f'W/"{hashlib.md5(definition_hash.encode()).hexdigest()}"'


class IgnoresIfNoneMatch(EtagPolicy):
    def none_match(self, header: str | None, current: str) -> bool:
        return False


class StrongComparison(EtagPolicy):
    """Compares tags as strings, W/ included: the strong form of the tag never matches."""

    def none_match(self, header: str | None, current: str) -> bool:
        tags = parse_if_none_match(header) if header is not None else None
        return tags is not None and (tags == ["*"] or current in tags)


class WholeHeaderComparison(EtagPolicy):
    """Compares the whole header with the tag: no lists, no `*`."""

    def none_match(self, header: str | None, current: str) -> bool:
        return header is not None and header.strip() == current


class CaseInsensitiveComparison(EtagPolicy):
    """Lower-cases both sides before comparing: opaque-tags are case-sensitive."""

    def none_match(self, header: str | None, current: str) -> bool:
        tags = parse_if_none_match(header) if header is not None else None
        if tags is None:
            return False
        wanted = current.removeprefix("W/").lower()
        return tags == ["*"] or any(tag.removeprefix("W/").lower() == wanted for tag in tags)


class NotModifiedWithoutEtag(RunsApi):
    async def get_run_definition(self, request: Request) -> Response:
        response = await super().get_run_definition(request)
        return Response(status_code=304) if response.status_code == 304 else response


class StarBeforeLookup(RunsApi):
    """Treats `If-None-Match: *` as "anything matches" before it looks the run up."""

    async def get_run_definition(self, request: Request) -> Response:
        if request.headers.get("if-none-match", "").strip() == "*":
            return Response(status_code=304, headers={"ETag": 'W/"*"'})
        return await super().get_run_definition(request)


class DefinitionWithDefaults(RunsApi):
    """Serves the definition through a model with defaults: every step gets params {} and dependsOn []."""

    async def get_run_definition(self, request: Request) -> Response:
        response = await super().get_run_definition(request)
        if response.status_code != 200:
            return response
        workflow = json.loads(bytes(response.body))
        for step in workflow["steps"]:
            step.setdefault("params", {})
            step.setdefault("dependsOn", [])
        return json_response(workflow, headers={"ETag": response.headers["etag"]})


class NonCanonicalHashStore(RunStore):
    """Hashes json.dumps(sort_keys=True): content-only, but not RFC 8785 (", " separators, \\u escapes)."""

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        digest = "sha256:" + hashlib.sha256(json.dumps(workflow, sort_keys=True).encode()).hexdigest()
        return super().start_run(client_id, workflow, inputs, digest, claim)


class NameVersionHashStore(RunStore):
    """Hashes only the workflow's name and version: two workflows with one name share a hash."""

    def start_run(
        self,
        client_id: str,
        workflow: Any,
        inputs: Any,
        definition_hash: str,
        claim: IdempotencyClaim | None = None,
    ) -> StartOutcome:
        label = f"{workflow['name']}@{workflow.get('version', '')}"
        digest = "sha256:" + hashlib.sha256(label.encode()).hexdigest()
        return super().start_run(client_id, workflow, inputs, digest, claim)


class ConditionalCacheInFront:
    """A caching proxy in front of the server that answers revalidations itself, before auth or lookup."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tags: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].endswith("/definition"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        condition = headers.get(b"if-none-match", b"").decode("latin-1")
        cached = self.tags.get(scope["path"])
        if condition and (condition.strip() == "*" or (cached is not None and cached in condition)):
            await Response(status_code=304, headers={"ETag": cached or 'W/"*"'})(scope, receive, send)
            return

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                for name, value in message["headers"]:
                    if name.lower() == b"etag":
                        self.tags[scope["path"]] = value.decode("latin-1")
            await send(message)

        await self.app(scope, receive, remember)


# --- correct variants -------------------------------------------------------------------------------


class InFlightConflicts(RunsApi):
    """Holds a key while its request is in flight and answers 409 idempotency-key-in-flight meanwhile."""

    async def start_run(self, request: Request) -> Response:
        in_flight: set[tuple[str, str]] = self.__dict__.setdefault("in_flight", set())
        slot = key_slot(request)
        if slot is None:
            return await super().start_run(request)
        if slot in in_flight:
            self.__dict__["conflicts"] = self.__dict__.get("conflicts", 0) + 1
            raise ProblemError("idempotency-key-in-flight", "Retry the same request unchanged.")
        in_flight.add(slot)
        try:
            await asyncio.sleep(RACE_WINDOW_S)
            return await super().start_run(request)
        finally:
            in_flight.discard(slot)


def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


def _decorate(value: Any) -> Any:
    """Extra fields on a Run, RunRef or RunList (and its items), as clients must tolerate; user data untouched."""
    if not isinstance(value, dict):
        return value
    extra = {**value, "x-extra": {"note": "ignore me"}}
    if isinstance(value.get("items"), list):
        extra["items"] = [_decorate(item) for item in value["items"]]
    return extra


def rewritten_responses(app: ASGIApp) -> ASGIApp:
    """Every JSON answer re-serialised: keys reversed, whitespace, ASCII escapes; extra fields except
    in the definition (which must stay JSON-equal); 304s with extra caching headers."""
    return ResponseRewrite(app, _rewrite_response)


def _rewrite_response(
    scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    media = dict(headers).get(b"content-type", b"").split(b";")[0].strip()
    if media in (b"application/json", b"application/problem+json") and body:
        value = json.loads(body)
        if not scope["path"].endswith("/definition") and media == b"application/json":
            value = _decorate(value)
        body = json.dumps(_reorder(value), indent=1, ensure_ascii=True).encode()
    if status == 304:
        headers = [*headers, (b"cache-control", b"private, max-age=0"), (b"vary", b"authorization")]
    # Header names in another case: HTTP field names are case-insensitive.
    return status, [(k.upper() if k.lower() == b"etag" else k, v) for k, v in headers], body


# --- the catalogue ---------------------------------------------------------------------------------


class AppFactory(Protocol):
    """Builds the server: in memory, or on the SQLite file `db_path`, whose state a restart keeps."""

    def __call__(self, db_path: str | None = None, /) -> ASGIApp: ...


def _app(**kwargs: Any) -> AppFactory:
    return lambda db_path=None: create_app(TOKENS, db_path, **kwargs)


def _store(cls: type[RunStore]) -> AppFactory:
    return lambda db_path=None: create_app(TOKENS, store=cls(db_path, MonotonicTimestamps()))


def _wrapped(middleware: Callable[[ASGIApp], ASGIApp]) -> AppFactory:
    return lambda db_path=None: middleware(create_app(TOKENS, db_path))


FAULTS: dict[str, AppFactory] = {
    # idempotency
    "key_ignored": _app(idempotency=IgnoresKeys()),
    "any_body_replays": _app(idempotency=NoFingerprint()),
    "fingerprint_ignores_inputs": _app(idempotency=FingerprintsOnlyTheWorkflow()),
    "run_created_on_conflict": _app(api_class=CreatesRunOnConflict),
    "bodies_compared_as_serialised": _app(idempotency=ComparesSerialisedBody()),
    "racy_key_cache": _app(api_class=RacyKeyCache),
    "keys_shared_across_tokens": _app(idempotency=GlobalKeys()),
    "invalid_keys_accepted": _app(idempotency=AcceptsAnyKey()),
    "rejected_requests_burn_keys": _app(api_class=BurnsRejectedKeys),
    "keyless_requests_share_a_key": _app(idempotency=DefaultKey()),
    # ETags and the definition
    "strong_etag": _app(etags=StrongEtag()),
    "unstable_etag": _app(etags=UnstableEtag()),
    "etag_not_from_hash": _app(etags=OwnEtag()),
    "if_none_match_ignored": _app(etags=IgnoresIfNoneMatch()),
    "if_none_match_strong_comparison": _app(etags=StrongComparison()),
    "if_none_match_no_lists": _app(etags=WholeHeaderComparison()),
    "if_none_match_case_insensitive": _app(etags=CaseInsensitiveComparison()),
    "not_modified_without_etag": _app(api_class=NotModifiedWithoutEtag),
    "not_modified_before_auth": _wrapped(ConditionalCacheInFront),
    "not_modified_for_unknown_run": _app(api_class=StarBeforeLookup),
    "definition_with_defaults": _app(api_class=DefinitionWithDefaults),
    "definition_hash_not_rfc8785": _store(NonCanonicalHashStore),
    "definition_hash_of_name_only": _store(NameVersionHashStore),
}

CORRECT_VARIANTS: dict[str, AppFactory] = {
    "in_flight_conflicts": _app(api_class=InFlightConflicts),
    "rewritten_responses": _wrapped(rewritten_responses),
}
