"""A group's topics and the co-partitioning rule, as pure functions of what the broker reports.

The runtime (at start), `pygoka topics` and the operator (on reconcile) all plan a group's topics here and
check them with the same rule, so they agree on names, partition counts and messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pygoka.errors import MissingTopicError, NotCompactedError, NotCopartitionedError, TopicError
from pygoka.graph import GroupGraph, group_table, loop_stream

#: TABLE_CONFIG is the topic configuration a group table is created with.
TABLE_CONFIG = {"cleanup.policy": "compact"}
#: STREAM_CONFIG is the topic configuration a stream (input, loop, output) is created with.
STREAM_CONFIG = {"cleanup.policy": "delete"}
#: COPARTITIONED_ROLES are the roles whose topics must all have the group's partition count.
COPARTITIONED_ROLES = ("input", "loop", "join", "table")
#: OWNED_ROLES are the roles of topics that belong to the group (deleted with it by the operator).
OWNED_ROLES = ("loop", "table")


@dataclass(frozen=True)
class TopicInfo:
    """TopicInfo is what the broker reports about an existing topic (cleanup_policy None: not reported)."""

    partitions: int
    cleanup_policy: str | None = None
    #: ready is False while a partition has no leader yet (a topic just created).
    ready: bool = True


@dataclass(frozen=True)
class PlannedTopic:
    """PlannedTopic is a topic a group needs, with its role: input, loop, join, table, output or dead_letter."""

    name: str
    role: str
    #: config are the settings it is created with (cleanup.policy included).
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def copartitioned(self) -> bool:
        """copartitioned: the topic must have the group's partition count (outputs need only exist)."""
        return self.role in COPARTITIONED_ROLES

    @property
    def creatable(self) -> bool:
        """creatable: pygoka creates it when missing; a joined table belongs to another group."""
        return self.role != "join"

    @property
    def owned(self) -> bool:
        """owned: the topic is the group's own (its table and loop)."""
        return self.role in OWNED_ROLES


def stream_topic(name: str) -> PlannedTopic:
    """stream_topic is name planned as a group's input stream (what an emitter writes)."""
    return PlannedTopic(name, "input", STREAM_CONFIG)


def group_topics(group: str, *, inputs: Iterable[str] = (), loop: bool = False, joins: Iterable[str] = (),
                 persist: bool = False, outputs: Iterable[str] = (), dead_letter: str | None = None,
                 table_config: Mapping[str, str] | None = None) -> list[PlannedTopic]:
    """group_topics lists a group's topics, co-partitioned ones first (inputs, loop, joins, table), each once."""
    plan: list[PlannedTopic] = []
    seen: set[str] = set()

    def add(name: str, role: str, config: Mapping[str, str]) -> None:
        if name not in seen:
            seen.add(name)
            plan.append(PlannedTopic(name, role, dict(config)))

    for topic in inputs:
        add(topic, "input", STREAM_CONFIG)
    if loop:
        add(loop_stream(group), "loop", STREAM_CONFIG)
    for topic in joins:
        add(topic, "join", TABLE_CONFIG)
    if persist:
        add(group_table(group), "table", {**TABLE_CONFIG, **(table_config or {})})
    for topic in outputs:
        add(topic, "output", STREAM_CONFIG)
    if dead_letter is not None:
        add(dead_letter, "dead_letter", STREAM_CONFIG)
    return plan


def graph_topics(graph: GroupGraph, *, dead_letter: str | None = None,
                 table_config: Mapping[str, str] | None = None) -> list[PlannedTopic]:
    """graph_topics is group_topics of a group graph."""
    return group_topics(graph.group, inputs=[edge.topic for edge in graph.inputs], loop=graph.loop is not None,
                        joins=[join.table for join in graph.joins], persist=graph.persist is not None,
                        outputs=list(graph.output_codecs()), dead_letter=dead_letter, table_config=table_config)


def partition_count(plan: Iterable[PlannedTopic], observed: Mapping[str, TopicInfo], partitions: int | None,
                    default_partitions: int) -> int:
    """partition_count is partitions if given, else that of the first existing co-partitioned topic of plan,
    else default_partitions."""
    if partitions is not None:
        return partitions
    for topic in plan:
        if topic.copartitioned and topic.name in observed:
            return observed[topic.name].partitions
    return default_partitions


@dataclass
class TopicCheck:
    """TopicCheck is the outcome of comparing a plan with the broker: topics missing and problems found."""

    missing: list[PlannedTopic] = field(default_factory=list)
    problems: list[TopicError] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """ready: every topic exists and none has a problem."""
        return not self.missing and not self.problems

    def creatable(self) -> list[PlannedTopic]:
        """creatable are the missing topics pygoka creates."""
        return [topic for topic in self.missing if topic.creatable]

    def missing_errors(self) -> list[MissingTopicError]:
        """missing_errors are the errors of missing topics pygoka does not create (joined tables)."""
        return [MissingTopicError(f"joined table '{topic.name}' does not exist (its group creates it)",
                                  topic=topic.name) for topic in self.missing if not topic.creatable]


def check_topics(plan: Iterable[PlannedTopic], observed: Mapping[str, TopicInfo], expected: int) -> TopicCheck:
    """check_topics finds missing topics, co-partitioned topics without expected partitions and a group table
    that is not compacted."""
    result = TopicCheck()
    for topic in plan:
        actual = observed.get(topic.name)
        if actual is None:
            result.missing.append(topic)
            continue
        if topic.copartitioned and actual.partitions != expected:
            result.problems.append(NotCopartitionedError(topic.name, actual.partitions, expected))
        policy = actual.cleanup_policy
        if topic.role == "table" and policy is not None and "compact" not in policy.split(","):
            result.problems.append(NotCompactedError(topic.name, policy))
    return result
