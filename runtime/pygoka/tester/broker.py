"""The in-memory broker: topics made of partition logs, consumer groups and their committed offsets.

One lock guards all of it. Two conditions share that lock: `changed` wakes clients waiting for data
(consumers, producers' poll), `settled` wakes the tester waiting for quiescence. Clients notify
`settled` when they start waiting, so the tester re-checks exactly when something may have become idle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from confluent_kafka import TIMESTAMP_CREATE_TIME

from pygoka.errors import NotCompactedError, NotCopartitionedError, TopicError
from pygoka.partitioner import partition_for

if TYPE_CHECKING:
    from pygoka.tester.consumer import MemoryConsumer
    from pygoka.tester.producer import MemoryProducer

#: RecordHeaders are the headers of a stored record, as confluent-kafka returns them.
RecordHeaders = list[tuple[str, bytes | None]]


class MemoryMessage:
    """MemoryMessage is a stored record with the interface of confluent_kafka.Message."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_timestamp", "_topic", "_value")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                 headers: RecordHeaders | None, timestamp_ms: int) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._timestamp = timestamp_ms

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> RecordHeaders | None:
        # A copy, as confluent-kafka hands out a new list per call.
        return None if self._headers is None else list(self._headers)

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self._timestamp)

    def error(self) -> None:
        return None

    def latency(self) -> None:
        return None

    def leader_epoch(self) -> None:
        return None

    def __len__(self) -> int:
        return 0 if self._value is None else len(self._value)

    def __repr__(self) -> str:
        return f"MemoryMessage({self._topic}/{self._partition}@{self._offset} key={self._key!r})"


@dataclass
class PartitionLog:
    """PartitionLog holds the records of one partition; offsets start at 0 and never repeat."""

    records: list[MemoryMessage] = field(default_factory=list)
    #: latest is the newest record of each key, the state a compacted topic converges to.
    latest: dict[bytes, MemoryMessage] = field(default_factory=dict)

    @property
    def high(self) -> int:
        """high is the high watermark: the offset the next record gets."""
        return len(self.records)


@dataclass
class Topic:
    """Topic is a named list of partition logs; compacted topics hold tables."""

    name: str
    partitions: list[PartitionLog]
    compacted: bool
    #: ordered is every record in the order it was produced, across partitions (for queue trackers).
    ordered: list[MemoryMessage] = field(default_factory=list)


@dataclass
class Group:
    """Group is a consumer group: its members in join order, their generation and committed offsets."""

    name: str
    members: list[MemoryConsumer] = field(default_factory=list)
    generation: int = 0
    assignment: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


class Broker:
    """Broker is the in-memory Kafka cluster of one tester."""

    def __init__(self, default_partitions: int) -> None:
        if default_partitions <= 0:
            raise ValueError(f"partition count must be positive, got {default_partitions}")
        self.default_partitions = default_partitions
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.settled = threading.Condition(self.lock)
        self.topics: dict[str, Topic] = {}
        self.groups: dict[str, Group] = {}
        self.consumers: list[MemoryConsumer] = []
        self.producers: list[MemoryProducer] = []

    def notify(self) -> None:
        """notify wakes every waiting client and the tester; the caller holds the lock."""
        self.changed.notify_all()
        self.settled.notify_all()

    # -- topics (the caller holds the lock) ------------------------------------------------------

    def ensure_topic(self, name: str, partitions: int | None = None, *, compacted: bool = False,
                     check: bool = False) -> Topic:
        """ensure_topic creates name if missing; with check, an existing topic must match."""
        topic = self.topics.get(name)
        if topic is None:
            count = self.default_partitions if partitions is None else partitions
            if count <= 0:
                raise TopicError(f"cannot create topic '{name}' with {count} partitions", topic=name)
            topic = Topic(name, [PartitionLog() for _ in range(count)], compacted)
            self.topics[name] = topic
            self._topic_created(name)
            return topic
        if check and partitions is not None and len(topic.partitions) != partitions:
            raise NotCopartitionedError(name, len(topic.partitions), partitions)
        if check and compacted and not topic.compacted:
            raise NotCompactedError(name, "delete")
        return topic

    def append(self, topic_name: str, key: bytes | None, value: bytes | None, *, partition: int = -1,
               headers: RecordHeaders | None = None, timestamp_ms: int | None = None) -> MemoryMessage:
        """append stores a record (creating the topic if needed) and wakes the clients; -1 places it by key."""
        topic = self.ensure_topic(topic_name)
        count = len(topic.partitions)
        if partition < 0:
            partition = partition_for(key or b"", count)
        elif partition >= count:
            raise TopicError(f"topic '{topic_name}' has no partition {partition} (it has {count})", topic=topic_name)
        log = topic.partitions[partition]
        stamp = int(time.time() * 1000) if timestamp_ms is None or timestamp_ms <= 0 else timestamp_ms
        message = MemoryMessage(topic_name, partition, log.high, key, value, headers, stamp)
        log.records.append(message)
        if key is not None:
            log.latest[key] = message
        topic.ordered.append(message)
        self.notify()
        return message

    def watermarks(self, topic_name: str, partition: int) -> tuple[int, int] | None:
        """watermarks are the low and high offsets of a partition, None if it does not exist."""
        topic = self.topics.get(topic_name)
        if topic is None or not 0 <= partition < len(topic.partitions):
            return None
        return 0, topic.partitions[partition].high

    def latest(self, topic_name: str, key: bytes) -> MemoryMessage | None:
        """latest is the newest record of key in its partition, None if there is none."""
        topic = self.topics.get(topic_name)
        if topic is None:
            return None
        return topic.partitions[partition_for(key, len(topic.partitions))].latest.get(key)

    def live_keys(self, topic_name: str) -> Iterator[bytes]:
        """live_keys are the keys whose newest record is not a tombstone."""
        topic = self.topics.get(topic_name)
        for log in topic.partitions if topic is not None else []:
            yield from [key for key, message in log.latest.items() if message.value() is not None]

    # -- groups (the caller holds the lock) ------------------------------------------------------

    def join(self, member: MemoryConsumer, group_id: str) -> Group:
        """join adds member to its group and starts a rebalance."""
        group = self.groups.setdefault(group_id, Group(group_id))
        if member not in group.members:
            group.members.append(member)
        self._rebalance(group)
        return group

    def leave(self, member: MemoryConsumer, group: Group) -> None:
        """leave removes member from its group and starts a rebalance of the others."""
        if member in group.members:
            group.members.remove(member)
            self._rebalance(group)

    def _topic_created(self, name: str) -> None:
        # Subscribed groups pick new topics up, as Kafka's metadata refresh makes them do.
        for group in self.groups.values():
            if any(name in member.subscription for member in group.members):
                self._rebalance(group)

    def _rebalance(self, group: Group) -> None:
        """_rebalance starts a new generation with a range assignment, as Kafka's range assignor does."""
        group.generation += 1
        group.assignment = {id(member): [] for member in group.members}
        topics = sorted({name for member in group.members for name in member.subscription})
        for name in topics:
            topic = self.topics.get(name)
            if topic is None:
                continue
            members = [m for m in group.members if name in m.subscription]
            share, extra = divmod(len(topic.partitions), len(members))
            start = 0
            for index, member in enumerate(members):
                count = share + (1 if index < extra else 0)
                group.assignment[id(member)].extend((name, p) for p in range(start, start + count))
                start += count
        self.notify()
