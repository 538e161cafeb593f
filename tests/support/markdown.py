"""Markdown as GitHub and GitLab would parse it (markdown-it-py): what the summary and diff tests read back."""

from __future__ import annotations

from markdown_it import MarkdownIt

__all__ = ["headings", "html_of", "markdown", "table_rows"]


def markdown() -> MarkdownIt:
    return MarkdownIt("gfm-like") if _has_linkify() else MarkdownIt("commonmark").enable("table")


def _has_linkify() -> bool:
    try:
        import linkify_it  # noqa: F401
    except ImportError:
        return False
    return True


def table_rows(text: str) -> list[list[str]]:
    """Every table row the parser found (header rows included), as the text of its cells."""
    tokens = markdown().parse(text)
    rows: list[list[str]] = []
    for i, token in enumerate(tokens):
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and i and tokens[i - 1].type in {"th_open", "td_open"}:
            rows[-1].append(token.content)
    return rows


def headings(text: str) -> list[str]:
    tokens = markdown().parse(text)
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]


def html_of(text: str) -> str:
    return str(markdown().render(text))
