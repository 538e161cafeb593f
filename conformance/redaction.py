"""Keeping secrets out of records: tokens never reach a report, a log or a curl line."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["REDACTED", "SENSITIVE_HEADERS", "redact_headers", "redact_text"]

REDACTED = "[redacted]"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_headers(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in SENSITIVE_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {REDACTED}".strip()
        result[name] = redact_text(value, secrets)
    return result


# A secret this long is replaced wherever it appears; a shorter one (a toy token such as "t")
# only where it stands alone, or "http" would become "h[redacted][redacted]p".
WHOLE_TEXT_SECRET_LENGTH = 8


def redact_text(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if len(secret) >= WHOLE_TEXT_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
        elif secret:
            text = re.sub(rf"(?<![\w.~+/-]){re.escape(secret)}(?![\w.~+/-])", REDACTED, text)
    return text
