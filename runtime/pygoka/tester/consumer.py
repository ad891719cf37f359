"""The in-memory consumer: confluent_kafka.Consumer's interface, as far as pygoka uses it.

Group members rebalance eagerly as Kafka's range assignor does: on a membership change every member
revokes its partitions inside its next consume(), and none is assigned the new ones before all have
revoked, so a partition never has two owners. Rebalance callbacks run in the consuming thread, outside
the broker lock, as librdkafka runs them inside poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from pygoka.kafka.config import Config
from pygoka.tester.broker import Broker, Group, MemoryMessage

#: RebalanceCallback is on_assign, on_revoke or on_lost: called with the consumer and its partitions.
RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
_TP = tuple[str, int]
_EARLIEST = {"earliest", "smallest", "beginning"}


class MemoryConsumer:
    """MemoryConsumer reads partitions of the in-memory broker, in a group (subscribe) or directly (assign)."""

    def __init__(self, broker: Broker, config: Config) -> None:
        self._broker = broker
        self.group_id: str | None = config.get("group.id")
        self._reset = str(config.get("auto.offset.reset", "latest"))
        self.subscription: list[str] = []
        self._group: Group | None = None
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self._assignment: dict[_TP, int] = {}
        self._paused: set[_TP] = set()
        self._generation = 0
        self._revoked = 0
        self._holding = False
        self._rotation = 0
        #: waiting is true while consume() blocks with nothing to deliver and no rebalance pending.
        self.waiting = False
        self.in_callback = False
        self.closed = False
        with broker.lock:
            broker.consumers.append(self)

    # -- group membership ------------------------------------------------------------------------

    def subscribe(self, topics: list[str], on_assign: RebalanceCallback | None = None,
                  on_revoke: RebalanceCallback | None = None, on_lost: RebalanceCallback | None = None) -> None:
        """subscribe joins the consumer group; partitions arrive through on_assign inside consume()."""
        if not self.group_id:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "subscribe needs group.id"))
        with self._broker.lock:
            self._require_open()
            self.subscription = list(topics)
            self._on_assign, self._on_revoke = on_assign, on_revoke
            # on_lost never fires: in-memory members do not miss heartbeats.
            self._group = self._broker.join(self, self.group_id)

    def unsubscribe(self) -> None:
        """unsubscribe leaves the group without calling on_revoke."""
        with self._broker.lock:
            self._leave()

    def close(self) -> None:
        """close revokes the partitions (calling on_revoke as librdkafka does) and leaves the group."""
        broker = self._broker
        with broker.lock:
            if self.closed:
                return
            revoke = self._holding and self._on_revoke is not None
            revoked = self._topic_partitions()
            self.in_callback = revoke
        try:
            if revoke and self._on_revoke is not None:
                self._on_revoke(self, revoked)
        finally:
            with broker.lock:
                self._leave()
                self.closed = True
                self.in_callback = False
                if self in broker.consumers:
                    broker.consumers.remove(self)
                broker.notify()

    def _leave(self) -> None:
        if self._group is not None:
            self._broker.leave(self, self._group)
        self._group = None
        self.subscription = []
        self._assignment.clear()
        self._paused.clear()
        self._holding = False

    # -- consuming -------------------------------------------------------------------------------

    def consume(self, num_messages: int = 1, timeout: float | None = -1) -> list[MemoryMessage]:
        """consume returns up to num_messages records, waiting up to timeout seconds for the first."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        broker = self._broker
        while True:
            with broker.lock:
                self._require_open()
                action = self._rebalance_action()
                if action is None:
                    messages = self._take(max(num_messages, 1))
                    if messages:
                        return messages
                if action is None or action[0] == "barrier":
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return []
                    self.waiting = action is None
                    if self.waiting:
                        broker.settled.notify_all()
                    broker.changed.wait(remaining)
                    self.waiting = False
                    continue
                self.in_callback = True
            try:
                self._run_rebalance(*action)
            finally:
                with broker.lock:
                    self.in_callback = False
                    broker.notify()

    def poll(self, timeout: float | None = -1) -> MemoryMessage | None:
        """poll returns one record or None after timeout."""
        messages = self.consume(1, timeout)
        return messages[0] if messages else None

    def _rebalance_action(self) -> tuple[str, list[TopicPartition], int] | None:
        """_rebalance_action is the next step of a pending rebalance (the caller holds the lock)."""
        group = self._group
        if group is None or self._generation == group.generation:
            return None
        generation = group.generation
        if self._revoked != generation:
            if self._holding and self._on_revoke is not None:
                return ("revoke", self._topic_partitions(), generation)
            self._finish_revoke(generation)
        if all(member._revoked == generation for member in group.members):
            self._generation = generation
            parts = group.assignment.get(id(self), [])
            return ("assign", [TopicPartition(topic, partition) for topic, partition in parts], generation)
        return ("barrier", [], generation)

    def _finish_revoke(self, generation: int) -> None:
        self._assignment.clear()
        self._paused.clear()
        self._holding = False
        self._revoked = generation
        self._broker.notify()

    def _run_rebalance(self, kind: str, partitions: list[TopicPartition], generation: int) -> None:
        if kind == "revoke":
            assert self._on_revoke is not None
            self._on_revoke(self, partitions)
            with self._broker.lock:
                # librdkafka unassigns after on_revoke; a newer generation makes the member revoke again.
                self._finish_revoke(generation)
            return
        if self._on_assign is not None:
            self._on_assign(self, partitions)
        else:
            self.assign(partitions)
        with self._broker.lock:
            self._holding = True

    def _take(self, limit: int) -> list[MemoryMessage]:
        """_take reads from the assigned, unpaused partitions in turn and advances their positions."""
        readable = [tp for tp in self._assignment if tp not in self._paused]
        if not readable:
            return []
        self._rotation = (self._rotation + 1) % len(readable)
        messages: list[MemoryMessage] = []
        for tp in readable[self._rotation:] + readable[:self._rotation]:
            topic = self._broker.topics.get(tp[0])
            if topic is None:
                continue
            records = topic.partitions[tp[1]].records
            position = self._assignment[tp]
            batch = records[position:position + limit - len(messages)]
            if batch:
                messages.extend(batch)
                self._assignment[tp] = position + len(batch)
            if len(messages) >= limit:
                break
        return messages

    def unread(self) -> list[str]:
        """unread names the assigned, unpaused partitions with records not yet consumed (lock held)."""
        result = []
        for (name, partition), position in self._assignment.items():
            if (name, partition) in self._paused:
                continue
            marks = self._broker.watermarks(name, partition)
            if marks is not None and position < marks[1]:
                result.append(f"{name}/{partition}")
        return result

    def busy_reason(self) -> str | None:
        """busy_reason says why the consumer's owner may still have work, None if it has none (lock held)."""
        who = f"consumer of group '{self.group_id}'"
        if self.closed:
            return None
        if self.in_callback:
            return f"{who} is running a rebalance callback"
        if self._group is not None and self._generation != self._group.generation:
            return f"{who} is rebalancing"
        unread = self.unread()
        if unread:
            return f"{who} has unread records in {', '.join(unread)}"
        if self.waiting:
            return None
        if self._group is None and not self._assignment:
            # An assign-mode consumer without partitions: its table reader reports its own state.
            return None
        return f"{who} is processing"

    # -- assignment ------------------------------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        """assign replaces the assignment; offsets below 0 resume from the committed offset or the reset."""
        with self._broker.lock:
            self._require_open()
            self._assignment.clear()
            self._paused.clear()
            self._add(partitions)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        """incremental_assign adds partitions to the assignment."""
        with self._broker.lock:
            self._require_open()
            self._add(partitions)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        """incremental_unassign removes partitions from the assignment."""
        with self._broker.lock:
            for tp in partitions:
                self._assignment.pop((tp.topic, tp.partition), None)
                self._paused.discard((tp.topic, tp.partition))
            self._broker.notify()

    def unassign(self) -> None:
        """unassign removes every partition from the assignment."""
        with self._broker.lock:
            self._assignment.clear()
            self._paused.clear()
            self._broker.notify()

    def assignment(self) -> list[TopicPartition]:
        """assignment is the assigned partitions."""
        with self._broker.lock:
            return self._topic_partitions()

    def _add(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._assignment[(tp.topic, tp.partition)] = self._resolve(tp.topic, tp.partition, tp.offset)
        self._broker.notify()

    def pause(self, partitions: list[TopicPartition]) -> None:
        """pause stops delivering records of the partitions until resume."""
        with self._broker.lock:
            self._paused.update((tp.topic, tp.partition) for tp in partitions
                                if (tp.topic, tp.partition) in self._assignment)
            self._broker.notify()

    def resume(self, partitions: list[TopicPartition]) -> None:
        """resume delivers records of paused partitions again."""
        with self._broker.lock:
            self._paused.difference_update((tp.topic, tp.partition) for tp in partitions)
            self._broker.notify()

    def seek(self, partition: TopicPartition) -> None:
        """seek sets the position of an assigned partition."""
        with self._broker.lock:
            key = (partition.topic, partition.partition)
            if key not in self._assignment:
                raise KafkaException(KafkaError(KafkaError._STATE, f"{key[0]}/{key[1]} is not assigned"))
            self._assignment[key] = self._resolve(key[0], key[1], partition.offset)
            self._broker.notify()

    # -- offsets ---------------------------------------------------------------------------------

    def commit(self, message: MemoryMessage | None = None, offsets: list[TopicPartition] | None = None,
               asynchronous: bool = True) -> list[TopicPartition] | None:
        """commit stores offsets (default: the current positions) as the group's committed offsets."""
        with self._broker.lock:
            self._require_open()
            if not self.group_id:
                raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "commit needs group.id"))
            if message is not None:
                offsets = [TopicPartition(message.topic(), message.partition(), message.offset() + 1)]
            elif offsets is None:
                offsets = self._topic_partitions()
            group = self._broker.groups.setdefault(self.group_id, Group(self.group_id))
            for tp in offsets:
                group.committed[(tp.topic, tp.partition)] = tp.offset
            result = [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in offsets]
        return None if asynchronous else result

    def committed(self, partitions: list[TopicPartition], timeout: float | None = None) -> list[TopicPartition]:
        """committed are the group's committed offsets of partitions (OFFSET_INVALID if none)."""
        with self._broker.lock:
            return [TopicPartition(tp.topic, tp.partition, self._committed(tp.topic, tp.partition))
                    for tp in partitions]

    def consumer_group_metadata(self) -> str:
        """consumer_group_metadata identifies the group for a producer's send_offsets_to_transaction."""
        if not self.group_id:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "consumer_group_metadata needs group.id"))
        return self.group_id

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """position is the offset of the next record to consume of each assigned partition."""
        with self._broker.lock:
            return [TopicPartition(tp.topic, tp.partition, self._assignment.get((tp.topic, tp.partition),
                                                                                 OFFSET_INVALID))
                    for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float | None = None,
                              cached: bool = False) -> tuple[int, int]:
        """get_watermark_offsets are the low and high offsets of partition."""
        with self._broker.lock:
            marks = self._broker.watermarks(partition.topic, partition.partition)
        if marks is None:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART,
                                            f"unknown partition {partition.topic}/{partition.partition}"))
        return marks

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float | None = None) -> list[TopicPartition]:
        """offsets_for_times answers OFFSET_END (each partition's end) and OFFSET_BEGINNING lookups.

        The tester keeps no index by time: any other timestamp raises.
        """
        result = []
        with self._broker.lock:
            for tp in partitions:
                if tp.offset not in (OFFSET_END, OFFSET_BEGINNING):
                    raise KafkaException(KafkaError(KafkaError._NOT_IMPLEMENTED,
                                                    "the tester answers offsets_for_times only for OFFSET_END "
                                                    "and OFFSET_BEGINNING"))
                marks = self._broker.watermarks(tp.topic, tp.partition)
                if marks is None:
                    raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART,
                                                    f"unknown partition {tp.topic}/{tp.partition}"))
                result.append(TopicPartition(tp.topic, tp.partition, marks[1] if tp.offset == OFFSET_END else marks[0]))
        return result

    def _committed(self, topic: str, partition: int) -> int:
        group = self._broker.groups.get(self.group_id or "")
        return OFFSET_INVALID if group is None else group.committed.get((topic, partition), OFFSET_INVALID)

    def _resolve(self, topic: str, partition: int, offset: int) -> int:
        low, high = self._broker.watermarks(topic, partition) or (0, 0)
        if offset == OFFSET_BEGINNING:
            return low
        if offset == OFFSET_END:
            return high
        if offset < 0:
            offset = self._committed(topic, partition)
        if low <= offset <= high:
            return offset
        return low if self._reset in _EARLIEST else high

    def _topic_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, partition, position)
                for (topic, partition), position in self._assignment.items()]

    def _require_open(self) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")
