"""Reads a consumer group's committed offsets and its topics' watermarks with confluent-kafka's AdminClient."""

from __future__ import annotations

from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin._listoffsets import OffsetSpec

from pygoka.kafka.admin import Admin, access_error
from pygoka.kafka.config import Config
from pygoka.lag import PartitionOffsets


class LagReader:
    """LagReader measures the offsets behind group_lag (config: admin_config's); failures are TopicAccessErrors."""

    def __init__(self, config: Config, timeout: float = 15.0) -> None:
        self._admin = Admin(config, timeout)
        self.timeout = timeout

    def offsets(self, group: str, topics: list[str]) -> list[PartitionOffsets]:
        """offsets are the start, end and committed offsets of every partition of topics (missing topics: none)."""
        if not topics:
            return []
        names = ", ".join(topics)
        try:
            # All topics' metadata: a request naming a missing topic may create it (see pygoka.topic_manager).
            metadata = self._admin.client.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            raise access_error("describe", names, error, self._admin.client_error()) from exc
        partitions = [TopicPartition(topic, partition) for topic in topics
                      if topic in metadata.topics and metadata.topics[topic].error is None
                      for partition in sorted(metadata.topics[topic].partitions)]
        if not partitions:
            return []
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(p.topic, p.partition) for p in partitions])]
        (future,) = self._admin.client.list_consumer_group_offsets(request, request_timeout=self.timeout).values()
        committed: dict[tuple[str, int], int | None] = {}
        for tp in self._admin.result(future, "read the committed offsets of", names).topic_partitions:
            # librdkafka reports "no commit" as a negative logical offset (OFFSET_INVALID, -1001).
            committed[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        start = self._watermarks(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        end = self._watermarks(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return [PartitionOffsets(p.topic, p.partition, start[(p.topic, p.partition)], end[(p.topic, p.partition)],
                                 committed.get((p.topic, p.partition))) for p in partitions]

    def _watermarks(self, partitions: list[Any], spec: Any) -> dict[tuple[str, int], int]:
        request = {TopicPartition(p.topic, p.partition): spec for p in partitions}
        futures = self._admin.client.list_offsets(request, request_timeout=self.timeout)
        return {(tp.topic, tp.partition): int(self._admin.result(future, "read the offsets of", tp.topic).offset)
                for tp, future in futures.items()}
