"""Reads a consumer group's committed offsets and its topics' watermarks with confluent-kafka's AdminClient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException

from pygoka.lag import PartitionOffsets
from pygoka.topic_manager import access_error


class LagReader:
    """LagReader measures the offsets behind group_lag (config: admin_config's); failures are TopicAccessErrors."""

    def __init__(self, config: Mapping[str, str], timeout: float = 15.0) -> None:
        from confluent_kafka.admin import AdminClient

        self._admin = AdminClient(dict(config))
        self.timeout = timeout

    def offsets(self, group: str, topics: list[str]) -> list[PartitionOffsets]:
        """offsets are the start, end and committed offsets of every partition of topics (missing topics: none)."""
        try:
            return self._offsets(group, topics)
        except KafkaException as exc:
            raise access_error("read offsets of", ", ".join(topics), exc) from exc

    def _offsets(self, group: str, topics: list[str]) -> list[PartitionOffsets]:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin._listoffsets import OffsetSpec

        if not topics:
            return []
        # All topics' metadata: a request naming a missing topic may create it (see pygoka.topic_manager).
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
