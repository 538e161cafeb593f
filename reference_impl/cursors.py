"""listRuns cursors: opaque, URL-safe, HMAC-signed, and bound to the filters they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from .problems import ProblemError

_MAC_BYTES = 16  # 128 bits: forging one is not a realistic attack on a page token.
_MAX_CURSOR_CHARS = 512


@dataclass(frozen=True)
class Filters:
    status: str | None
    client_id: str | None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Encodes a keyset position (the sequence number of the last run on a page).

    The position is signed together with the filters, so a cursor cannot be edited to skip runs,
    and one used with other filters is refused instead of silently walking a different listing.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must have at least 16 bytes")
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, after: int, filters: Filters) -> str:
        payload = json.dumps(
            {"v": 1, "after": after, "status": filters.status, "clientId": filters.client_id},
            separators=(",", ":"),
        ).encode("ascii")
        return _b64encode(payload) + "." + _b64encode(self._mac(payload))

    def decode(self, cursor: str, filters: Filters) -> int:
        """The position, or 400 invalid-cursor for anything this codec did not issue."""
        invalid = ProblemError("invalid-cursor", "The cursor is malformed or was not issued by this server.")
        if len(cursor) > _MAX_CURSOR_CHARS or cursor.count(".") != 1 or not cursor.isascii():
            raise invalid
        encoded_payload, encoded_mac = cursor.split(".")
        try:
            payload = _b64decode(encoded_payload)
            mac = _b64decode(encoded_mac)
        except (binascii.Error, ValueError):
            raise invalid from None
        # Re-encoding must give the same text, so that no two strings are the same cursor.
        if _b64encode(payload) != encoded_payload or _b64encode(mac) != encoded_mac:
            raise invalid
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        data = json.loads(payload)
        if data.get("status") != filters.status or data.get("clientId") != filters.client_id:
            raise ProblemError(
                "invalid-cursor",
                "The cursor was issued for other status/clientId filters; repeat the filters it was issued with.",
            )
        after = data["after"]
        if not isinstance(after, int):
            raise invalid
        return after
