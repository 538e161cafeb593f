"""Faulty servers for the Schemathesis phase: wrong answers to invalid requests that are still 4xx,
and a server during whose answers the run's deadline passes.

Before issue 18 any 4xx to a negative case counted as a pass of the requirement it broke, so a
server that answers a wrongly typed step field with 415 or 422 (as a framework's model binding
does, before the handler's own validation runs) passed ERR-004, which demands exactly 400.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from conformance.session import Session
from conformance.spec import PROBLEM_BASE
from reference_impl.app import create_app
from reference_impl.endpoints import RunsApi
from reference_impl.problems import PROBLEM_MEDIA_TYPE

__all__ = ["SCHEMA_FAULTS", "DeadlineAfter", "wrongly_typed_step_field"]

# The JSON type each step field must have (components.schemas.Step).
_STEP_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {"id": str, "action": str, "params": dict, "dependsOn": list}


def wrongly_typed_step_field(body: Any) -> str | None:
    """The first step field of `body` whose JSON type is wrong ("workflow.steps[0].id"), or None."""
    workflow = body.get("workflow") if isinstance(body, dict) else None
    steps = workflow.get("steps") if isinstance(workflow, dict) else None
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        for name, kind in _STEP_FIELD_TYPES.items():
            # bool is an int in Python but never a string, object or array, so isinstance is exact here.
            if name in step and not isinstance(step[name], kind):
                return f"workflow.steps[{index}].{name}"
        depends = step.get("dependsOn")
        if isinstance(depends, list) and not all(isinstance(item, str) for item in depends):
            return f"workflow.steps[{index}].dependsOn"
    return None


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"type": f"{PROBLEM_BASE}invalid-request", "title": title, "status": status, "detail": detail}
    return Response(json.dumps(body).encode(), status_code=status, media_type=PROBLEM_MEDIA_TYPE)


class _TypeErrorsAnswered(RunsApi):
    """Binds the body to typed step models before the handler validates it; a type error there is
    answered with `status` instead of the contract's 400."""

    status = 400
    title = "The request is invalid"

    async def start_run(self, request: Request) -> Response:
        raw = await request.body()  # Starlette keeps it: the handler reads the same bytes again
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        field = wrongly_typed_step_field(body)
        if field is not None:
            return _problem(self.status, self.title, f"{field}: wrong type")
        return await super().start_run(request)


class TypeErrors415(_TypeErrorsAnswered):
    status = 415
    title = "Unsupported media type"


class TypeErrors422(_TypeErrorsAnswered):
    status = 422
    title = "Unprocessable content"


AppFactory = Callable[[Sequence[str]], ASGIApp]


def _with_api(api_class: type[RunsApi]) -> AppFactory:
    def build(tokens: Sequence[str]) -> ASGIApp:
        return create_app(list(tokens), api_class=api_class)

    return build


class DeadlineAfter:
    """Passes the session's deadline while it answers its `answers`-th request: a run cut mid-phase
    after exactly that many answers, however fast the machine is. Set `session` once it is open."""

    def __init__(self, app: ASGIApp, answers: int) -> None:
        self.app = app
        self.session: Session | None = None
        self.left = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.session is not None:
            self.left -= 1
            if self.left == 0:
                self.session.deadline = time.monotonic() - 1.0
        await self.app(scope, receive, send)


# The arguments of faults.Fault (name, area, description, breaks, build, source): faults.py makes
# them Faults, so this module need not import it (faults.py imports this one).
SOURCE = "tests/support/faults_schema.py"
# fmt: off
SCHEMA_FAULTS: list[tuple[str, str, str, tuple[str, ...], AppFactory, str]] = [
    ("type-errors-415", "errors", "startRun answers wrongly typed step fields with a 415 Problem, not 400",
     ("ERR-004",), _with_api(TypeErrors415), SOURCE),
    ("type-errors-422", "errors", "startRun answers wrongly typed step fields with a 422 Problem, not 400",
     ("ERR-004",), _with_api(TypeErrors422), SOURCE),
]
# fmt: on
