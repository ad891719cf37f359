"""`pygoka graph MODULE:ATTR [--json]`: the topics and codecs of a processor group (the operator's contract)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pygoka.cli.exit_codes import OK
from pygoka.cli.loading import add_python_path, load_graph


def register(commands: Any) -> None:
    """register adds the graph subcommand."""
    parser = commands.add_parser("graph", help="print a group graph's topics and codecs",
                                 description="Print the topics and codecs of the group graph MODULE:ATTR names.")
    parser.add_argument("target", metavar="MODULE:ATTR", help="a GroupGraph or a callable returning one")
    parser.add_argument("--json", action="store_true", help="print GroupGraph.describe() as JSON")
    parser.add_argument("--python-path", action="append", default=[], metavar="DIR",
                        help="directory added to sys.path before importing MODULE (repeatable; default: .)")
    parser.set_defaults(handler=handle)


def rows(description: dict[str, Any]) -> list[tuple[str, str, str]]:
    """rows flattens a graph description into (role, topic, codec) rows."""
    result: list[tuple[str, str, str]] = []
    for role in ("inputs", "loop", "joins", "lookups", "outputs", "persist"):
        entries = description[role]
        if entries is None:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            result.append((role.rstrip("s") if role != "persist" else "table", entry["topic"], entry["codec"]))
    return result


def table(description: dict[str, Any]) -> str:
    """table is the readable form of a graph description."""
    lines = [f"group: {description['group']}"]
    entries = rows(description)
    width = max([len(topic) for _, topic, _ in entries] + [5])
    lines.append(f"{'ROLE':<8} {'TOPIC':<{width}} CODEC")
    lines.extend(f"{role:<8} {topic:<{width}} {codec}" for role, topic, codec in entries)
    if description["visitors"]:
        lines.append(f"visitors: {', '.join(description['visitors'])}")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    """handle prints the graph's description."""
    add_python_path(args.python_path)
    description = load_graph(args.target).describe()
    print(json.dumps(description, indent=2) if args.json else table(description), flush=True)
    return OK
