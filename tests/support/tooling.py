"""External tools the tests need (Java's OpenAPI Generator, npm packages, Chromium).

Under CI (CI=true) a missing tool is a failure: .ci/run installs them all. On a laptop the test
is skipped with the reason, so `pytest` still runs everything else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(reason)


def require_command(name: str) -> str:
    """The path of a command on PATH, or skip (fail under CI)."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} is not installed")
    assert path is not None
    return path


def node_tool(name: str) -> Path:
    """A binary from tools/node_modules/.bin, installing tools/package.json's pins if needed."""
    binary = TOOLS / "node_modules" / ".bin" / name
    if not binary.exists():
        npm = require_command("npm")
        proc = subprocess.run(
            [npm, "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund", "--loglevel=error"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0 or not binary.exists():
            _missing(f"npm could not install {name}: {proc.stderr.strip()[-300:]}")
    return binary
