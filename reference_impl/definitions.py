"""Workflow snapshots: canonical JSON (RFC 8785) and the definitionHash derived from it."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


class NotCanonicalizable(ValueError):
    """The value has no RFC 8785 form: an integer or float outside I-JSON, or a lone surrogate."""


def canonical_json(value: Any) -> bytes:
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, RecursionError, UnicodeError) as exc:
        raise NotCanonicalizable(str(exc)) from exc


def definition_hash(workflow: Any) -> str:
    """`sha256:` + hex SHA-256 of the workflow's RFC 8785 form: equal for JSON-equal workflows."""
    return "sha256:" + hashlib.sha256(canonical_json(workflow)).hexdigest()
