"""One table of options: CLI flags, pytest options, environment variables and the config file agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.config import RunConfig
from conformance.options import OPTIONS, UsageError, documented, resolve

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_documents_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- options:start[^>]*-->\n(.*?)\n<!-- options:end -->", readme, re.DOTALL)
    assert found is not None, "README.md has no options block"
    assert found.group(1) == documented(), "README's options table is stale: paste conformance.options.documented()"


def test_defaults_are_declared_once() -> None:
    config = RunConfig.from_sources({}, env={}, cwd=Path("/nonexistent"))
    for option in OPTIONS:
        assert getattr(config, option.name) == option.default, option.name
        assert getattr(RunConfig(), option.name) == option.default, f"RunConfig's default for {option.name}"


def test_the_command_line_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    (tmp_path / "runs-conformance.toml").write_text(
        'profile = "thorough"\ntimeout = 5\nselect = ["IDEM-001", "etag"]\nbaseline = "known.yaml"\n', encoding="utf-8"
    )
    env = {"RUNS_PROFILE": "quick", "RUNS_REQUEST_TIMEOUT": "2.5", "RUNS_BASE_URL": "http://env:1"}
    values = resolve({"profile": None, "timeout": 7.0}, env=env, cwd=tmp_path)
    assert values["profile"] == "quick"  # environment over file
    assert values["timeout"] == 7.0  # command line over file
    assert values["request_timeout"] == 2.5  # environment over default
    assert values["select"] == ("IDEM-001", "etag")  # file over default
    assert values["baseline"] == tmp_path / "known.yaml"  # relative to the file, not to the working directory
    assert values["base_url"] == "http://env:1"  # $RUNS_BASE_URL serves the CLI too, not only the plugin


def test_pyproject_table_is_read_and_other_pyprojects_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert resolve({}, env={}, cwd=tmp_path)["profile"] == "default"
    (tmp_path / "pyproject.toml").write_text("[tool.runs-conformance]\nstrict = true\n", encoding="utf-8")
    assert resolve({}, env={}, cwd=tmp_path)["strict"] is True


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('token = "abc"', "does not belong in a file"),
        ('other-token = "abc"', "does not belong in a file"),
        ('colour = "red"', "unknown key 'colour'"),
        ("timeout = -1", "must be more than 0 seconds"),
        ('strict = "yes"', "must be true or false"),
        ("profile = [", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_a_one_line_usage_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "runs-conformance.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        resolve({}, env={}, config_file=path)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_environment_value_names_its_variable() -> None:
    with pytest.raises(UsageError, match=r"\$RUNS_TIMEOUT: 'soon' is not a number of seconds"):
        resolve({}, env={"RUNS_TIMEOUT": "soon"})


def test_the_cli_reads_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    path = tmp_path / "suite.toml"
    path.write_text('profile = "fast"\n', encoding="utf-8")
    assert main(["run", "--config", str(path), "--report-dir", str(tmp_path)]) == 2
    assert "unknown profile 'fast'" in capsys.readouterr().err
