"""External tools the tests need (Java's OpenAPI Generator, npm packages, Chromium), and generated files.

Under CI (CI=true) a missing tool is a failure: .ci/run installs them all. On a laptop the test
is skipped with the reason, so `pytest` still runs everything else.
"""

from __future__ import annotations

import difflib
import os
import shutil
import socket
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


UPDATE_ENV = "RUNS_UPDATE_SNAPSHOTS"  # =1: the tests that keep generated files current rewrite them


def keep_generated(path: Path, current: str, source: str, test_file: str) -> None:
    """`path` must hold `current` (generated from `source`); with RUNS_UPDATE_SNAPSHOTS=1 it is rewritten."""
    if os.environ.get(UPDATE_ENV) == "1":
        if not path.is_file() or path.read_text(encoding="utf-8") != current:
            path.write_text(current, encoding="utf-8")
        return
    shown = path.read_text(encoding="utf-8") if path.is_file() else ""
    if shown != current:
        diff = difflib.unified_diff(shown.splitlines(), current.splitlines(), "docs", source, lineterm="", n=0)
        pytest.fail(
            f"{path.relative_to(ROOT)} is not the {source}'s:\n"
            + "\n".join(diff)
            + f"\nregenerate it: `{UPDATE_ENV}=1 pytest {test_file}`",
            pytrace=False,
        )


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick), for a server started as a process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
