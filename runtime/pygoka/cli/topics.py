"""`pygoka topics`: partitions, cleanup.policy and the group's committed offsets and lag of its topics."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from pygoka.cli.exit_codes import OK, TOPIC
from pygoka.cli.loading import UsageError, add_python_path, load_graph
from pygoka.cli.run import brokers_of
from pygoka.graph import group_table, loop_stream

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


def inspect(brokers: str, group: str, pairs: list[tuple[str, str]], explicit: set[str]) -> dict[str, Any]:
    """inspect reads metadata, configs and offsets of the topics; missing implicit topics are left out."""
    admin = AdminClient({"bootstrap.servers": brokers})
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = admin.list_topics(timeout=TIMEOUT)
        present = [(role, t) for role, t in pairs if t in metadata.topics and metadata.topics[t].error is None]
        missing = [t for role, t in pairs if t in explicit and all(t != p for _, p in present)]
        policies = cleanup_policies(admin, [t for _, t in present])
        topics = []
        for role, topic in present:
            numbers = sorted(metadata.topics[topic].partitions)
            # Only the consumed topics carry the group's commits; tables and outputs are read otherwise.
            consumed = role in ("input", "loop")
            committed: dict[int, int] = {}
            if consumed:
                found = consumer.committed([TopicPartition(topic, n) for n in numbers], timeout=TIMEOUT)
                committed = {tp.partition: tp.offset for tp in found if tp.offset >= 0}
            partitions = []
            for number in numbers:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=TIMEOUT)
                entry: dict[str, Any] = {"partition": number, "start": low, "end": high}
                if consumed:
                    done = committed.get(number)
                    entry["committed"] = done
                    entry["lag"] = high - (done if done is not None else low)
                partitions.append(entry)
            topics.append({"topic": topic, "role": role, "partitions": len(numbers),
                           "cleanup.policy": policies.get(topic), "offsets": partitions,
                           "lag": sum(p.get("lag", 0) for p in partitions) if consumed else None})
        return {"group": group, "topics": topics, "missing": missing}
    finally:
        consumer.close()


def cleanup_policies(admin: AdminClient, topics: list[str]) -> dict[str, str | None]:
    """cleanup_policies is each topic's cleanup.policy."""
    if not topics:
        return {}
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
    result: dict[str, str | None] = {}
    for resource, future in futures.items():
        entry = future.result(timeout=TIMEOUT).get("cleanup.policy")
        result[resource.name] = entry.value if entry is not None else None
    return result


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
        report = inspect(brokers, group, pairs, explicit)
    except KafkaException as exc:
        print(f"pygoka: cannot read topics: {exc}", file=sys.stderr, flush=True)
        return TOPIC
    print(json.dumps(report, indent=2) if args.json else render(report), flush=True)
    return TOPIC if report["missing"] else OK
