"""TableReader: partitions added together are assigned in one call, their leaders' fetchers woken; a batch's
records reach their tables in order."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import OFFSET_END, KafkaError, TopicPartition
from pygoka.kafka.config import reader_config
from pygoka.storage.memory import MemoryStorage
from pygoka.table import PartitionTable
from pygoka.table_reader import TableReader
from pygoka.tester.broker import Broker, MemoryMessage
from pygoka.tester.consumer import MemoryConsumer


class RecordingConsumer(MemoryConsumer):
    """RecordingConsumer is the tester's consumer, recording its incremental_assign and offsets_for_times calls."""

    calls: list[tuple[str, list[tuple[str, int, int]]]]

    def __init__(self, broker: Broker, config: dict[str, Any]) -> None:
        super().__init__(broker, config)
        self.calls = []

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("incremental_assign", [(tp.topic, tp.partition, tp.offset) for tp in partitions]))
        super().incremental_assign(partitions)

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float | None = None) -> list[TopicPartition]:
        self.calls.append(("offsets_for_times", [(tp.topic, tp.partition, tp.offset) for tp in partitions]))
        return super().offsets_for_times(partitions, timeout)


def test_tables_added_together_are_assigned_in_one_call_then_their_fetchers_woken() -> None:
    broker = Broker(default_partitions=3)
    with broker.lock:
        broker.ensure_topic("profiles", 3, compacted=True)
        for partition in range(3):
            for n in range(partition + 2):
                broker.append("profiles", f"user-{n}".encode(), b"region", partition=partition)
    consumers: list[RecordingConsumer] = []

    def build(config: dict[str, Any]) -> RecordingConsumer:
        consumers.append(RecordingConsumer(broker, config))
        return consumers[-1]

    reader = TableReader("g", build, reader_config("memory", "g"))
    tables = [PartitionTable("profiles", partition, MemoryStorage()) for partition in range(3)]
    caught_up = threading.Semaphore(0)
    # Added before the reader runs, as a processor adds the tables of an assignment it opened all at once.
    for table in tables:
        reader.add(table, follow=True, on_caught_up=lambda _: caught_up.release())
    reader.start()
    try:
        for _ in tables:
            assert caught_up.acquire(timeout=5), "a table did not catch up"
    finally:
        reader.stop()
    fetching = consumers[0]  # the second is the reader's client for high watermarks
    assert fetching.calls[:2] == [
        ("incremental_assign", [("profiles", 0, 0), ("profiles", 1, 0), ("profiles", 2, 0)]),
        ("offsets_for_times", [("profiles", 0, OFFSET_END), ("profiles", 1, OFFSET_END), ("profiles", 2, OFFSET_END)]),
    ]
    assert [table.next_offset() for table in tables] == [2, 3, 4]


class TransientError:
    """TransientError is a consumer error message librdkafka recovers from itself (a broker gone for a while)."""

    def __init__(self, topic: str, partition: int) -> None:
        self._topic, self._partition = topic, partition

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._TRANSPORT, "broker down")

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition


def test_a_batch_of_interleaved_partitions_and_topics_reaches_each_table_in_order() -> None:
    reader = TableReader("g", lambda config: MemoryConsumer(Broker(1), config), reader_config("memory", "g"))
    tables = {(topic, partition): PartitionTable(topic, partition, MemoryStorage())
              for topic in ("a", "b") for partition in (0, 1)}
    for table in tables.values():
        reader.add(table, follow=True)

    def record(topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> MemoryMessage:
        return MemoryMessage(topic, partition, offset, key, value, None, 0)

    reader._store([
        record("a", 0, 0, b"k1", b"1"), record("a", 0, 1, b"k2", b"2"),
        record("b", 0, 0, b"k1", b"b"),  # the same partition number of another topic
        record("a", 0, 2, b"k1", b"3"),  # a/0 again in the same batch: after its earlier run
        TransientError("a", 1),
        record("a", 1, 5, None, b"x"),  # no key: not a table update
        record("a", 1, 6, b"k4", b"4"), record("a", 1, 7, None, b"y"),
    ])

    contents = {tp: (list(table.iterate()), table.offset()) for tp, table in tables.items()}
    assert contents == {
        ("a", 0): ([(b"k1", b"3"), (b"k2", b"2")], 2),
        ("b", 0): ([(b"k1", b"b")], 0),
        ("a", 1): ([(b"k4", b"4")], 6),
        ("b", 1): ([], None),
    }
