"""Smoke tests of conformance/_compat against the pinned Schemathesis and Hypothesis.

Each private API the suite reaches into is exercised here, fast and without a server, so an upgrade
that moves one fails here by name rather than as a confusing suite error mid-run.
"""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import hypothesis.configuration
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from conformance._compat.cpython import install_ast_guard
from conformance._compat.hypothesis import storage_directory
from conformance._compat.schemathesis import build_operation_test, is_negative
from conformance.spec import load_spec


def test_hypothesis_storage_moves_and_comes_back(tmp_path: Path) -> None:
    before = hypothesis.configuration.storage_directory("probe", intent_to_write=False).path
    with storage_directory(tmp_path):
        inside = hypothesis.configuration.storage_directory("probe", intent_to_write=False).path
    after = hypothesis.configuration.storage_directory("probe", intent_to_write=False).path
    assert inside == tmp_path / "probe"
    assert after == before


def _list_runs_cases(mode: Any) -> list[Any]:
    raw = copy.deepcopy(load_spec())
    raw["servers"] = [{"url": "http://127.0.0.1:9"}]
    schema = schemathesis.openapi.from_dict(raw)
    schema.config.update(base_url="http://127.0.0.1:9")
    schema.config.generation.update(max_examples=10, database="none", modes=[mode])
    operation = next(
        r.ok() for r in schema.get_all_operations() if r.ok().definition.raw.get("operationId") == "listRuns"
    )
    cases: list[Any] = []

    def collect(case: Any) -> None:
        cases.append(case)

    quiet = settings(database=None, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    build_operation_test(schema.config, operation, collect, quiet)()
    return cases


def test_schemathesis_builds_an_operation_test_and_tells_negative_cases_apart() -> None:
    positive = _list_runs_cases(schemathesis.GenerationMode.POSITIVE)
    negative = _list_runs_cases(schemathesis.GenerationMode.NEGATIVE)
    assert positive and negative
    assert not any(is_negative(case) for case in positive)
    assert any(is_negative(case) for case in negative)


# Two threads build ASTs at different stack depths while a gc callback hands the GIL over, as
# Hypothesis' gc timer does: without the guard, CPython 3.11.7 raises "AST constructor recursion depth
# mismatch" within seconds (5 of 5 tries, 0.6-7 s). One thread uses ast.parse, the other compile().
_AST_RACE = """
import ast, gc, sys, threading, time
from conformance._compat.cpython import install_ast_guard
if sys.argv[1] == "guarded":
    install_ast_guard()
SOURCE = "\\n".join(f"def f{i}(a, b=[1, {{'k': (3, 4)}}]):\\n    return [x * a for x in b if x]" for i in range(300))
stop = time.monotonic() + float(sys.argv[2])
errors = []
gc.callbacks.append(lambda phase, info: time.sleep(0))
def shallow():
    while time.monotonic() < stop and not errors:
        try:
            ast.parse(SOURCE)
        except SystemError as exc:
            errors.append(exc)
def deep(n=40):
    if n:
        return deep(n - 1)
    while time.monotonic() < stop and not errors:
        try:
            compile(SOURCE, "<deep>", "exec", ast.PyCF_ONLY_AST)
        except SystemError as exc:
            errors.append(exc)
threads = [threading.Thread(target=shallow), threading.Thread(target=deep)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors[0] if errors else "ok")
"""


def test_ast_construction_survives_threads_and_gc() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _AST_RACE, "guarded", "3"], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "ok", done.stdout


def test_the_ast_guard_keeps_what_compile_inherits_and_returns() -> None:
    install_ast_guard()
    namespace: dict[str, Any] = {}
    # This module has `from __future__ import annotations`: compile() inherits it from here, not from
    # the guard, so the annotation stays a string; dont_inherit=True drops it as the builtin does.
    exec(compile("def f(x: int): pass", "<t>", "exec"), namespace)
    assert namespace["f"].__annotations__ == {"x": "int"}
    exec(compile("def g(x: int): pass", "<t>", "exec", dont_inherit=True), namespace)
    assert namespace["g"].__annotations__ == {"x": int}
    tree = compile("a + 1", "<t>", "eval", ast.PyCF_ONLY_AST)
    assert isinstance(tree, ast.Expression)
    assert eval(compile(tree, "<t>", "eval"), {"a": 2}) == 3
