"""A real client against the reference server: the TypeScript axios client generated from the spec.

OpenAPI Generator writes the client into a fresh temp folder, tsc compiles it with
tests/ts_client/smoke.ts, and node runs the script against a live server. Needs Java (the
generator), node, and tools/node_modules (typescript, axios): missing tools skip locally, fail in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.reference_server import TOKEN, running_server
from support.tooling import ROOT, TOOLS, node_tool, require_command

from conformance.spec import spec_path

HERE = Path(__file__).resolve().parent / "ts_client"


def _run(args: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.mark.slow
def test_generated_typescript_client_walks_the_api(tmp_path: Path) -> None:
    generator = shutil.which("openapi-generator-cli") or str(Path(sys.executable).parent / "openapi-generator-cli")
    if not Path(generator).exists():
        require_command("openapi-generator-cli")
    require_command("java")
    node = require_command("node")
    tsc = node_tool("tsc")
    assert (TOOLS / "node_modules" / "axios").is_dir(), "tools/node_modules has no axios"

    _run(
        [generator, "generate", "-g", "typescript-axios", "-i", str(spec_path()), "-o", str(tmp_path / "client")],
        cwd=tmp_path,
        timeout=180,
    )
    shutil.copy(HERE / "smoke.ts", tmp_path / "smoke.ts")
    shutil.copy(HERE / "tsconfig.json", tmp_path / "tsconfig.json")
    # The generated code imports axios: resolve it from the pinned tools/node_modules.
    (tmp_path / "node_modules").symlink_to(TOOLS / "node_modules", target_is_directory=True)
    _run([str(tsc), "-p", str(tmp_path / "tsconfig.json")], cwd=tmp_path, timeout=180)

    with running_server() as url:
        env = {**os.environ, "RUNS_BASE_URL": url, "RUNS_TOKEN": TOKEN}
        output = _run([node, str(tmp_path / "out" / "smoke.js")], cwd=ROOT, timeout=60, env=env)
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["pages"] == 3
    assert summary["cancelStatus"] in {"cancelling", "cancelled"}
