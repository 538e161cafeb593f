"""The pytest plugin: one item per requirement with --runs-conformance, nothing at all without it."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

pytest_plugins = ["pytester"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in a subprocess, as a team would: an in-process run shares sys.modules with this
    one, and pytester's module snapshot then leaves httpx holding a stale httpcore."""
    # Installed, the plugin loads through its pytest11 entry point; from a source tree, by name.
    installed = any(ep.name == "runs_conformance" for ep in importlib.metadata.entry_points(group="pytest11"))
    return pytester.runpytest_subprocess(*([] if installed else ["-p", "conformance.pytest_plugin"]), *args)


def test_plugin_is_inert_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own():\n    assert True\n")
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    # No requirement items and no summary line (the "plugins:" header may name the installed plugin).
    assert "::runs-conformance::" not in out and "runs-conformance: " not in out
    assert not (pytester.path / "reports").exists()


def test_plugin_mirrors_the_runner_per_requirement(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own():\n    assert True\n")
    result = _run(
        pytester, "--runs-conformance", "--runs-profile", "quick",
        "--runs-select", "auth", "--runs-select", "ERR-010", "-v",
    )  # fmt: skip
    result.assert_outcomes(passed=8)  # own test + AUTH-001..006 + ERR-010
    result.stdout.fnmatch_lines(["*runs-conformance::AUTH-003 PASSED*", "*runs-conformance: conformant*"])
    report = json.loads((pytester.path / "reports" / "conformance.json").read_text())
    assert report["verdict"] == "conformant"


def test_plugin_reports_an_unreachable_server(pytester: pytest.Pytester) -> None:
    from support.hostile_servers import closed_port

    result = _run(
        pytester, "--runs-conformance", "--runs-token", "t",
        "--runs-base-url", f"http://127.0.0.1:{closed_port()}", "--runs-select", "AUTH-001",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot reach*"])


def test_plugin_session_fails_when_the_run_is_incomplete(pytester: pytest.Pytester, reference_url: str) -> None:
    from support.tokens import TOKEN

    # One token: IDEM-007 cannot be verified, so its item skips, yet the session must not be green.
    result = _run(
        pytester, "--runs-conformance", "--runs-base-url", reference_url, "--runs-token", TOKEN,
        "--runs-select", "IDEM-007", "--runs-profile", "quick",
    )  # fmt: skip
    result.assert_outcomes(skipped=1)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*runs-conformance: incomplete*"])


def test_plugin_offers_every_option_of_the_cli(pytester: pytest.Pytester) -> None:
    from conformance.options import OPTIONS

    text = _run(pytester, "--help").stdout.str()
    missing = [option.pytest_flag for option in OPTIONS if option.pytest_flag not in text]
    assert not missing, missing
