"""The requirement catalog: conformance/requirements.yaml as typed, read-only data."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import yaml

# libyaml when the wheel has it: six times faster on the spec, same data.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["MAX_INSTANCE_CHARS", "Level", "Requirement", "catalog", "requirement"]

MAX_INSTANCE_CHARS = 160


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    area: str
    statement: str
    instance: str  # one line: what one evaluation of it is (its premise, and what an answer is judged on)
    operations: tuple[str, ...]
    spec_ref: str
    rfc_ref: str | None

    @property
    def citation(self) -> str:
        return f"{self.spec_ref} ({self.rfc_ref})" if self.rfc_ref else self.spec_ref


def _instance(entry: dict[str, Any]) -> str:
    # A pass counts instances, so what one is must be written down for every rule, and short enough
    # to stand in one line of a table.
    value = entry.get("instance")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{entry.get('id')}: no `instance` line saying what one evaluation of it is")
    if "\n" in value.strip() or len(value) > MAX_INSTANCE_CHARS:
        raise ValueError(f"{entry.get('id')}: `instance` must be one line of at most {MAX_INSTANCE_CHARS} characters")
    return value.strip()


def _parse(entry: dict[str, Any], areas: set[str]) -> Requirement:
    citation = entry["citation"]
    req = Requirement(
        id=entry["id"],
        level=Level(entry["level"]),
        area=entry["area"],
        statement=entry["statement"],
        instance=_instance(entry),
        operations=tuple(entry["operations"]),
        spec_ref=citation["spec"],
        rfc_ref=citation.get("rfc"),
    )
    if req.area not in areas:
        raise ValueError(f"{req.id}: area {req.area!r} is not one of {sorted(areas)}")
    return req


@functools.cache
def catalog() -> dict[str, Requirement]:
    """Every requirement by ID, in catalog order."""
    text = (resources.files("conformance") / "requirements.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_YAML_LOADER)
    areas = set(data["areas"])
    result: dict[str, Requirement] = {}
    for entry in data["requirements"]:
        req = _parse(entry, areas)
        if req.id in result:
            raise ValueError(f"requirement ID {req.id} appears twice in requirements.yaml")
        result[req.id] = req
    return result


def requirement(req_id: str) -> Requirement:
    try:
        return catalog()[req_id]
    except KeyError:
        raise KeyError(f"no requirement {req_id!r} in the catalog") from None
