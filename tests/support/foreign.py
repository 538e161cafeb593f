"""Traffic recorded by tools nobody here wrote: the generated TypeScript client, through mitmproxy's `mitmdump`.

`build_ts_driver` has OpenAPI Generator write the typescript-axios client from the spec and compiles a
script of tests/ts_client/ against it; `recording_proxy` runs `mitmdump` as a reverse proxy in front
of a server and, when the block ends, stops it with SIGINT so that its HAR export writes the file.
The command it runs is docs/observe.md's recipe, read from the doc, so the doc's works as written.

mitmproxy is not in the `test` extra: mitmproxy 11.0.2 (the last for Python 3.11) pins
ruamel.yaml<=0.18.6, and check-jsonschema 0.39 needs >=0.18.10, so pip cannot install both into one
environment. `mitmdump` is a program here, not a library, so it gets a virtualenv of its own
(tools/mitmproxy/venv, from the pin in tools/mitmproxy/requirements.txt), installed on first use as
node_tool installs npm's; tests/test_observe_live.py runs the live proxy's mitmdump from here too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.spec import spec_path

from .tooling import ROOT, TOOLS, _missing, node_tool, require_command

__all__ = ["build_ts_driver", "documented_mitmdump", "mitmdump", "recording_proxy", "run_checked"]

TS_CLIENT = Path(__file__).resolve().parents[1] / "ts_client"
MITM_PIN = TOOLS / "mitmproxy" / "requirements.txt"
MITM_VENV = TOOLS / "mitmproxy" / "venv"  # ignored by git, as every venv/ is
# mitmdump's first line once it listens, e.g. "[23:35:04.387] reverse proxy to http://... listening at 127.0.0.1:60779."
_LISTENING = re.compile(r"listening at ([0-9.]+):([0-9]+)")
_RECIPE = re.compile(r"^    (mitmdump --mode reverse:.*)$", re.MULTILINE)


def run_checked(args: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a tool; a failure fails the test with the end of its output."""
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def build_ts_driver(directory: Path, script: str) -> Path:
    """Generate the client into `directory`, compile tests/ts_client/`script` (a .ts file) against it, and
    return the compiled .js. Skips (fails under CI) without Java, node or the generator."""
    generator = shutil.which("openapi-generator-cli") or str(Path(sys.executable).parent / "openapi-generator-cli")
    if not Path(generator).exists():
        require_command("openapi-generator-cli")
    require_command("java")
    require_command("node")
    tsc = node_tool("tsc")
    run_checked(
        [generator, "generate", "-g", "typescript-axios", "-i", str(spec_path()), "-o", str(directory / "client")],
        cwd=directory,
        timeout=180,
    )
    shutil.copy(TS_CLIENT / script, directory / script)
    config = json.loads((TS_CLIENT / "tsconfig.json").read_text(encoding="utf-8"))
    config["files"] = [script]
    (directory / "tsconfig.json").write_text(json.dumps(config), encoding="utf-8")
    # The generated code imports axios: resolve it from the pinned tools/node_modules.
    (directory / "node_modules").symlink_to(TOOLS / "node_modules", target_is_directory=True)
    run_checked([str(tsc), "-p", str(directory / "tsconfig.json")], cwd=directory, timeout=180)
    return directory / "out" / script.replace(".ts", ".js")


def mitmdump() -> str:
    """The `mitmdump` program: on PATH or beside this Python, else tools/mitmproxy's, installed from the pin."""
    found = shutil.which("mitmdump") or shutil.which("mitmdump", path=str(Path(sys.executable).parent))
    if found:
        return found
    binary = MITM_VENV / "bin" / "mitmdump"
    # CI's fast jobs on Python 3.12 and 3.13 run at once in one checkout: one installs while the other
    # waits on the lock, then finds the program there, rather than both clearing one venv under each other.
    # Looked for under the lock too: pip writes the script before it has finished the install.
    MITM_VENV.parent.mkdir(parents=True, exist_ok=True)
    with (MITM_VENV.parent / "venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            venv.create(MITM_VENV, with_pip=True, clear=True)
            proc = subprocess.run(
                [str(MITM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(MITM_PIN)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if proc.returncode != 0 or not binary.exists():
                _missing(f"pip could not install mitmproxy into {MITM_VENV}: {proc.stderr.strip()[-300:]}")
    return str(binary)


def documented_mitmdump(upstream: str, har: Path) -> list[str]:
    """docs/observe.md's mitmdump command, in front of `upstream`, on a port the system picks, writing `har`."""
    found = _RECIPE.search((ROOT / "docs" / "observe.md").read_text(encoding="utf-8"))
    assert found, "docs/observe.md has no indented `mitmdump --mode reverse:...` command"
    args = shlex.split(found.group(1))
    replaced = 0
    for at, arg in enumerate(args):
        if arg.startswith("reverse:"):
            args[at], replaced = f"reverse:{upstream}", replaced + 1
        elif arg.startswith("hardump="):
            args[at], replaced = f"hardump={har}", replaced + 1
        elif at and args[at - 1] == "--listen-port":
            args[at], replaced = "0", replaced + 1  # the system's pick, announced on mitmdump's first line
    assert replaced == 3, f"docs/observe.md's command lacks its upstream, port or file: {found.group(1)}"
    return args


@contextlib.contextmanager
def recording_proxy(upstream: str, har: Path, timeout: float = 20.0) -> Iterator[str]:
    """`mitmdump` in reverse mode in front of `upstream`, recording to the HAR file `har`; yields its base URL.

    It listens on a port the system picks and says which on its first line: that line, polled against
    a deadline, is the readiness signal. On exit, SIGINT: mitmdump's shutdown is what writes the HAR."""
    log = har.with_suffix(".mitmdump.log")
    confdir = har.parent / "mitmproxy-conf"  # its CA files, kept out of the home folder
    # The doc says `mitmdump`; this one may be tools/mitmproxy's.
    args = [mitmdump(), *documented_mitmdump(upstream, har)[1:], "--set", f"confdir={confdir}"]
    with log.open("w", encoding="utf-8") as output:
        proc = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while (found := _LISTENING.search(log.read_text(encoding="utf-8", errors="replace"))) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mitmdump did not start listening:\n{log.read_text(encoding='utf-8', errors='replace')}")
            time.sleep(0.02)
        yield f"http://{found.group(1)}:{found.group(2)}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"mitmdump did not stop on SIGINT within {timeout} s")
    if not har.is_file():
        pytest.fail(f"mitmdump wrote no HAR:\n{log.read_text(encoding='utf-8', errors='replace')}")
