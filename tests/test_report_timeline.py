"""The timeline of a finding's operations: well-formed SVG, one lane per client, every text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from conformance.history import Operation
from conformance.report.timeline import timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def op(index: int, client: int, invoked: float, completed: float | None) -> Operation:
    return Operation(index, client, "primary", "getRun", invoked, completed, None if completed is None else 200)


def lanes(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]


def test_well_formed_with_one_lane_per_client() -> None:
    ops = [op(0, 3, 10.000, 10.004), op(1, 1, 10.001, 10.002), op(2, 3, 10.005, 10.006), op(3, 7, 10.003, None)]
    root = ET.fromstring(timeline_svg(ops, {1, 3}, start=10.0))
    assert root.tag == f"{SVG}svg"
    assert [lane.get("data-client") for lane in lanes(root)] == ["1", "3", "7"]
    bars = {g.get("data-op"): g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("op")}
    assert sorted(bars) == ["0", "1", "2", "3"]
    assert {key for key, g in bars.items() if "evidence" in (g.get("class") or "")} == {"1", "3"}
    open_bar = bars["3"].find(f"{SVG}rect")
    assert open_bar is not None and open_bar.get("stroke-dasharray")  # no answer: drawn open-ended
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "#3 getRun no answer" in texts and "ms" in texts


def test_no_scripts_no_external_resources() -> None:
    svg = timeline_svg([op(0, 1, 0.0, 0.001)], set(), start=0.0)
    assert "<script" not in svg and "href" not in svg and "url(" not in svg


@dataclass(frozen=True)
class Drawn:
    """Anything with the fields a timeline reads: it draws more than the history model's operations."""

    index: int
    client: int
    kind: str
    invoked: float
    completed: float | None
    status: int | None


def test_every_text_is_escaped() -> None:
    hostile = Drawn(0, 1, "<script>alert(1)</script>&", 0.0, 0.001, 200)
    svg = timeline_svg([hostile], {0}, start=0.0)
    root = ET.fromstring(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert not list(root.iter(f"{SVG}script"))


def test_readable_from_two_to_twenty_operations() -> None:
    for count in (2, 20):
        ops = [op(n, n % 4, n * 0.002, n * 0.002 + 0.003) for n in range(count)]  # overlapping in each lane
        root = ET.fromstring(timeline_svg(ops, {0, count - 1}, start=0.0))
        assert len(lanes(root)) == min(count, 4)
        rects = [g.find(f"{SVG}rect") for g in root.iter(f"{SVG}g") if g.get("data-op")]
        # An op that overlaps an earlier one of its client goes on a row of its own, never on top of it.
        spots = {(r.get("x"), r.get("y")) for r in rects if r is not None}
        assert len(spots) == count
        assert float(root.get("height") or 0) < 60 + 26 * count
