"""`pygoka topics`: partitions, cleanup.policy and the group's committed offsets and lag of its topics."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pygoka.cli.exit_codes import OK, TOPIC
from pygoka.cli.loading import UsageError, add_python_path, load_graph
from pygoka.cli.run import brokers_of, config_dir_settings
from pygoka.errors import TopicError
from pygoka.graph import group_table, loop_stream
from pygoka.kafka.config import admin_config
from pygoka.lag import PartitionOffsets, partition_lag
from pygoka.lag_reader import LagReader
from pygoka.topic_manager import KafkaTopicManager

TIMEOUT = 15.0


def register(commands: Any) -> None:
    """register adds the topics subcommand."""
    parser = commands.add_parser(
        "topics", help="show partitions, configs and lag of a group's topics",
        description="Show each topic of a group: partitions, cleanup.policy, and per partition the group's "
                    "committed offset, the end offset and the lag. TARGET is MODULE:ATTR (a graph) or a "
                    "group name with --input topics.")
    parser.add_argument("target", metavar="GROUP_OR_MODULE:ATTR")
    parser.add_argument("--input", action="append", default=[], metavar="TOPIC",
                        help="an input topic of GROUP (repeatable; only with a group name)")
    parser.add_argument("--brokers", default=None, help="Kafka bootstrap servers (default $PYGOKA_BROKERS)")
    parser.add_argument("--python-path", action="append", default=[], metavar="DIR",
                        help="directory added to sys.path before importing MODULE (repeatable; default: .)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=handle)


def group_topics(args: argparse.Namespace) -> tuple[str, list[tuple[str, str]]]:
    """group_topics is the group name and its (role, topic) pairs; consumed topics have role input or loop."""
    if ":" in args.target:
        if args.input:
            raise UsageError("--input is only for a group name; a graph names its own inputs")
        add_python_path(args.python_path)
        graph = load_graph(args.target)
        described = graph.describe()
        pairs = [("input", e["topic"]) for e in described["inputs"]]
        if described["loop"]:
            pairs.append(("loop", described["loop"]["topic"]))
        pairs += [("join", e["topic"]) for e in described["joins"]]
        pairs += [("lookup", e["topic"]) for e in described["lookups"]]
        pairs += [("output", e["topic"]) for e in described["outputs"]]
        if described["persist"]:
            pairs.append(("table", described["persist"]["topic"]))
        return graph.group, pairs
    group = args.target
    # Without a graph, the group's loop and table topics are shown when they exist.
    return group, [("input", t) for t in args.input] + [("loop", loop_stream(group)), ("table", group_table(group))]


def inspect(brokers: str, group: str, pairs: list[tuple[str, str]], explicit: set[str],
            settings: dict[str, Any]) -> dict[str, Any]:
    """inspect reads partitions, cleanup.policy and offsets of the topics; missing implicit topics are left out."""
    config = admin_config(brokers, settings)
    manager = KafkaTopicManager(config, timeout=TIMEOUT)
    try:
        found = manager.describe([t for _, t in pairs])
    finally:
        manager.close()
    present = [(role, t) for role, t in pairs if t in found]
    missing = [t for _role, t in pairs if t in explicit and t not in found]
    offsets: dict[str, list[PartitionOffsets]] = {}
    for entry in LagReader(config, timeout=TIMEOUT).offsets(group, list(dict.fromkeys(t for _, t in present))):
        offsets.setdefault(entry.topic, []).append(entry)
    topics = []
    for role, topic in present:
        # Only the consumed topics carry the group's commits; tables and outputs are read otherwise.
        consumed = role in ("input", "loop")
        partitions = []
        for entry in offsets.get(topic, []):
            row: dict[str, Any] = {"partition": entry.partition, "start": entry.start, "end": entry.end}
            if consumed:
                row["committed"] = entry.committed
                row["lag"] = partition_lag(entry)
            partitions.append(row)
        topics.append({"topic": topic, "role": role, "partitions": found[topic].partitions,
                       "cleanup.policy": found[topic].cleanup_policy, "offsets": partitions,
                       "lag": sum(p["lag"] for p in partitions) if consumed else None})
    return {"group": group, "topics": topics, "missing": missing}


def render(report: dict[str, Any]) -> str:
    """render is the readable table of a report."""
    lines = [f"group: {report['group']}",
             f"{'TOPIC':<40} {'ROLE':<7} {'POLICY':<8} {'PART':>4} {'COMMITTED':>10} {'END':>10} {'LAG':>8}"]
    for topic in report["topics"]:
        for entry in topic["offsets"]:
            committed = entry.get("committed")
            lag = entry.get("lag")
            lines.append(f"{topic['topic']:<40} {topic['role']:<7} {topic['cleanup.policy'] or '?':<8} "
                         f"{entry['partition']:>4} {'-' if committed is None else committed:>10} "
                         f"{entry['end']:>10} {'-' if lag is None else lag:>8}")
    for topic in report["missing"]:
        lines.append(f"{topic}: does not exist")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    """handle prints the report; an input topic that does not exist gives exit code 3."""
    brokers = brokers_of(args)
    group, pairs = group_topics(args)
    # A missing input is worth an error; the other topics may legitimately not exist yet.
    explicit = {t for role, t in pairs if role == "input"}
    try:
        report = inspect(brokers, group, pairs, explicit, config_dir_settings())
    except TopicError as exc:
        print(f"pygoka: cannot read topics: {exc}", file=sys.stderr, flush=True)
        return TOPIC
    print(json.dumps(report, indent=2) if args.json else render(report), flush=True)
    return TOPIC if report["missing"] else OK
