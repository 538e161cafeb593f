"""A CPython bug the suite works around: building AST objects is not thread-safe before 3.11.8 / 3.12.2.

The cause (gh-106905): the AST constructor (`ast2obj`, which turns a parse into `ast` objects for
`ast.parse` and `compile(..., PyCF_ONLY_AST)`) keeps its recursion depth in interpreter state that
all threads share. It sets the depth from its own thread's stack at the start and raises
`SystemError: AST constructor recursion depth mismatch` when the depth differs at the end. It runs no
Python code itself, so it keeps the GIL, except when an allocation starts a garbage collection: gc
callbacks run Python code there (Hypothesis installs one to time collections) and the GIL can pass
to another thread. If that thread builds an AST too, at another stack depth, the first thread's
correct tree ends in the SystemError. Busy machines switch threads more often, so it struck under a
CPU hog or a second run; Hypothesis, inspect, traceback (3.11 parses lines for its carets), anyio's
lazy imports and pytest all build ASTs, some with `compile` directly rather than `ast.parse`.

The guard: on the affected versions, every compile that builds or reads AST objects takes one lock
and runs with the garbage collector paused, so no two AST constructions overlap and none is
interrupted on its own thread. It is installed once for the process (never removed: a run inside
pytest may overlap another), costs a Python call per `compile`, and is a no-op on fixed versions.
Reproduced by tests/test_compat.py::test_ast_construction_survives_threads_and_gc.
"""

import __future__

import ast
import builtins
import contextlib
import functools
import gc
import operator
import sys
import threading
from typing import Any

__all__ = ["AFFECTED", "install_ast_guard"]

# The fix ("use a separate structure to carry recursion depth") shipped in 3.11.8 and 3.12.2.
AFFECTED = sys.implementation.name == "cpython" and (
    sys.version_info[:3] < (3, 11, 8) or (3, 12) <= sys.version_info[:3] < (3, 12, 2)
)

_LOCK = threading.RLock()
_INSTALL = threading.Lock()
# The __future__ flags compile() inherits from its caller unless told not to (PyCF_MASK).
_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, name).compiler_flag for name in __future__.all_feature_names)
)


def _guarded(original: Any) -> Any:
    def compile(
        source: Any, filename: Any, mode: str, flags: int = 0, dont_inherit: bool = False, optimize: int = -1, **kw: Any
    ) -> Any:
        if not dont_inherit:
            # What the builtin would take from its caller's frame; this wrapper's frame is not it.
            with contextlib.suppress(ValueError):  # called with no Python frame above: nothing to inherit
                flags |= sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS
        if not (flags & ast.PyCF_ONLY_AST or isinstance(source, ast.AST)):
            return original(source, filename, mode, flags, True, optimize, **kw)
        with _LOCK:
            collecting = gc.isenabled()
            gc.disable()
            try:
                return original(source, filename, mode, flags, True, optimize, **kw)
            finally:
                if collecting:
                    gc.enable()

    compile.__wrapped__ = original  # type: ignore[attr-defined]
    return compile


def install_ast_guard() -> None:
    """From now on (idempotent), AST constructions take turns on the CPython versions that need it."""
    if not AFFECTED:
        return
    with _INSTALL:
        if not hasattr(builtins.compile, "__wrapped__"):
            builtins.compile = _guarded(builtins.compile)
