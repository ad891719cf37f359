"""The pygoka command line: run, graph, topics and demo (see docs/cli.md)."""

from __future__ import annotations

import argparse
import sys

import pygoka
from pygoka.cli import demo, graph, run, topics
from pygoka.cli.exit_codes import USAGE, code_for
from pygoka.cli.loading import RunConfig, UsageError, ViewSpec
from pygoka.errors import PygokaError

__all__ = ["RunConfig", "ViewSpec", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """build_parser is the argument parser with one subcommand per module."""
    parser = argparse.ArgumentParser(prog="pygoka", description="Run and inspect pygoka processor groups.")
    parser.add_argument("--version", action="version", version=f"pygoka {pygoka.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run, graph, topics, demo):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """main runs the command line and returns its exit code (see pygoka.cli.exit_codes)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits with 2 on usage errors and 0 for --help, which matches our codes.
        return int(exc.code) if isinstance(exc.code, int) else USAGE
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"pygoka: {exc}", file=sys.stderr, flush=True)
        return USAGE
    except PygokaError as exc:
        print(f"pygoka: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return code_for(exc)
    return code
