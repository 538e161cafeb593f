"""What the Markdown writers (the run summary, the diff for a pull request) share.

Both are read in GitHub's and GitLab's Markdown, which strip raw HTML: text from a server or the
catalog is escaped so that it can neither open a tag nor break a table cell.
"""

from __future__ import annotations

import re

__all__ = ["code", "escape", "first_line", "table"]

# Every character that CommonMark or a GFM table would read as markup inside a line (no text starts a line).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def first_line(text: str, limit: int = 200) -> str:
    """The first line of `text`, cut to `limit` characters: one line per requirement, whatever the message."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def escape(text: str) -> str:
    """`text` as literal Markdown: markup characters escaped, on one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def code(text: str) -> str:
    """`text` as inline code that no backtick or pipe inside it can end early (pipes still split GFM cells)."""
    text = " ".join(text.split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table's lines; cells must already be escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
