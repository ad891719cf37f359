"""Reads a consumer group's offsets and its input partitions' watermarks with confluent-kafka's AdminClient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pygoka_operator.autoscaling.lag import PartitionOffsets
from pygoka_operator.model import group_of, loop_topic


def consumed_topics(name: str, spec: Mapping[str, Any]) -> list[str]:
    """consumed_topics are the topics the group's consumer reads: its inputs and its loop topic.

    Joined and lookup tables are read by table readers outside the consumer group, so they carry no group lag.
    """
    topics = list(dict.fromkeys(spec.get("inputs") or []))
    if spec.get("loop"):
        topics.append(loop_topic(group_of(name, dict(spec))))
    return topics


class LagReader:
    """LagReader measures the offsets behind group_lag; one AdminClient per operator process and Kafka config."""

    def __init__(self, config: Mapping[str, str], timeout: float = 15.0) -> None:
        from confluent_kafka.admin import AdminClient

        self._admin = AdminClient(dict(config))
        self.timeout = timeout

    def offsets(self, group: str, topics: list[str]) -> list[PartitionOffsets]:
        """offsets are the start, end and committed offsets of every partition of topics (missing topics: none)."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin._listoffsets import OffsetSpec

        if not topics:
            return []
        metadata = self._admin.list_topics(timeout=self.timeout)
        partitions = [TopicPartition(topic, partition) for topic in topics
                      if topic in metadata.topics and metadata.topics[topic].error is None
                      for partition in sorted(metadata.topics[topic].partitions)]
        if not partitions:
            return []
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(p.topic, p.partition) for p in partitions])]
        (future,) = self._admin.list_consumer_group_offsets(request, request_timeout=self.timeout).values()
        committed: dict[tuple[str, int], int | None] = {}
        for tp in future.result(timeout=self.timeout).topic_partitions:
            # librdkafka reports "no commit" as a negative logical offset (OFFSET_INVALID, -1001).
            committed[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        start = self._watermarks(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        end = self._watermarks(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return [PartitionOffsets(p.topic, p.partition, start[(p.topic, p.partition)], end[(p.topic, p.partition)],
                                 committed.get((p.topic, p.partition))) for p in partitions]

    def _watermarks(self, partitions: list[Any], spec: Any) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        request = {TopicPartition(p.topic, p.partition): spec for p in partitions}
        futures = self._admin.list_offsets(request, request_timeout=self.timeout)
        return {(tp.topic, tp.partition): int(future.result(timeout=self.timeout).offset)
                for tp, future in futures.items()}
