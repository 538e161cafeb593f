"""Idempotency-Key: syntax, who a key belongs to, and what makes two bodies the same."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .definitions import canonical_json
from .problems import ProblemError

_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyPolicy:
    """How startRun reads its key. A seam: a subclass can change scoping or fingerprinting."""

    header = "idempotency-key"

    def key(self, raw: str | None) -> str | None:
        """The key as sent, compared exactly (quotes included); 400 if it is not 1–255 visible ASCII."""
        if raw is None:
            return None
        if not _KEY.fullmatch(raw):
            raise ProblemError(
                "invalid-request",
                "Idempotency-Key must be 1 to 255 visible ASCII characters (0x21-0x7E).",
            )
        return raw

    def scope(self, token: str) -> str:
        """Keys are scoped per credential; the store keeps a digest, never the token itself."""
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def fingerprint(self, body: Any) -> str:
        """Bodies that are equal as JSON (key order, whitespace, number spelling) match."""
        return hashlib.sha256(canonical_json(body)).hexdigest()
