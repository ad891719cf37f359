"""`pygoka graph MODULE:ATTR [--json | --crd]`: the topics and codecs of a processor group (the operator's contract).

--json prints GroupGraph.describe(), what the operator learns from an image (it runs `pygoka graph --json
--output /dev/termination-log` there); --crd prints a ProcessorGroup declaring the same topology.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from pygoka.cli.exit_codes import OK
from pygoka.cli.loading import UsageError, add_python_path, load_graph
from pygoka.topology import Topology

#: IMAGE_PLACEHOLDER stands for the image in --crd's output when --image is not given.
IMAGE_PLACEHOLDER = "REGISTRY/IMAGE:TAG"


def register(commands: Any) -> None:
    """register adds the graph subcommand."""
    parser = commands.add_parser("graph", help="print a group graph's topics and codecs",
                                 description="Print the topics and codecs of the group graph MODULE:ATTR names.")
    parser.add_argument("target", metavar="MODULE:ATTR", help="a GroupGraph or a callable returning one")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print GroupGraph.describe() as JSON")
    form.add_argument("--crd", action="store_true", help="print a ProcessorGroup (YAML) declaring this topology")
    parser.add_argument("--image", default=None, help=f"--crd: spec.image (default {IMAGE_PLACEHOLDER})")
    parser.add_argument("--name", default=None, help="--crd: metadata.name (default: the group, made a DNS name)")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help="write to FILE instead of stdout (the operator's graph pods: /dev/termination-log)")
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


def dns_name(group: str) -> str:
    """dns_name is group as a Kubernetes object name (lower case, [a-z0-9-], at most 63 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", group.lower()).strip("-")[:63].strip("-")
    if not name:
        raise UsageError(f"group '{group}' has no character usable in a Kubernetes name: pass --name")
    return name


def processor_group(topology: Topology, graph_ref: str, image: str | None, name: str | None) -> str:
    """processor_group is a ProcessorGroup manifest declaring topology, as YAML (each value written as JSON,
    which YAML reads as the same value)."""
    spec: dict[str, Any] = {"image": image or IMAGE_PLACEHOLDER, "graph": graph_ref, **topology.fields()}
    lines = ["apiVersion: pygoka.io/v1alpha1", "kind: ProcessorGroup", "metadata:",
             f"  name: {json.dumps(name or dns_name(topology.group))}", "spec:"]
    lines.extend(f"  {key}: {json.dumps(value)}" for key, value in spec.items())
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    """handle prints (or writes) the graph's description."""
    add_python_path(args.python_path)
    description = load_graph(args.target).describe()
    if args.json:
        text = json.dumps(description, indent=None if args.output else 2, separators=(",", ":") if args.output
                          else None)
    elif args.crd:
        text = processor_group(Topology.from_description(description), args.target, args.image, args.name)
    else:
        text = table(description)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        print(text, flush=True)
    return OK
