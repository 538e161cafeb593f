"""A CPython bug the suite works around: `ast.parse` is not safe in threads (CPython 3.11, gh-106905).

Building the AST of a parse keeps a recursion counter in state the threads share; two parses at
once (Hypothesis reads the source of a lambda or a state machine to describe or seed it, inspect
reads a check's) end in `SystemError: AST constructor recursion depth mismatch`. Checks side by
side (--workers) hit it within a few runs. One lock around `ast.parse` while they run makes
parses take turns; they are few (their results are cached), so the lock costs nothing to see.
"""

from __future__ import annotations

import ast
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["parses_take_turns"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def parses_take_turns() -> Iterator[None]:
    """Inside the block, `ast.parse` (and so inspect.getsource's parse) runs one thread at a time."""
    original = ast.parse

    def parse(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(*args, **kwargs)

    ast.parse = parse
    try:
        yield
    finally:
        ast.parse = original
