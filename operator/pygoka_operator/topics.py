"""A ProcessorGroup's topics: planned, checked and created with the runtime's topic plan and topic manager.

The plan, the co-partitioning rule and the Kafka calls are pygoka's (pygoka.topic_plan, pygoka.topic_manager),
so a group the operator calls ready is one its pods start on; here they are only read from a spec and their
errors mapped to TopicsReady's reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pygoka.errors import (
    AuthenticationError,
    AuthorizationError,
    KafkaUnreachableError,
    MissingTopicError,
    NotCompactedError,
    NotCopartitionedError,
    TopicError,
)
from pygoka.options import ProcessorOptions
from pygoka.topic_manager import TopicManager
from pygoka.topic_plan import PlannedTopic, TopicCheck, TopicInfo, check_topics, group_topics, partition_count

from pygoka_operator.model import group_of

#: DEFAULT_PARTITIONS is ProcessorOptions.default_partitions' default, the runtime's count for new topics.
DEFAULT_PARTITIONS = ProcessorOptions().default_partitions
#: REASONS are TopicsReady's reasons for the runtime's topic errors, most specific class first.
REASONS: tuple[tuple[type[TopicError], str], ...] = (
    (NotCopartitionedError, "PartitionCountMismatch"),
    (NotCompactedError, "TableNotCompacted"),
    (MissingTopicError, "TopicsMissing"),
    (KafkaUnreachableError, "KafkaUnreachable"),
    (AuthenticationError, "KafkaAuthenticationFailed"),
    (AuthorizationError, "KafkaAuthorizationFailed"),
)


def reason_of(error: TopicError) -> str:
    """reason_of is the TopicsReady reason of a topic error (KafkaError for any other)."""
    return next((reason for kind, reason in REASONS if isinstance(error, kind)), "KafkaError")


def plan_topics(name: str, spec: Mapping[str, Any]) -> list[PlannedTopic]:
    """plan_topics lists the co-partitioned topics of a resolved ProcessorGroup spec (its topology fields set)."""
    return group_topics(group_of(name, dict(spec)), inputs=spec.get("inputs") or [], loop=bool(spec.get("loop")),
                        joins=spec.get("joins") or [], persist=bool(spec.get("persist", True)),
                        table_config=spec.get("tableConfig"))


def consumed_topics(name: str, spec: Mapping[str, Any]) -> list[str]:
    """consumed_topics are the topics the group's consumer reads (inputs and loop), whose lag the autoscaler sums.

    Joined and lookup tables are read by table readers outside the consumer group, so they carry no group lag.
    """
    return [topic.name for topic in plan_topics(name, spec) if topic.role in ("input", "loop")]


def spec_partitions(spec: Mapping[str, Any], plan: list[PlannedTopic], observed: Mapping[str, TopicInfo]) -> int:
    """spec_partitions is partition_count with spec.partitions, else the existing topics', else
    spec.defaultPartitions (ProcessorOptions' default)."""
    given = int(spec["partitions"]) if spec.get("partitions") else None
    return partition_count(plan, observed, given, int(spec.get("defaultPartitions") or DEFAULT_PARTITIONS))


def condition(check: TopicCheck) -> tuple[str, str, str]:
    """condition is (status, reason, message) of TopicsReady."""
    if check.problems:
        return "False", reason_of(check.problems[0]), "; ".join(str(problem) for problem in check.problems)
    if check.missing:
        return "False", "TopicsMissing", f"topics missing: {', '.join(topic.name for topic in check.missing)}"
    return "True", "TopicsReady", "all topics exist and are co-partitioned"


def status_topics(plan: list[PlannedTopic], observed: Mapping[str, TopicInfo]) -> list[dict[str, Any]]:
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


def kafka_problem(brokers: str, error: TopicError) -> tuple[str, str]:
    """kafka_problem is TopicsReady's (reason, message) for a topic manager's failure."""
    reason = reason_of(error)
    return reason, f"Kafka {'unreachable' if reason == 'KafkaUnreachable' else 'error'} at {brokers}: {error}"


def reconcile_topics(kafka: TopicManager, name: str, spec: Mapping[str, Any]
                     ) -> tuple[TopicCheck, dict[str, TopicInfo], list[PlannedTopic], int]:
    """reconcile_topics creates the missing creatable topics of a resolved spec and checks the result: the check,
    what Kafka reported, the plan and its partition count."""
    plan = plan_topics(name, spec)
    names = [topic.name for topic in plan]
    observed = kafka.describe(names)
    partitions = spec_partitions(spec, plan, observed)
    check = check_topics(plan, observed, partitions)
    # As the runtime: nothing is created for a group whose existing topics already break co-partitioning.
    if check.creatable() and not check.problems:
        kafka.create(check.creatable(), partitions, int(spec.get("replicationFactor", -1)))
        observed = kafka.describe(names)
        check = check_topics(plan, observed, partitions)
    return check, observed, plan, partitions
