"""A timeline of concurrent operations as inline SVG: one lane per client, the evidence highlighted.

A finding of the history checker names two or three operations; drawn against their neighbours,
one lane per client, a reader sees at a glance which answer arrived before which request was sent.
The SVG is self-contained (no scripts, no external resources) and every text in it is escaped.
It reads operations structurally, so the report layer does not import the history model.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol

__all__ = ["TimedOperation", "timeline_svg"]

LEFT, RIGHT, TOP, ROW, BAR, AXIS = 80, 20, 24, 26, 14, 28
CHAR = 5.6  # the width of a character of the 10 px sans-serif labels, roughly
WIDTH = 760


class TimedOperation(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def client(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def invoked(self) -> float: ...
    @property
    def completed(self) -> float | None: ...
    @property
    def status(self) -> int | None: ...


def _tick(span_ms: float) -> float:
    """A round step giving about five ticks over the span."""
    step = 1e-3
    while span_ms / step > 6:
        for factor in (2, 2.5, 2):
            step *= factor
            if span_ms / step <= 6:
                break
    return step


def _rows(ops: Sequence[TimedOperation], end: float) -> list[int]:
    """Row of each op inside its lane: an op that overlaps an earlier one of its client goes below it."""
    row_ends: dict[int, list[float]] = {}
    rows = []
    for op in ops:
        ends = row_ends.setdefault(op.client, [])
        row = next((r for r, busy in enumerate(ends) if busy < op.invoked), len(ends))
        stop = end if op.completed is None else op.completed
        if row < len(ends):
            ends[row] = stop
        else:
            ends.append(stop)
        rows.append(row)
    return rows


def timeline_svg(operations: Sequence[TimedOperation], highlight: set[int], start: float) -> str:
    """The operations on a time axis in ms from `start`; ops whose index is in `highlight` stand out."""
    ops = sorted(operations, key=lambda op: (op.invoked, op.index))
    times = [start] + [t for op in ops for t in (op.invoked, op.completed) if t is not None]
    end = max(times)
    span = max(end - start, 1e-6) * 1.05  # room for open-ended bars to show they go on
    rows = _rows(ops, start + span)
    clients = sorted({op.client for op in ops})
    depth = {c: 1 + max((r for op, r in zip(ops, rows, strict=True) if op.client == c), default=0) for c in clients}
    lane_top, y = {}, TOP
    for c in clients:
        lane_top[c], y = y, y + depth[c] * ROW
    height = y + AXIS
    plot = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + plot * (t - start) / span

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="10" role="img">',
        "<title>Operations by client over time (ms from the history start)</title>",
    ]
    for c in clients:
        top = lane_top[c]
        out.append(f'<g class="lane" data-client="{c}">')
        out.append(f'<rect x="0" y="{top}" width="{WIDTH}" height="{depth[c] * ROW}" fill="#f6f8fa" stroke="#d0d7de"/>')
        out.append(f'<text x="6" y="{top + ROW / 2 + 4:.1f}">{escape(f"client {c}")}</text>')
        for op, row in zip(ops, rows, strict=True):
            if op.client != c:
                continue
            bar_y = top + row * ROW + (ROW - BAR) / 2
            x0 = x(op.invoked)
            x1 = x(start + span) if op.completed is None else max(x(op.completed), x0 + 2)
            marked = op.index in highlight
            fill, stroke = ("#ffd8b5", "#bc4c00") if marked else ("#ddf4ff", "#54aeff")
            dash = ' stroke-dasharray="4 2"' if op.completed is None else ""
            status = "no answer" if op.completed is None else str(op.status)
            label = escape(f"#{op.index} {op.kind} {status}")
            # A label wider than its bar would run into the next one: the number only (the tooltip has all).
            shown = label if marked or len(label) * CHAR <= x1 - x0 - 4 else f"#{op.index}"
            when = f"{(op.invoked - start) * 1000:.1f}–" + (
                "…" if op.completed is None else f"{(op.completed - start) * 1000:.1f}"
            )
            out.append(
                f'<g class="op{" evidence" if marked else ""}" data-op="{op.index}"><title>{label} ({when} ms)</title>'
                f'<rect x="{x0:.1f}" y="{bar_y:.1f}" width="{x1 - x0:.1f}" height="{BAR}" rx="2" fill="{fill}" '
                f'stroke="{stroke}" stroke-width="{2 if marked else 1}"{dash}/>'
                f'<text x="{x0 + 3:.1f}" y="{bar_y + BAR - 3:.1f}" font-weight="{"bold" if marked else "normal"}">'
                f"{shown}</text></g>"
            )
        out.append("</g>")
    step = _tick(span * 1000)
    axis_y = y + 4
    out.append(f'<g class="axis"><line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + plot}" y2="{axis_y}" stroke="#57606a"/>')
    for n in range(int(span * 1000 / step) + 1):
        tx = x(start + n * step / 1000)
        out.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="#57606a"/>')
        out.append(f'<text x="{tx:.1f}" y="{axis_y + 15}" text-anchor="middle">{escape(f"{n * step:.4g} ms")}</text>')
    out.append("</g></svg>")
    return "\n".join(out)
