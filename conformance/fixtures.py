"""The workflows the suite drives: quick, long and failing (conformance/fixtures.yaml, or the user's file)."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from conformance.outcomes import Skipped

__all__ = ["Fixtures"]


class Fixtures:
    """The workflows the suite drives: quick, long and failing."""

    NAMES = ("quick", "long", "failing")

    def __init__(self, workflows: dict[str, Any], source: str) -> None:
        self._workflows = workflows
        self.source = source

    @classmethod
    def default(cls) -> Fixtures:
        text = (resources.files("conformance") / "fixtures.yaml").read_text(encoding="utf-8")
        return cls(yaml.safe_load(text), "the suite's default fixtures")

    @classmethod
    def from_file(cls, path: Path) -> Fixtures:
        """Raises ValueError with a one-line reason when the file is not a fixtures file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read fixtures file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"fixtures file {path} must map names ({', '.join(cls.NAMES)}) to workflows")
        unknown = set(data) - set(cls.NAMES)
        if unknown:
            raise ValueError(f"fixtures file {path} has unknown keys {sorted(unknown)}; known: {list(cls.NAMES)}")
        return cls(data, str(path))

    def has(self, name: str) -> bool:
        return name in self._workflows

    def workflow(self, name: str) -> dict[str, Any]:
        """A fresh copy of a fixture workflow, or Skipped when the fixtures lack it."""
        if name not in self._workflows:
            raise Skipped(f"no '{name}' workflow in {self.source} (give one with --fixtures)")
        return copy.deepcopy(self._workflows[name])
