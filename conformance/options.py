"""Every option of a run, declared once: the CLI flags, the pytest options, the environment
variables and the config file all come from OPTIONS, with one set of defaults.

Where a value comes from, strongest first: the command line (or pytest option), the environment
(`RUNS_<NAME>`), the config file (`runs-conformance.toml`, or `[tool.runs-conformance]` in
pyproject.toml, in the working directory, or the file given with --config), then the default.
Tokens are never read from a config file: a file gets committed, a token must not.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CONFIG_NAMES", "OPTIONS", "Option", "UsageError", "add_arguments", "find_config_file", "resolve"]

CONFIG_NAMES = ("runs-conformance.toml", "pyproject.toml")
_PYPROJECT_TABLE = ("tool", "runs-conformance")


class UsageError(Exception):
    """The user asked for something the suite cannot do; the message is one line."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"must be more than 0 seconds, not {text}")
    return value


def _moment(text: str) -> float:
    """Seconds that may be 0: a point in time, or a margin."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be 0 seconds or more, not {text}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _count(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of {what}") from None
    if not 1 <= value <= 256:
        raise ValueError(f"must be from 1 to 256 {what}, not {text}")
    return value


def _workers(text: str) -> int | str:
    """A number of workers, or "auto"."""
    if text.strip().lower() == "auto":
        return "auto"
    return _count(text, "workers")


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not true or false")


def _words(text: str) -> tuple[str, ...]:
    return tuple(item for part in text.replace(",", " ").split() if (item := part.strip()))


@dataclass(frozen=True)
class Option:
    """One option. `name` is the RunConfig field; flags, variables and keys derive from it."""

    name: str
    help: str
    parse: Callable[[str], Any] = str  # text (flag, variable) -> value; raises ValueError
    default: Any = None
    kind: str = "value"  # "value", "flag" (store_true) or "list" (one or more words)
    metavar: str | None = None
    secret: bool = False  # never read from a config file
    short: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "RUNS_" + self.name.upper()

    @property
    def key(self) -> str:
        """The config file's key: base-url, request-timeout, ..."""
        return self.name.replace("_", "-")

    @property
    def pytest_flag(self) -> str:
        return "--runs-" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option(
        "base_url",
        "the server to test, e.g. https://host:8443; without it, the bundled reference server starts on a "
        "loopback port",
        metavar="URL",
    ),
    Option("token", "bearer token; never written to a report, a log or a curl line", secret=True),
    Option("other_token", "a second credential, for the checks that need one (key scoping)", secret=True),
    Option(
        "fixtures",
        "YAML file with your server's quick, long and failing workflows (see conformance/fixtures.yaml); a check "
        "whose fixture is missing is skipped, with that reason",
        parse=Path,
        metavar="FILE",
    ),
    Option(
        "profile",
        "example budgets: quick (every check once, a smoke run), default (the CI gate) or thorough",
        default="default",
    ),
    Option(
        "seed",
        "replays a run; printed at the start and end of every run (under CI=true runs are derandomised, seed 0 "
        "unless given)",
        parse=_seed,
    ),
    Option(
        "select",
        "only these requirements (IDEM-003), areas (pagination) or checks",
        parse=_words,
        default=(),
        kind="list",
        metavar="ID",
    ),
    Option("report_dir", "where the reports go", parse=Path, default=Path("reports"), metavar="DIR"),
    Option(
        "summary",
        "also write the run's Markdown summary to this file (under GitHub Actions, without it: appended to "
        "$GITHUB_STEP_SUMMARY, the job summary)",
        parse=Path,
        metavar="FILE",
    ),
    Option(
        "strict",
        "a failed SHOULD fails the run, and so does a stale baseline entry",
        parse=_flag,
        default=False,
        kind="flag",
    ),
    Option(
        "baseline",
        "accepted failures and skips, each with a reason and an expiry date (docs/ci-gate.md)",
        parse=Path,
        metavar="FILE",
    ),
    Option("timeout", "seconds a run may take to reach a status the suite waits for", parse=_seconds, default=30.0),
    Option("request_timeout", "seconds per HTTP request", parse=_seconds, default=10.0),
    Option("deadline", "seconds for the whole run (default: 300, 900 or 3600 by profile)", parse=_seconds),
    Option(
        "workers",
        "checks run side by side: a number, or auto (8: enough to hide a remote server's latency); 1 runs them "
        "one at a time, in order",
        parse=_workers,
        default="auto",
        metavar="N",
    ),
    Option(
        "workload_clients",
        "clients of the concurrent workload (default: 4, 8 or 16 by profile)",
        parse=lambda text: _count(text, "clients"),
        metavar="N",
    ),
    Option(
        "workload_seconds", "seconds the concurrent workload runs (default: 3, 10 or 60 by profile)", parse=_seconds
    ),
    Option(
        "require_coverage",
        "a documented response the run never observed fails the run (a baseline entry can accept one)",
        parse=_flag,
        default=False,
        kind="flag",
    ),
    Option(
        "events",
        "write the run's events as NDJSON to this file as they happen (- for stdout); see docs/results-format.md",
        metavar="FILE",
    ),
    Option("quiet", "no progress lines", parse=_flag, default=False, kind="flag", short="-q"),
    Option(
        "final_reads_after",
        "seconds the final reads wait after the checks, so that what a server keeps only for a while (a "
        "cache's TTL, a retention job) has had that long to lapse (default: 0, at once)",
        _moment,
        default=0.0,
        metavar="SECONDS",
    ),
    Option(
        "disrupt",
        "a shell command run while the concurrent workload runs (restart, failover, rollout); requests that fail "
        "around it are indeterminate (docs/disruption.md)",
        metavar="CMD",
    ),
    Option(
        "disrupt_at",
        "seconds into the concurrent workload at which --disrupt runs (default: its middle)",
        _moment,
        metavar="SECONDS",
    ),
    Option(
        "disrupt_grace",
        "seconds after the server answers again during which requests may still fail (default: twice "
        "--request-timeout)",
        _moment,
        metavar="SECONDS",
    ),
    Option(
        "disrupt_wait",
        "seconds the --disrupt command may take, and then the server to answer again",
        _seconds,
        default=30.0,
        metavar="SECONDS",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `run` subcommand's flags. Defaults stay None: resolve() knows which source won."""
    for option in OPTIONS:
        flags = [option.flag, *([option.short] if option.short else [])]
        help_text = f"{option.help} (${option.env}{_default_note(option)})"
        if option.kind == "flag":
            parser.add_argument(*flags, dest=option.name, action="store_true", default=None, help=help_text)
        elif option.kind == "list":
            parser.add_argument(
                *flags, dest=option.name, nargs="+", action="extend", default=None, metavar=option.metavar,
                help=help_text,
            )  # fmt: skip
        else:
            parser.add_argument(
                *flags, dest=option.name, type=_argparse_type(option), default=None, metavar=option.metavar,
                help=help_text,
            )  # fmt: skip
    parser.add_argument("--config", type=Path, metavar="FILE", help="a config file (default: runs-conformance.toml, "
                        "or [tool.runs-conformance] in pyproject.toml, in the working directory)")  # fmt: skip


def _argparse_type(option: Option) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = option.name  # argparse names the type in its message
    return convert


def _shown(value: Any) -> str:
    return str(value)


def _default_note(option: Option) -> str:
    return f"; default {_shown(option.default)}" if option.default not in (None, (), False) else ""


def find_config_file(directory: Path) -> Path | None:
    """runs-conformance.toml, else a pyproject.toml with a [tool.runs-conformance] table, in `directory`."""
    for name in CONFIG_NAMES:
        path = directory / name
        if path.is_file() and (name != "pyproject.toml" or _pyproject_table(path) is not None):
            return path
    return None


def _pyproject_table(path: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    table: Any = data
    for part in _PYPROJECT_TABLE:
        table = table.get(part) if isinstance(table, dict) else None
    return table if isinstance(table, dict) else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's values by option name; UsageError with a one-line reason on anything wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}".splitlines()[0]) from None
    if path.name == "pyproject.toml":
        table = _pyproject_table(path) or {}
    else:
        nested = _pyproject_table(path)
        table = nested if nested is not None else data
    by_key = {option.key: option for option in OPTIONS}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        option = by_key.get(str(key).replace("_", "-"))
        if option is None:
            raise UsageError(f"config file {path}: unknown key {key!r} (known: {', '.join(sorted(by_key))})")
        if option.secret:
            raise UsageError(f"config file {path}: {key} does not belong in a file; use {option.flag} or ${option.env}")
        values[option.name] = _from_toml(option, raw, path)
    return values


def _from_toml(option: Option, raw: Any, path: Path) -> Any:
    where = f"config file {path}: {option.key}"
    if option.kind == "flag":
        if not isinstance(raw, bool):
            raise UsageError(f"{where} must be true or false, not {raw!r}")
        return raw
    if option.kind == "list":
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise UsageError(f"{where} must be a list of strings")
        return tuple(word for item in items for word in _words(item))
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise UsageError(f"{where} must be a string or a number, not {raw!r}")
    try:
        value = option.parse(str(raw))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if isinstance(value, Path) and not value.is_absolute():
        value = path.parent / value  # relative to the file, not to wherever the suite is started
    return value


def resolve(
    given: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Every option's value: `given` (command line, pytest options; None = not given) first, then
    the environment, the config file, the default. UsageError for a bad value anywhere."""
    env = os.environ if env is None else env
    path = config_file if config_file is not None else find_config_file(cwd or Path.cwd())
    from_file = read_config_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = given.get(option.name)
        if value is None or (option.kind == "list" and not value):
            value = _from_env(option, env)
        if value is None and option.name in from_file:
            value = from_file[option.name]
        if value is None:
            value = option.default
        if option.kind == "list":
            value = tuple(word for item in value for word in _words(str(item)))
        values[option.name] = value
    return values


def _from_env(option: Option, env: Mapping[str, str]) -> Any:
    text = env.get(option.env)
    if text is None or not text.strip():
        return None
    try:
        return option.parse(text)
    except ValueError as exc:
        raise UsageError(f"${option.env}: {exc}") from None


def documented(options: Sequence[Option] = OPTIONS) -> str:
    """The README's table of options (tests/test_options.py keeps the README in step with this)."""
    rows = [
        "| option | environment | config file | what it does |",
        "|---|---|---|---|",
    ]
    for option in options:
        default = _default_note(option).replace("; default", " (default:") + (")" if _default_note(option) else "")
        key = "—" if option.secret else f"`{option.key}`"
        rows.append(f"| `{option.flag}` | `{option.env}` | {key} | {option.help}{default} |")
    return "\n".join(rows)
