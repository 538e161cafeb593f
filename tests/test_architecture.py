"""The import rules of ARCHITECTURE.md, enforced: a layer never reaches up or sideways."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def project_imports(path: Path) -> set[str]:
    """Dotted names of the project modules that `path` imports (conformance.*, reference_impl.*)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in {"conformance", "reference_impl"}}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def forbidden(path: Path, prefixes: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(name for name in project_imports(path) if _within(name, prefixes) and not _within(name, allowed))


def test_spec_and_catalog_import_nothing_of_the_project() -> None:
    for name in ("spec.py", "catalog.py"):
        assert project_imports(ROOT / "conformance" / name) == set(), name


@pytest.mark.parametrize("path", modules("conformance/checks"), ids=lambda p: p.name)
def test_checks_do_not_import_the_runner_reports_or_server(path: Path) -> None:
    bad = forbidden(
        path,
        (
            "reference_impl",
            "conformance.runner",
            "conformance.cli",
            "conformance.report",
            "conformance.pytest_plugin",
            "conformance.preflight",
            "conformance.diff",
            "conformance.baseline",
        ),
    )
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}: checks stay below the runner (ARCHITECTURE.md)"


@pytest.mark.parametrize("path", modules("conformance/checks"), ids=lambda p: p.name)
def test_a_check_module_imports_no_other_check_module(path: Path) -> None:
    # Shared helpers live in conformance/ (check_helpers, watcher, listing, ...): a check module is a leaf,
    # so moving or splitting one never breaks another.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = [node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
    bad = sorted(n for n in project_imports(path) if n.startswith("conformance.checks.")) + relative
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}: a check module imports no other check module"


@pytest.mark.parametrize(
    "path",
    [p for p in modules("conformance") if p.parts[-2] == "report" or p.name in {"diff.py", "baseline.py", "gate.py"}],
    ids=lambda p: p.name,
)
def test_report_writers_read_only_the_results_model(path: Path) -> None:
    bad = forbidden(
        path,
        ("conformance", "reference_impl"),
        allowed=(
            "conformance.results",
            "conformance.gate",
            "conformance.catalog",
            "conformance.report",
            "conformance.baseline",
            "conformance.redaction",
        ),
    )
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}: report writers read only RunReport (ARCHITECTURE.md)"


HISTORY_MODULES = sorted((ROOT / "conformance").glob("history*.py"))


@pytest.mark.parametrize("path", HISTORY_MODULES, ids=lambda p: p.name)
def test_history_modules_know_only_the_spec(path: Path) -> None:
    # A workload, the checks and a report may all build on them; they build on the contract and on
    # meaning.py (what the server's data means: instants, JSON equality), nothing else.
    allowed = ("conformance.spec", "conformance.meaning", *(f"conformance.{p.stem}" for p in HISTORY_MODULES))
    bad = forbidden(path, ("conformance", "reference_impl"), allowed=allowed)
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}: history modules import only the spec and meaning"


@pytest.mark.parametrize("path", modules("reference_impl"), ids=lambda p: p.name)
def test_reference_server_knows_only_the_spec_of_the_suite(path: Path) -> None:
    bad = forbidden(path, ("conformance",), allowed=("conformance.spec",))
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}: the server must not know how it is tested"


@pytest.mark.parametrize("name", ["store.py", "executor.py"])
def test_store_and_executor_know_no_http(name: str) -> None:
    path = ROOT / "reference_impl" / name
    if not path.exists():
        pytest.skip(f"reference_impl/{name} does not exist")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(n.split(".")[0] in {"starlette", "uvicorn", "httpx"} for n in imported), imported


def test_only_embedded_imports_the_reference_server() -> None:
    users = [
        p.relative_to(ROOT).as_posix()
        for p in modules("conformance")
        if any(n.startswith("reference_impl") for n in project_imports(p))
    ]
    assert set(users) <= {"conformance/embedded.py"}, users


# --- the tests' own layout ----------------------------------------------------------------------------

TESTS = ROOT / "tests"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


TEST_PY = sorted(TESTS.rglob("*.py"))


@pytest.mark.parametrize("path", TEST_PY, ids=lambda p: p.relative_to(TESTS).as_posix())
def test_nothing_imports_conftest_or_a_test_module(path: Path) -> None:
    # conftest.py is pytest's, for fixtures; a test module is for tests. What they share is in tests/support.
    bad = sorted(
        name
        for name in imported_modules(path)
        if name.removeprefix("tests.").split(".")[0] == "conftest"
        or name.removeprefix("tests.").split(".")[0].startswith("test_")
    )
    assert bad == [], f"tests/{path.relative_to(TESTS)} imports {bad}: import helpers from tests/support instead"


@pytest.mark.parametrize("path", TEST_PY, ids=lambda p: p.relative_to(TESTS).as_posix())
def test_support_is_imported_as_support(path: Path) -> None:
    # tests/ is on sys.path, so `support.x` is the one name: `tests.support.x` would load a second copy.
    bad = sorted(name for name in imported_modules(path) if name == "tests" or name.startswith("tests."))
    assert bad == [], f"tests/{path.relative_to(TESTS)} imports {bad}: import support.<module> instead"


def test_helpers_are_only_defined_under_tests_support() -> None:
    # A newcomer finds every helper, fault and variant in one package; tests/ holds only tests and fixtures.
    stray = [
        p.relative_to(TESTS).as_posix()
        for p in TEST_PY
        if p.parent != TESTS / "support"
        and not (p.parent == TESTS and (p.name == "conftest.py" or p.name.startswith("test_")))
    ]
    assert stray == [], f"{stray}: put helpers in tests/support (and say what they hold in its __init__.py)"
    assert (TESTS / "support" / "__init__.py").is_file()
    assert not [p.name for p in (TESTS / "support").glob("test_*.py")], "tests/support holds no tests"


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda p: p.name)
def test_a_test_module_holds_tests(path: Path) -> None:
    # A test_*.py of helpers alone is a helper module in disguise: it belongs in tests/support.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tests = [
        node.name
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name.startswith("test_"))
        or (isinstance(node, ast.ClassDef) and node.name.startswith("Test"))
    ]
    assert tests, f"tests/{path.name} defines no test: move its helpers to tests/support"


def unbound_assertions(path: Path) -> list[int]:
    """Lines of `path` where ctx.expect/ctx.require is called without `on=`: the answer it judges."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"expect", "require"}
            and isinstance(node.func.value, ast.Name | ast.Attribute)
            and (node.func.value.id if isinstance(node.func.value, ast.Name) else node.func.value.attr) == "ctx"
            and not any(keyword.arg == "on" for keyword in node.keywords)
        ):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", modules("conformance"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_assertion_names_the_answer_it_judges(path: Path) -> None:
    lines = unbound_assertions(path)
    assert lines == [], (
        f"{path.relative_to(ROOT)}:{lines}: ctx.expect/require without on=; name the answer(s) the assertion "
        "judges, so that an assertion over no answer is never counted (conformance/context.py)"
    )


def test_the_rule_sees_an_unbound_assertion(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('ctx.expect("X-1", True, "m")\nself.ctx.require("X-1", True, "m", on=r)\n', encoding="utf-8")
    assert unbound_assertions(sample) == [1]
