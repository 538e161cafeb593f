"""Entity tags of definitions and If-None-Match evaluation (RFC 9110 §8.8.3, §13.1.2)."""

from __future__ import annotations

import re

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


class EtagPolicy:
    """A seam: a subclass can change how tags are made or compared."""

    def etag_for(self, definition_hash: str) -> str:
        # Weak: the representation is JSON-equal to the snapshot, not byte-identical to what was sent.
        return f'W/"{definition_hash}"'

    def none_match(self, header: str | None, current: str) -> bool:
        """True when If-None-Match matches `current`, so the answer is 304.

        A header that does not parse is ignored, as RFC 9110 §13.1 lets a server do with an
        invalid precondition: the client gets the full 200 rather than an error.
        """
        if header is None:
            return False
        tags = parse_if_none_match(header)
        if tags is None:
            return False
        if tags == ["*"]:
            return True
        current_opaque = _opaque(current)
        return any(_opaque(tag) == current_opaque for tag in tags)


def _opaque(tag: str) -> str:
    # Weak comparison: the W/ prefix does not matter, the quoted opaque-tag must be equal.
    return tag[2:] if tag.startswith("W/") else tag


def parse_if_none_match(header: str) -> list[str] | None:
    """`*` as ["*"], else the list of entity tags, or None if the value is not valid syntax."""
    value = header.strip(" \t")
    if value == "*":
        return ["*"]
    tags: list[str] = []
    position = 0
    length = len(value)
    # 1#entity-tag: elements separated by commas with optional whitespace; empty elements allowed.
    while position < length:
        while position < length and value[position] in " \t,":
            position += 1
        if position >= length:
            break
        match = _ENTITY_TAG.match(value, position)
        if match is None:
            return None
        tags.append(match.group(0))
        position = match.end()
        while position < length and value[position] in " \t":
            position += 1
        if position < length and value[position] != ",":
            return None
    return tags or None
