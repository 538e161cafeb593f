"""The `runs-conformance` command.

Subcommands register themselves in SUBCOMMANDS (name -> Subcommand); a module adds one with
`register(Subcommand(...))` before main() builds the parser. Exit codes: 0 conformant,
1 not conformant (or the suite broke: the message says which), 2 usage error, 3 server
unreachable or not a Runs API. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import conformance

__all__ = ["EXIT_CONFORMANT", "EXIT_NOT_CONFORMANT", "EXIT_UNREACHABLE", "EXIT_USAGE", "SUBCOMMANDS", "main"]

EXIT_CONFORMANT = 0
EXIT_NOT_CONFORMANT = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register(sub: Subcommand) -> None:
    SUBCOMMANDS[sub.name] = sub


class _UsageExit(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so the message is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageExit(message)


# --- run ---------------------------------------------------------------------------------------
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from conformance.options import add_arguments

    add_arguments(parser)


def run_command(args: argparse.Namespace) -> int:
    from conformance.config import RunConfig
    from conformance.options import OPTIONS
    from conformance.runner import run

    given = {option.name: getattr(args, option.name) for option in OPTIONS}
    config = RunConfig.from_sources(given, config_file=args.config)
    report = run(config)
    return report.exit_code


register(
    Subcommand(
        "run", "run the conformance suite against a server", add_arguments=add_run_arguments, handler=run_command
    )
)


def _diff_arguments(parser: argparse.ArgumentParser) -> None:
    from conformance import diff

    diff.add_arguments(parser)


def _diff_handler(args: argparse.Namespace) -> int:
    from conformance import diff

    return int(diff.run(args))


register(
    Subcommand(
        "diff",
        "compare two conformance.json files; exit 1 if NEW fails where OLD did not",
        add_arguments=_diff_arguments,
        handler=_diff_handler,
    )
)


def _observe_arguments(parser: argparse.ArgumentParser) -> None:
    from conformance import observe_cli

    observe_cli.add_arguments(parser)


def _observe_handler(args: argparse.Namespace) -> int:
    from conformance import observe_cli

    return observe_cli.run(args)


register(
    Subcommand(
        "observe",
        "judge recorded traffic (HAR, exchanges.jsonl, NDJSON); exit 1 if a violation was seen",
        add_arguments=_observe_arguments,
        handler=_observe_handler,
    )
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="runs-conformance", description="Conformance suite for the Runs API.")
    parser.add_argument("--version", action="version", version=f"runs-conformance {conformance.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for item in SUBCOMMANDS.values():
        child = sub.add_parser(item.name, help=item.help, description=item.help)
        item.add_arguments(child)
        child.set_defaults(_handler=item.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from conformance.config import UsageError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = getattr(args, "_handler", None)
        if handler is None:
            raise _UsageExit(f"give a command: {', '.join(SUBCOMMANDS)} (see runs-conformance --help)")
        code: int = handler(args)
        return code
    except _UsageExit as exc:
        print(f"runs-conformance: usage error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"runs-conformance: usage error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("runs-conformance: interrupted", file=sys.stderr)
        return EXIT_NOT_CONFORMANT
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except BaseException as exc:
        # The suite itself broke. One line for the user; the traceback only with RUNS_CONFORMANCE_DEBUG.
        print(
            f"runs-conformance: internal error (a bug of the suite, not of the server): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        import os

        if os.environ.get("RUNS_CONFORMANCE_DEBUG"):
            traceback.print_exception(exc, file=sys.stderr)
        return EXIT_NOT_CONFORMANT


if __name__ == "__main__":
    raise SystemExit(main())
