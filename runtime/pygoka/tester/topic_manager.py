"""The in-memory topic manager: the TopicManager protocol over the tester's broker."""

from __future__ import annotations

from collections.abc import Sequence

from pygoka.tester.broker import Broker
from pygoka.topic_manager import TopicShortcuts
from pygoka.topic_plan import PlannedTopic, TopicInfo


class MemoryTopicManager(TopicShortcuts):
    """MemoryTopicManager describes, creates and deletes topics of the in-memory broker."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def describe(self, topics: Sequence[str]) -> dict[str, TopicInfo]:
        """describe reports the existing ones of topics."""
        with self._broker.lock:
            found = {name: self._broker.topics.get(name) for name in topics}
            return {name: TopicInfo(len(topic.partitions), "compact" if topic.compacted else "delete")
                    for name, topic in found.items() if topic is not None}

    def create(self, topics: Sequence[PlannedTopic], partitions: int, replication_factor: int = -1) -> None:
        """create creates topics with partitions each; existing ones are left as they are."""
        with self._broker.lock:
            for topic in topics:
                compacted = "compact" in topic.config.get("cleanup.policy", "delete").split(",")
                self._broker.ensure_topic(topic.name, partitions, compacted=compacted)

    def delete(self, topics: Sequence[str]) -> None:
        """delete removes topics; a missing one counts as deleted."""
        with self._broker.lock:
            for name in topics:
                self._broker.topics.pop(name, None)

    def close(self) -> None:
        """close has nothing to release."""
