"""`runs-reference-server`: the reference server on a host and port, in memory or on a file."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import NoReturn

PROG = "runs-reference-server"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit code 2: usage errors are not crashes.
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: give a number from 0 to 65535")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Serve the Runs API (the reference implementation).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080)")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="T",
        help="a valid bearer token; repeat for more (also RUNS_TOKENS, comma-separated)",
    )
    parser.add_argument("--db", metavar="FILE", help="SQLite file to keep runs in (default: in memory)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tokens = list(args.token)
    tokens += [t.strip() for t in os.environ.get("RUNS_TOKENS", "").split(",") if t.strip()]
    if not tokens:
        parser.error("no bearer token: pass --token T or set RUNS_TOKENS")
    # Imported late so that --help and usage errors answer fast.
    import uvicorn

    from .app import create_app

    try:
        app = create_app(tokens, db_path=args.db)
    except (ValueError, OSError, sqlite3.Error) as exc:
        parser.error(str(exc) if args.db is None else f"cannot use --db {args.db!r}: {exc}")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
