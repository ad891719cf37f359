"""The in-memory topic manager: the TopicManager protocol over the tester's broker."""

from __future__ import annotations

from pygoka.tester.broker import Broker


class MemoryTopicManager:
    """MemoryTopicManager creates and checks topics of the in-memory broker, with Kafka's errors."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def partitions(self, topic: str) -> int | None:
        """partitions is the partition count of topic, or None if it does not exist."""
        with self._broker.lock:
            found = self._broker.topics.get(topic)
            return None if found is None else len(found.partitions)

    def ensure_stream(self, topic: str, partitions: int) -> None:
        """ensure_stream creates topic, or checks the existing one has partitions."""
        with self._broker.lock:
            self._broker.ensure_topic(topic, partitions, check=True)

    def ensure_table(self, topic: str, partitions: int) -> None:
        """ensure_table creates topic compacted, or checks the existing one is compacted with partitions."""
        with self._broker.lock:
            self._broker.ensure_topic(topic, partitions, compacted=True, check=True)

    def close(self) -> None:
        """close has nothing to release."""
