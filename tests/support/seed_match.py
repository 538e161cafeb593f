"""Does a generated RunsApi.md still say everything the published seed says?

Pure functions, no I/O, so that the matcher itself is unit-tested (tests/test_spec_fidelity.py).

The seed is what users were given; the spec may add to it (responses, parameters, descriptions)
but never change, reorder or drop what it shows. So each seed section must be an in-order
subsequence of the generated section with the same name, line for line, with exactly two
tolerated deviations that adding to the spec necessarily causes in the generated text:

(a) an example-call argument that is no longer the last one gains a trailing comma
    (seed ``    runId`` vs generated ``    runId,``);
(b) an Accept line lists more media types after the seed's
    (seed `` - **Accept**: application/json`` vs
    generated `` - **Accept**: application/json, application/problem+json``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

__all__ = ["HEADER", "Miss", "find_misses", "format_misses", "lines_match", "split_sections"]

# The name of the part before the first operation (title, base URI, operation table).
HEADER = "(header)"

_SECTION = re.compile(r"^# \*\*(?P<op>[A-Za-z_][A-Za-z0-9_]*)\*\*$")
# Only a bare identifier indented as a call argument may gain a comma: anything looser would let
# a comma slip into code, tables or prose unnoticed.
_CALL_ARGUMENT = re.compile(r"^ {4}[A-Za-z_$][A-Za-z0-9_$]*$")
_ACCEPT = " - **Accept**: "
_MEDIA_TYPE = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_MORE_MEDIA_TYPES = re.compile(rf"^(, {_MEDIA_TYPE})+$")


def lines_match(seed: str, generated: str) -> bool:
    """True when a generated line says what the seed line says, allowing only (a) and (b)."""
    if seed == generated:
        return True
    if _CALL_ARGUMENT.match(seed) and generated == seed + ",":
        return True
    # The seed's media types must stay first and in order; only whole media types may follow.
    return (
        seed.startswith(_ACCEPT)
        and generated.startswith(seed)
        and _MORE_MEDIA_TYPES.match(generated[len(seed) :]) is not None
    )


def split_sections(text: str) -> dict[str, list[str]]:
    """Lines by section: HEADER for the part before the first ``# **opId**``, then each opId."""
    sections: dict[str, list[str]] = {HEADER: []}
    current = HEADER
    for line in text.splitlines():
        found = _SECTION.match(line)
        if found:
            current = found["op"]
            if current in sections:
                raise ValueError(f"section # **{current}** appears twice")
            sections[current] = []
        sections[current].append(line)
    return sections


@dataclass(frozen=True)
class Miss:
    """A seed line that the generated section does not contain where it should."""

    section: str
    seed_lineno: int  # 1-based, in the seed file
    seed_line: str
    section_missing: bool = False
    after_generated_lineno: int = 0  # generated line of the section's last match (0: none)
    nearest: tuple[tuple[int, str], ...] = ()  # (generated line number, text), most alike first
    elsewhere: tuple[tuple[str, int], ...] = ()  # (section, generated line number) of exact copies


def _numbered_sections(text: str) -> dict[str, list[tuple[int, str]]]:
    """Like split_sections, with each line's 1-based number in the file."""
    numbered: dict[str, list[tuple[int, str]]] = {}
    number = 1
    for name, lines in split_sections(text).items():
        numbered[name] = list(enumerate(lines, start=number))
        number += len(lines)
    return numbered


def _nearest(seed_line: str, candidates: list[tuple[int, str]], limit: int = 3) -> list[tuple[int, str]]:
    """The generated lines most like the missing one, so the failure shows what changed."""
    scored = [
        (difflib.SequenceMatcher(None, seed_line, text, autojunk=False).ratio(), number, text)
        for number, text in candidates
        if text.strip()
    ]
    alike = sorted((item for item in scored if item[0] >= 0.6), key=lambda item: (-item[0], item[1]))
    return [(number, text) for _, number, text in alike[:limit]]


def find_misses(seed_text: str, generated_text: str) -> list[Miss]:
    """The first seed line of each section that the generated text lacks in order; [] when all match.

    Greedy earliest matching is enough: if any in-order embedding exists, the greedy one does too.
    Only the first miss per section is reported because after it the alignment is a guess.
    """
    generated = _numbered_sections(generated_text)
    misses: list[Miss] = []
    for name, seed_lines in _numbered_sections(seed_text).items():
        if name not in generated:
            misses.append(Miss(name, seed_lines[0][0], seed_lines[0][1], section_missing=True))
            continue
        candidates = generated[name]
        position = 0  # index into candidates of the next line that may match
        for seed_lineno, seed_line in seed_lines:
            start = position
            while position < len(candidates) and not lines_match(seed_line, candidates[position][1]):
                position += 1
            if position < len(candidates):
                position += 1
                continue
            nearest = _nearest(seed_line, candidates)
            if not nearest:
                # Nothing alike: show what stands where the line was expected.
                nearest = [item for item in candidates[start : start + 3] if item[1].strip()]
            elsewhere = [
                (other, number)
                for other, lines in generated.items()
                if other != name
                for number, text in lines
                if seed_line.strip() and lines_match(seed_line, text)
            ]
            misses.append(
                Miss(
                    section=name,
                    seed_lineno=seed_lineno,
                    seed_line=seed_line,
                    after_generated_lineno=candidates[start - 1][0] if start else 0,
                    nearest=tuple(nearest),
                    elsewhere=tuple(elsewhere[:3]),
                )
            )
            break
    return misses


def format_misses(misses: list[Miss], seed_name: str, generated_name: str) -> str:
    """A failure message that names the section and line and shows what was generated instead."""
    parts: list[str] = []
    for miss in misses:
        if miss.section_missing:
            parts.append(
                f"section {miss.section}: {generated_name} has no `{miss.seed_line}` section "
                f"(seed {seed_name}:{miss.seed_lineno}); was the operation renamed or dropped?"
            )
            continue
        where = (
            f"after generated line {miss.after_generated_lineno}"
            if miss.after_generated_lineno
            else "from the section's start"
        )
        lines = [
            f"section {miss.section}: seed line {seed_name}:{miss.seed_lineno} not found in order ({where}):",
            f"    seed      {miss.seed_line!r}",
        ]
        lines += [f"    generated {generated_name}:{number} {text!r}" for number, text in miss.nearest]
        lines += [
            f"    (the exact line is in section {other}, {generated_name}:{number})" for other, number in miss.elsewhere
        ]
        parts.append("\n".join(lines))
    return "\n".join(parts)
