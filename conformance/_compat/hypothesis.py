"""Hypothesis internals the suite relies on (tested against the version pinned in pyproject.toml).

- Where Hypothesis keeps its storage (Unicode tables, collected constants): the public
  HYPOTHESIS_STORAGE_DIRECTORY is read once, at the first access, which in a long-lived process
  (a team's pytest run) has happened before the suite starts. `set_hypothesis_home_dir` sets it
  at any time; restoring the previous value afterwards needs the module's private global.
Seeding uses the public `hypothesis.seed` (conformance.seeding), never `global_force_seed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import hypothesis.configuration as _configuration

__all__ = ["storage_directory"]

_HOME = "__hypothesis_home_directory"  # hypothesis/configuration.py: the memoised storage directory


@contextlib.contextmanager
def storage_directory(directory: Path) -> Iterator[None]:
    """Hypothesis keeps its storage in `directory` inside the block, and where it was after it."""
    previous = getattr(_configuration, _HOME)
    _configuration.set_hypothesis_home_dir(directory)
    try:
        yield
    finally:
        setattr(_configuration, _HOME, previous)
