"""Recorded traffic for the observe-mode tests: the suite's own recording of a server, and HAR made from it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conformance.runner import EXCHANGES_NAME
from reference_impl.app import create_app
from support.harness import quick_args, run_suite
from support.tokens import OTHER_TOKEN, TOKEN, TOKENS

__all__ = ["record", "to_har"]

_CUT = re.compile(r"… \[[0-9]+ more characters\]\Z")  # how conformance/client.py ends a body it cut


def record(server: Any, directory: Path, *select: str) -> Path:
    """Run the quick suite (the areas `select` names, or all) against `server` (an app, or None for the
    reference server) and return the path of the exchanges.jsonl it wrote."""
    app = create_app(tokens=TOKENS) if server is None else server
    run_suite(app, *quick_args(select), report_dir=directory)
    path = directory / EXCHANGES_NAME
    assert path.exists(), f"the run wrote no {EXCHANGES_NAME} into {directory}"
    return path


def _pairs(headers: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers.items()]


def _with_tokens(x: dict[str, Any]) -> dict[str, str]:
    """The request headers with the token the suite sent put back (its recording redacts it; the curl line
    names the variable): a HAR from a browser or a proxy holds real tokens, and observe must hide them."""
    token = OTHER_TOKEN if "$RUNS_OTHER_TOKEN" in x["curl"] else TOKEN
    return {k: (f"Bearer {token}" if k.lower() == "authorization" else v) for k, v in x["request_headers"].items()}


def to_har(exchanges: Path, har: Path, *, bodies: bool = True) -> int:
    """exchanges.jsonl as a HAR 1.2 file (every entry at one instant, lasting a minute: the suite's recording
    proves no order, and the HAR must not invent one); without bodies when `bodies` is False. Returns entries."""
    entries: list[dict[str, Any]] = []
    for line in exchanges.read_text(encoding="utf-8").splitlines():
        x = json.loads(line)
        request: dict[str, Any] = {
            "method": x["method"],
            "url": x["url"],
            "httpVersion": "HTTP/1.1",
            "headers": _pairs(_with_tokens(x)),
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": -1,
        }
        content: dict[str, Any] = {"size": -1, "mimeType": x["response_headers"].get("content-type", "")}
        if bodies:  # a body the suite's recorder cut is not the body that was sent: leave it out, as a HAR would
            if x["request_body"] is not None and not _CUT.search(x["request_body"]):
                request["postData"] = {
                    "mimeType": x["request_headers"].get("content-type", ""),
                    "text": x["request_body"],
                }
            if x["response_body"] is not None and not _CUT.search(x["response_body"]):
                content["text"] = x["response_body"]
        entries.append(
            {
                "startedDateTime": "2026-12-06T12:00:00.000Z",
                "time": 60000,
                "request": request,
                "response": {
                    "status": x["status"] or 0,
                    "statusText": "",
                    "httpVersion": "HTTP/1.1",
                    "headers": _pairs(x["response_headers"]),
                    "cookies": [],
                    "content": content,
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": -1,
                },
                "cache": {},
                "timings": {"send": 0, "wait": 60000, "receive": 0},
            }
        )
    document = {"log": {"version": "1.2", "creator": {"name": "tests", "version": "1"}, "entries": entries}}
    har.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return len(entries)
