"""The topic manager creates missing topics and checks that a group's topics are co-partitioned."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from pygoka.errors import TopicError
from pygoka.kafka.config import Config

log = logging.getLogger("pygoka.topics")

#: TABLE_CONFIG is the topic configuration a group table is created with.
TABLE_CONFIG = {"cleanup.policy": "compact"}
#: STREAM_CONFIG is the topic configuration a stream (input, loop, output) is created with.
STREAM_CONFIG = {"cleanup.policy": "delete"}


class TopicManager(Protocol):
    """TopicManager answers partition counts and creates streams and tables."""

    def partitions(self, topic: str) -> int | None:
        """partitions is the partition count of topic, or None if it does not exist."""
        ...

    def ensure_stream(self, topic: str, partitions: int) -> None:
        """ensure_stream creates topic with delete policy, or checks the existing one has partitions."""
        ...

    def ensure_table(self, topic: str, partitions: int) -> None:
        """ensure_table creates topic compacted, or checks the existing one is compacted with partitions."""
        ...

    def close(self) -> None:
        """close releases the admin client."""
        ...


def not_copartitioned(topic: str, actual: int, expected: int) -> TopicError:
    """not_copartitioned is the error for a topic whose partition count breaks co-partitioning."""
    return TopicError(f"topics are not copartitioned! topic '{topic}' has {actual} partitions, expected {expected}")


class KafkaTopicManager:
    """KafkaTopicManager manages topics through confluent-kafka's AdminClient."""

    def __init__(self, config: Config, *, replication_factor: int = -1, timeout: float = 30.0,
                 table_config: Mapping[str, str] | None = None,
                 stream_config: Mapping[str, str] | None = None) -> None:
        self._admin = AdminClient(dict(config))
        self.replication_factor = replication_factor
        self.timeout = timeout
        self.table_config = {**TABLE_CONFIG, **(table_config or {})}
        self.stream_config = {**STREAM_CONFIG, **(stream_config or {})}

    def partitions(self, topic: str) -> int | None:
        try:
            metadata = self._admin.list_topics(topic=topic, timeout=self.timeout)
        except KafkaException as exc:
            raise TopicError(f"cannot read metadata of topic '{topic}': {exc.args[0]}") from exc
        info = metadata.topics.get(topic)
        if info is None:
            return None
        if info.error is not None:
            if info.error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE):
                return None
            raise TopicError(f"cannot read metadata of topic '{topic}': {info.error.str()}")
        return len(info.partitions)

    def ensure_stream(self, topic: str, partitions: int) -> None:
        self._ensure(topic, partitions, self.stream_config)

    def ensure_table(self, topic: str, partitions: int) -> None:
        self._ensure(topic, partitions, self.table_config)
        policy = self.config_value(topic, "cleanup.policy")
        if policy is not None and "compact" not in policy.split(","):
            raise TopicError(f"table topic '{topic}' has cleanup.policy={policy}, expected compact")

    def config_value(self, topic: str, name: str) -> str | None:
        """config_value is the value of one configuration entry of topic."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            configs = self._admin.describe_configs([resource])[resource].result(timeout=self.timeout)
        except KafkaException as exc:
            raise TopicError(f"cannot read configuration of topic '{topic}': {exc.args[0]}") from exc
        entry = configs.get(name)
        return None if entry is None else entry.value

    def _ensure(self, topic: str, partitions: int, config: Mapping[str, str]) -> None:
        existing = self.partitions(topic)
        if existing is None:
            self._create(topic, partitions, config)
            existing = self._wait_for(topic)
        if existing != partitions:
            raise not_copartitioned(topic, existing, partitions)

    def _create(self, topic: str, partitions: int, config: Mapping[str, str]) -> None:
        log.info("creating topic %s with %d partitions (%s)", topic, partitions, dict(config))
        new = NewTopic(topic, num_partitions=partitions, replication_factor=self.replication_factor,
                       config=dict(config))
        future = self._admin.create_topics([new], operation_timeout=self.timeout)[topic]
        try:
            future.result(timeout=self.timeout)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            # Another instance of the group may have created it a moment ago: the count check decides.
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"cannot create topic '{topic}': {error.str()}") from exc

    def _wait_for(self, topic: str) -> int:
        deadline = time.monotonic() + self.timeout
        while True:
            metadata = self._admin.list_topics(topic=topic, timeout=self.timeout)
            info = metadata.topics.get(topic)
            if info is not None and info.error is None and info.partitions and all(
                p.leader >= 0 for p in info.partitions.values()
            ):
                return len(info.partitions)
            if time.monotonic() > deadline:
                raise TopicError(f"topic '{topic}' was created but has no leaders after {self.timeout}s")
            time.sleep(0.05)

    def close(self) -> None:
        """close is a no-op: the AdminClient holds no resources that need an explicit close."""


def check_copartitioned(
    manager: TopicManager,
    *,
    streams: Iterable[str],
    joins: Iterable[str],
    table: str | None,
    partitions: int | None,
    default_partitions: int,
) -> int:
    """check_copartitioned creates missing streams and the table and returns the common partition count.

    The count is partitions if given, else that of the first existing topic, else default_partitions.
    Any existing topic with another count is reported with both counts (B24) before anything is
    processed.
    """
    streams, joins = list(streams), list(joins)
    counts: dict[str, int | None] = {topic: manager.partitions(topic) for topic in streams + joins}
    for topic in joins:
        if counts[topic] is None:
            raise TopicError(f"joined table '{topic}' does not exist")
    if table is not None:
        counts[table] = manager.partitions(table)
    existing = [(topic, n) for topic, n in counts.items() if n is not None]
    if partitions is not None:
        expected = partitions
    else:
        expected = existing[0][1] if existing else default_partitions
    for topic, actual in existing:
        if actual != expected:
            raise not_copartitioned(topic, actual, expected)
    for topic in streams:
        manager.ensure_stream(topic, expected)
    if table is not None:
        manager.ensure_table(table, expected)
    return expected
