"""A ProcessorGroup's topics: the pure plan and co-partitioning check, and their reconciliation with the AdminClient."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pygoka.options import ProcessorOptions

from pygoka_operator.model import group_of, loop_topic, table_topic

log = logging.getLogger(__name__)

#: DEFAULT_PARTITIONS is ProcessorOptions.default_partitions' default, the runtime's count for new topics.
DEFAULT_PARTITIONS = ProcessorOptions().default_partitions
COMPACT = "compact"
DELETE = "delete"
#: ADMIN_PREFIXES are the librdkafka settings an admin client accepts from the Kafka Secret (connection only).
ADMIN_PREFIXES = ("security.", "sasl.", "ssl.", "client.", "socket.", "enable.ssl", "ssl_")


@dataclass(frozen=True)
class PlannedTopic:
    """PlannedTopic is a topic the group needs: created by the operator when owned, otherwise only checked."""

    name: str
    partitions: int
    cleanup_policy: str
    #: role is input, join, loop or table.
    role: str
    #: create: the operator creates it when missing (inputs, loop, table; never another group's table).
    create: bool
    #: owned topics (table, loop) are deleted with the group under topicDeletionPolicy: Delete.
    owned: bool
    #: config are topic settings it is created with besides cleanup.policy (the table's: spec.tableConfig).
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedTopic:
    """ObservedTopic is what Kafka says about a topic."""

    partitions: int
    cleanup_policy: str | None = None


@dataclass
class TopicCheck:
    """TopicCheck is the outcome of comparing the plan with Kafka."""

    missing: list[PlannedTopic] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.missing and not self.problems

    def condition(self) -> tuple[str, str, str]:
        """condition is (status, reason, message) of TopicsReady."""
        if self.problems:
            reason = self.problems[0][0]
            return "False", reason, "; ".join(message for _, message in self.problems)
        if self.missing:
            names = ", ".join(topic.name for topic in self.missing)
            return "False", "TopicsMissing", f"topics missing: {names}"
        return "True", "TopicsReady", "all topics exist and are co-partitioned"


def plan_topics(name: str, spec: Mapping[str, Any], partitions: int) -> list[PlannedTopic]:
    """plan_topics lists the co-partitioned topics of a resolved ProcessorGroup spec (its topology fields set),
    each with partitions partitions."""
    group = group_of(name, dict(spec))
    plan: list[PlannedTopic] = []
    seen: set[str] = set()

    def add(topic: str, cleanup: str, role: str, create: bool, owned: bool,
            config: Mapping[str, str] | None = None) -> None:
        if topic not in seen:
            seen.add(topic)
            plan.append(PlannedTopic(topic, partitions, cleanup, role, create, owned, dict(config or {})))

    for topic in spec.get("inputs") or []:
        add(topic, DELETE, "input", True, False)
    # Joined tables belong to other groups: their partition count must match, but their owner creates them.
    for topic in spec.get("joins") or []:
        add(topic, COMPACT, "join", False, False)
    if spec.get("loop"):
        add(loop_topic(group), DELETE, "loop", True, True)
    if spec.get("persist", True):
        add(table_topic(group), COMPACT, "table", True, True, spec.get("tableConfig"))
    return plan


def partition_count(spec: Mapping[str, Any], plan: list[PlannedTopic],
                    observed: Mapping[str, ObservedTopic]) -> int:
    """partition_count is spec.partitions; else, as the runtime's topic manager decides, the count of the first
    existing co-partitioned topic (inputs first); else spec.defaultPartitions (ProcessorOptions' default)."""
    if spec.get("partitions"):
        return int(spec["partitions"])
    for topic in plan:
        if topic.name in observed:
            return observed[topic.name].partitions
    return int(spec.get("defaultPartitions") or DEFAULT_PARTITIONS)


def check_topics(plan: list[PlannedTopic], observed: Mapping[str, ObservedTopic]) -> TopicCheck:
    """check_topics finds missing topics, co-partitioning breaks and a table that is not compacted."""
    result = TopicCheck()
    for topic in plan:
        actual = observed.get(topic.name)
        if actual is None:
            result.missing.append(topic)
            continue
        if actual.partitions != topic.partitions:
            result.problems.append(("PartitionCountMismatch",
                                    f"topic '{topic.name}' has {actual.partitions} partitions, expected "
                                    f"{topic.partitions} (spec.partitions): not co-partitioned"))
        if topic.role == "table" and actual.cleanup_policy is not None and COMPACT not in actual.cleanup_policy:
            result.problems.append(("TableNotCompacted",
                                    f"group table '{topic.name}' has cleanup.policy={actual.cleanup_policy}, "
                                    f"expected compact"))
    return result


def status_topics(plan: list[PlannedTopic], observed: Mapping[str, ObservedTopic]) -> list[dict[str, Any]]:
    """status_topics is status.topics: the existing planned topics with their partition counts and policy."""
    topics: list[dict[str, Any]] = []
    for topic in plan:
        actual = observed.get(topic.name)
        if actual is not None:
            entry: dict[str, Any] = {"name": topic.name, "partitions": actual.partitions}
            if actual.cleanup_policy is not None:
                entry["cleanupPolicy"] = actual.cleanup_policy
            topics.append(entry)
    return topics


#: UNREACHABLE are librdkafka's error names for a broker it cannot connect to or that does not answer in time.
UNREACHABLE = ("_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE", "_MSG_TIMED_OUT")


def kafka_problem(brokers: str, exc: BaseException) -> tuple[str, str]:
    """kafka_problem is TopicsReady's (reason, message) for an AdminClient failure: KafkaUnreachable or KafkaError."""
    error: Any = exc.args[0] if exc.args else None
    name = error.name() if hasattr(error, "name") else ""
    detail = error.str() if hasattr(error, "str") else str(exc)
    if name in UNREACHABLE:
        return "KafkaUnreachable", f"Kafka unreachable at {brokers}: {detail}"
    return "KafkaError", f"Kafka error at {brokers}: {type(exc).__name__}: {detail}"


def admin_config(brokers: str, settings: Mapping[str, str]) -> dict[str, str]:
    """admin_config is the AdminClient configuration from the brokers and the Kafka Secret's settings."""
    config = {"bootstrap.servers": brokers}
    for key, value in settings.items():
        if key.startswith(ADMIN_PREFIXES):
            config[key] = value
    return config


class KafkaTopics:
    """KafkaTopics observes, creates and deletes topics with confluent-kafka's AdminClient."""

    def __init__(self, config: Mapping[str, str], timeout: float = 15.0) -> None:
        from confluent_kafka.admin import AdminClient

        self._admin = AdminClient(dict(config))
        self.timeout = timeout

    def observe(self, names: list[str]) -> dict[str, ObservedTopic]:
        """observe reads the partition count and cleanup.policy of each existing topic of names."""
        from confluent_kafka.admin._config import ConfigResource

        metadata = self._admin.list_topics(timeout=self.timeout)
        partitions = {name: len(metadata.topics[name].partitions) for name in names
                      if name in metadata.topics and metadata.topics[name].error is None}
        policies: dict[str, str | None] = {name: None for name in partitions}
        if partitions:
            resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in partitions]
            for resource, future in self._admin.describe_configs(resources).items():
                entries = future.result(timeout=self.timeout)
                policy = entries.get("cleanup.policy")
                policies[resource.name] = policy.value if policy is not None else None
        return {name: ObservedTopic(count, policies[name]) for name, count in partitions.items()}

    def create(self, topics: list[PlannedTopic], replication_factor: int) -> None:
        """create creates topics; one that appeared meanwhile counts as created."""
        from confluent_kafka import KafkaError
        from confluent_kafka.cimpl import NewTopic

        if not topics:
            return
        new = [NewTopic(topic.name, num_partitions=topic.partitions, replication_factor=replication_factor,
                        config={**topic.config, "cleanup.policy": topic.cleanup_policy}) for topic in topics]
        for name, future in self._admin.create_topics(new, request_timeout=self.timeout).items():
            try:
                future.result(timeout=self.timeout)
                log.info("created topic %s", name)
            except Exception as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def delete(self, names: list[str]) -> None:
        """delete deletes topics; a missing one counts as deleted."""
        from confluent_kafka import KafkaError

        if not names:
            return
        for name, future in self._admin.delete_topics(names, request_timeout=self.timeout).items():
            try:
                future.result(timeout=self.timeout)
                log.info("deleted topic %s", name)
            except Exception as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise


def reconcile_topics(kafka: KafkaTopics, name: str,
                     spec: Mapping[str, Any]) -> tuple[TopicCheck, dict[str, ObservedTopic], list[PlannedTopic]]:
    """reconcile_topics creates the missing creatable topics of a resolved spec and checks the result (with the
    plan, whose partition count partition_count chose)."""
    # The names do not depend on the count, which may depend on what exists.
    unsized = plan_topics(name, spec, 0)
    names = [topic.name for topic in unsized]
    observed = kafka.observe(names)
    plan = plan_topics(name, spec, partition_count(spec, unsized, observed))
    replication_factor = int(spec.get("replicationFactor", -1))
    creatable = [topic for topic in check_topics(plan, observed).missing if topic.create]
    if creatable:
        kafka.create(creatable, replication_factor)
        observed = kafka.observe(names)
    return check_topics(plan, observed), observed, plan
