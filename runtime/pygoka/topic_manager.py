"""The topic manager: describes, creates and deletes topics, and sets a group's topics up before it runs.

Topics are only ever looked up with requests that cannot create them: on a broker with Kafka's stock
auto.create.topics.enable=true, a metadata request naming a missing topic from a client allowing auto-creation
creates it with num.partitions (1), which then breaks co-partitioning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from confluent_kafka import KafkaError, TopicCollection
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from pygoka.errors import TopicAccessError
from pygoka.kafka.admin import Admin
from pygoka.kafka.config import Config
from pygoka.topic_plan import (
    TABLE_CONFIG,
    PlannedTopic,
    TopicCheck,
    TopicInfo,
    check_topics,
    partition_count,
    stream_topic,
)

log = logging.getLogger("pygoka.topics")


class TopicManager(Protocol):
    """TopicManager describes, creates and deletes topics."""

    def describe(self, topics: Sequence[str]) -> dict[str, TopicInfo]:
        """describe reports the existing ones of topics (partitions, cleanup.policy); missing ones are absent."""
        ...

    def create(self, topics: Sequence[PlannedTopic], partitions: int, replication_factor: int = -1) -> None:
        """create creates topics with partitions each; one that exists already counts as created."""
        ...

    def delete(self, topics: Sequence[str]) -> None:
        """delete deletes topics; a missing one counts as deleted."""
        ...

    def close(self) -> None:
        """close releases the manager's client."""
        ...


class TopicShortcuts:
    """TopicShortcuts are one-topic forms of describe and ensure_topics for a TopicManager; tables made by
    ensure_table get table_config besides cleanup.policy=compact."""

    table_config: Mapping[str, str] = MappingProxyType({})

    def partitions(self: TopicManager, topic: str) -> int | None:
        """partitions is the partition count of topic, or None if it does not exist."""
        found = self.describe([topic]).get(topic)
        return None if found is None else found.partitions

    def ensure_stream(self: TopicManager, topic: str, partitions: int) -> None:
        """ensure_stream creates topic with delete policy, or checks the existing one has partitions."""
        ensure_topics(self, [stream_topic(topic)], partitions=partitions)

    def ensure_table(self, topic: str, partitions: int) -> None:
        """ensure_table creates topic compacted, or checks the existing one is compacted with partitions."""
        manager: TopicManager = self  # type: ignore[assignment]
        ensure_topics(manager, [PlannedTopic(topic, "table", {**TABLE_CONFIG, **self.table_config})],
                      partitions=partitions)


class KafkaTopicManager(TopicShortcuts):
    """KafkaTopicManager manages topics through confluent-kafka's AdminClient (config: admin_config's)."""

    def __init__(self, config: Config, *, timeout: float = 30.0, table_config: Mapping[str, str] | None = None) -> None:
        self._admin = Admin(config, timeout)
        self.timeout = timeout
        self.table_config = dict(table_config or {})

    def describe(self, topics: Sequence[str]) -> dict[str, TopicInfo]:
        names = list(dict.fromkeys(topics))
        if not names:
            return {}
        counts: dict[str, tuple[int, bool]] = {}
        futures = self._admin.client.describe_topics(TopicCollection(names), request_timeout=self.timeout)
        for name, future in futures.items():
            try:
                description = self._admin.result(future, "describe", name)
            except TopicAccessError as exc:
                if _code(exc) in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_ID):
                    continue
                raise
            partitions = description.partitions
            counts[name] = (len(partitions), all(p.leader is not None for p in partitions))
        policies = self._cleanup_policies(list(counts))
        return {name: TopicInfo(count, policies.get(name), ready)
                for name, (count, ready) in counts.items()}

    def _cleanup_policies(self, topics: list[str]) -> dict[str, str | None]:
        if not topics:
            return {}
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in topics]
        result: dict[str, str | None] = {}
        for resource, future in self._admin.client.describe_configs(resources, request_timeout=self.timeout).items():
            entries = self._admin.result(future, "describe", resource.name)
            entry = entries.get("cleanup.policy")
            result[resource.name] = None if entry is None else entry.value
        return result

    def create(self, topics: Sequence[PlannedTopic], partitions: int, replication_factor: int = -1) -> None:
        if not topics:
            return
        for topic in topics:
            log.info("creating topic %s with %d partitions (%s)", topic.name, partitions, dict(topic.config))
        new = [NewTopic(topic.name, num_partitions=partitions, replication_factor=replication_factor,
                        config=dict(topic.config)) for topic in topics]
        futures = self._admin.client.create_topics(new, operation_timeout=self.timeout, request_timeout=self.timeout)
        for name, future in futures.items():
            try:
                self._admin.result(future, "create", name)
            except TopicAccessError as exc:
                # Another instance may have created it a moment ago: the caller's count check decides.
                if _code(exc) != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def delete(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        for name, future in self._admin.client.delete_topics(list(topics), request_timeout=self.timeout).items():
            try:
                self._admin.result(future, "delete", name)
                log.info("deleted topic %s", name)
            except TopicAccessError as exc:
                if _code(exc) != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise

    def close(self) -> None:
        """close is a no-op: the AdminClient holds no resources that need an explicit close."""


def ensure_topics(manager: TopicManager, plan: Sequence[PlannedTopic], *, partitions: int | None = None,
                  default_partitions: int = 1, replication_factor: int = -1, timeout: float = 30.0) -> int:
    """ensure_topics creates the missing topics of plan and returns the group's partition count.

    The count is partitions if given, else that of the first existing co-partitioned topic, else
    default_partitions. An existing topic breaking co-partitioning, a table not compacted or a missing joined
    table raises its TopicError before anything is created; so does a topic another instance created meanwhile
    with another count.
    """
    names = [topic.name for topic in plan]
    observed = manager.describe(names)
    expected = partition_count(plan, observed, partitions, default_partitions)
    check = _raise_problems(check_topics(plan, observed, expected))
    if check.missing:
        manager.create(check.creatable(), expected, replication_factor)
        observed = _wait_ready(manager, names, [topic.name for topic in check.missing], timeout)
        _raise_problems(check_topics(plan, observed, expected))
    return expected


def _code(error: TopicAccessError) -> int | None:
    return None if error.kafka_error is None else int(error.kafka_error.code())


def _raise_problems(check: TopicCheck) -> TopicCheck:
    problems = check.problems + check.missing_errors()
    if problems:
        raise problems[0]
    return check


def _wait_ready(manager: TopicManager, names: list[str], created: list[str], timeout: float) -> dict[str, TopicInfo]:
    """Wait until the created topics have leaders: a client assigned a partition without one waits in vain."""
    deadline = time.monotonic() + timeout
    while True:
        observed = manager.describe(names)
        waiting = [name for name in created if name not in observed or not observed[name].ready]
        if not waiting:
            return observed
        if time.monotonic() > deadline:
            raise TopicAccessError(f"topic '{waiting[0]}' was created but has no leaders after {timeout}s",
                                   topic=waiting[0])
        time.sleep(0.05)
