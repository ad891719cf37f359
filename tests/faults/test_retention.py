"""Retention and compaction under a processor's feet: offsets it relies on are gone from Kafka.

- An input topic whose log start moved past the group's committed offset (retention, or DeleteRecords):
  the processor goes on from the oldest record still there.
- A table topic whose log start moved past a local store's stored offset: recovery starts at the
  oldest record still there (B29).
- A table topic compacted while a cold view or processor recovers it: recovery completes, and every
  value is the newest one. Compaction is held back (min.compaction.lag.ms of an hour) until the reader
  has applied its first records, then allowed; a slowed-down reader then sees fewer records than the
  topic held when recovery started, which shows the cleaner removed records ahead of it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from helpers import Names, Start, count, wait_until
from pygoka import Delivery, Emitter, Input, Persist, Processor, View, codec, define_group, group_table
from pygoka.graph import GroupGraph
from pygoka.kafka.config import admin_config, producer_config
from pygoka.partitioner import partition_for
from pygoka.storage import RocksDBStorageBuilder, Storage, StorageBuilder, Update
from pygoka.topic_manager import KafkaTopicManager

pytestmark = pytest.mark.kafka


PARTITIONS = 2
INT64 = codec.Int64()


def keys_on(partition: int, count: int) -> list[str]:
    """keys_on are the first count keys 'user-<i>' that Goka's partitioner places on partition."""
    keys = (f"user-{i}" for i in range(10_000))
    return [key for key in keys if partition_for(key.encode(), PARTITIONS) == partition][:count]


#: KEYS are four keys on each of the PARTITIONS partitions.
KEYS = [key for partition in range(PARTITIONS) for key in keys_on(partition, 4)]


# -- helpers ----------------------------------------------------------------------------------------


def topics(brokers: str, **table_config: str) -> KafkaTopicManager:
    return KafkaTopicManager(admin_config(brokers), table_config=table_config)


def emit_clicks(brokers: str, topic: str, keys: Iterable[str]) -> list[tuple[str, Delivery]]:
    """emit_clicks emits a click per key (in order) and returns where each one landed."""
    keys = list(keys)
    with Emitter(brokers, topic, codec.String()) as emitter:
        futures = [emitter.emit(key, "click") for key in keys]
    return [(key, future.result(30)) for key, future in zip(keys, futures, strict=True)]


def watermarks(brokers: str, topic: str, partition: int) -> tuple[int, int]:
    """watermarks are the (log start, end) offsets of a partition."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "pygoka-test-watermarks"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
    finally:
        consumer.close()
    return int(low), int(high)


def committed(brokers: str, group: str, topic: str) -> dict[int, int]:
    """committed maps each partition of topic to the offset group committed for it."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets}


def delete_records_before(brokers: str, topic: str, offsets: dict[int, int]) -> None:
    """delete_records_before moves the log start of each partition to its offset (as retention would)."""
    admin = AdminClient({"bootstrap.servers": brokers})
    results = admin.delete_records([TopicPartition(topic, p, offset) for p, offset in offsets.items()])
    for tp, future in results.items():
        assert future.result(timeout=30).low_watermark == offsets[tp.partition]


def counted(processor: Processor, truth: Counter[str] | dict[str, int]) -> bool:
    return processor.recovered() and all(processor.get(k) == truth[k] for k in truth)


def count_group(brokers: str, names: Names, **table_config: str) -> tuple[GroupGraph, str]:
    """count_group is a counting group over a new input topic with PARTITIONS partitions."""
    clicks = names("clicks")
    manager = topics(brokers, **table_config)
    try:
        manager.ensure_stream(clicks, PARTITIONS)
    finally:
        manager.close()
    return define_group(names("retention"), Input(clicks, codec.String(), count), Persist(INT64)), clicks


# -- input: the committed offset is older than the log start ---------------------------------------------


def test_committed_input_offset_before_the_log_start_continues_from_the_oldest_record(
        brokers: str, names: Names, state_dir: Path, start: Start) -> None:
    graph, clicks = count_group(brokers, names)

    def processor() -> Processor:
        return Processor(brokers, graph, state_dir=state_dir, commit_interval=0.2)

    first = processor()
    running = start(first)
    wait_until(first.recovered, timeout=60, message="first run recovered")
    truth = Counter(key for key, _ in emit_clicks(brokers, clicks, KEYS * 2))
    wait_until(lambda: counted(first, truth), timeout=60, message="counts of the first run")
    running.stop()
    done = committed(brokers, graph.group, clicks)
    assert done == {p: watermarks(brokers, clicks, p)[1] for p in range(PARTITIONS)}

    # While the group is away, more clicks come, and the oldest of them are deleted before it is back:
    # the log start moves past the committed offset.
    missed = emit_clicks(brokers, clicks, KEYS * 3)
    starts = {p: done[p] + 5 for p in range(PARTITIONS)}
    delete_records_before(brokers, clicks, starts)
    later = emit_clicks(brokers, clicks, KEYS)
    truth.update(key for key, where in missed + later if where.offset >= starts[where.partition])
    assert sum(truth.values()) == 2 * len(KEYS) + 3 * len(KEYS) - 5 * PARTITIONS + len(KEYS)

    second = processor()
    running = start(second)
    wait_until(lambda: counted(second, truth), timeout=60, message="counts of what is still retained")
    running.stop()
    assert committed(brokers, graph.group, clicks) == {p: watermarks(brokers, clicks, p)[1] for p in range(PARTITIONS)}


# -- table: the stored offset is older than the log start ----------------------------------------------


def test_stored_table_offset_before_the_log_start_recovers_from_the_oldest_record(
        brokers: str, names: Names, tmp_path: Path, start: Start) -> None:
    # DeleteRecords needs the delete policy: a table kept forever (retention.ms=-1) but deletable.
    graph, clicks = count_group(brokers, names)
    table = group_table(graph.group)
    options: dict[str, Any] = {"commit_interval": 0.2,
                               "table_config": {"cleanup.policy": "compact,delete", "retention.ms": "-1"}}
    stale_dir, other_dir = tmp_path / "stale", tmp_path / "other"

    stale = Processor(brokers, graph, state_dir=stale_dir, **options)
    running = start(stale)
    wait_until(stale.recovered, timeout=60, message="first instance recovered")
    truth = Counter(key for key, _ in emit_clicks(brokers, clicks, KEYS))
    wait_until(lambda: counted(stale, truth), timeout=60, message="counts of the first instance")
    running.stop()
    stored: dict[int, int | None] = {}
    for p in range(PARTITIONS):
        storage = RocksDBStorageBuilder(stale_dir)(table, p)
        try:
            stored[p] = storage.offset()
        finally:
            storage.close()

    # Another instance (its own state) goes on counting: first once per key...
    other = Processor(brokers, graph, state_dir=other_dir, **options)
    running = start(other)
    wait_until(other.recovered, timeout=60, message="second instance recovered")
    truth.update(key for key, _ in emit_clicks(brokers, clicks, KEYS))
    wait_until(lambda: counted(other, truth), timeout=60, message="counts of the second instance")
    # (one table record per click: the table ends where its updates so far end)
    updates = Counter(partition_for(key.encode(), PARTITIONS) for key in truth.elements())
    wait_until(lambda: all(watermarks(brokers, table, p)[1] == updates[p] for p in range(PARTITIONS)),
               message="every table update of the second instance in Kafka")
    ends = {p: updates[p] for p in range(PARTITIONS)}
    # ...then twice more per key, so that every key's newest value comes after `ends`.
    truth.update(key for key, _ in emit_clicks(brokers, clicks, KEYS * 2))
    wait_until(lambda: counted(other, truth), timeout=60, message="counts of the second instance")
    running.stop()

    # Everything up to `ends` leaves the table topic, including the stale store's offset and far past it.
    delete_records_before(brokers, table, ends)
    for p in range(PARTITIONS):
        offset = stored[p]
        assert offset is not None and offset + 1 < ends[p] == watermarks(brokers, table, p)[0]

    back = Processor(brokers, graph, state_dir=stale_dir, **options)
    running = start(back)
    wait_until(back.recovered, timeout=60, message="the stale instance recovered")
    assert {k: back.get(k) for k in KEYS} == dict(truth)
    truth.update(key for key, _ in emit_clicks(brokers, clicks, KEYS))
    wait_until(lambda: counted(back, truth), timeout=60, message="counting on from the recovered table")
    running.stop()


# -- table: compacted while it is recovered ---------------------------------------------------------------


#: A table whose closed segments the cleaner could compact at once, but for min.compaction.lag.ms.
COMPACTABLE = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
               "min.compaction.lag.ms": str(3_600_000)}
#: Small fetches and a small prefetch queue: the reader is never far ahead of what it applied.
SLOW_READER = {"fetch.max.bytes": 1024, "message.max.bytes": 1000, "max.partition.fetch.bytes": 512,
               "queued.max.messages.kbytes": 1, "queued.min.messages": 1}
TABLE_KEYS = 1000
ROUNDS = 10


class RecordingStorage:
    """RecordingStorage passes everything to a storage, counting written updates and pausing for each."""

    def __init__(self, inner: Storage, owner: RecordingBuilder) -> None:
        self._inner = inner
        self._owner = owner

    def get(self, key: bytes) -> bytes | None:
        return self._inner.get(key)

    def has(self, key: bytes) -> bool:
        return self._inner.has(key)

    def write(self, updates: Iterable[Update], offset: int | None) -> None:
        batch = list(updates)
        self._owner.written(len(batch))
        self._inner.write(batch, offset)

    def offset(self) -> int | None:
        return self._inner.offset()

    def iterate(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        return self._inner.iterate(start, end)

    def clear(self) -> None:
        self._inner.clear()

    def close(self) -> None:
        self._inner.close()


class RecordingBuilder:
    """RecordingBuilder opens RecordingStorages: updates counts what was written, pause (seconds) slows each
    write by that much per update, holding the reader back (its prefetch queue is small, see SLOW_READER)."""

    def __init__(self, inner: StorageBuilder, pause: float) -> None:
        self._inner = inner
        self.pause = pause
        self.updates = 0
        self._lock = threading.Lock()

    def __call__(self, topic: str, partition: int) -> Storage:
        return RecordingStorage(self._inner(topic, partition), self)

    def written(self, updates: int) -> None:
        with self._lock:
            self.updates += updates
        time.sleep(self.pause * updates)


def preload(brokers: str, table: str) -> dict[str, int]:
    """preload writes ROUNDS values of every key to partition 0 of table, a round per segment; it returns the last."""
    producer = Producer(producer_config(brokers, {"batch.size": 4096}))
    truth: dict[str, int] = {}
    for round_ in range(ROUNDS):
        for i in range(TABLE_KEYS):
            key, value = f"k{i}", round_ * TABLE_KEYS + i
            while True:
                try:
                    producer.produce(table, key=key.encode(), value=INT64.encode(value), partition=0)
                    break
                except BufferError:
                    producer.poll(0.1)
            truth[key] = value
        assert producer.flush(30) == 0
        time.sleep(0.15)  # past segment.ms: the next round starts a new segment
    return truth


def records_in(brokers: str, table: str, end: int) -> int:
    """records_in counts the records of partition 0 of table before offset end."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "pygoka-test-records", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(table, 0, 0)])
    seen = 0
    try:
        while True:
            message = consumer.poll(10)
            assert message is not None, "no end of partition 0 within 10 s"
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                break
            offset = message.offset()
            if offset is not None and offset < end:
                seen += 1
    finally:
        consumer.close()
    return seen


def allow_compaction(brokers: str, table: str) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    entry = ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("TOPIC", table, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


@pytest.mark.parametrize("reader", ["view", "processor"])
def test_table_compacted_while_recovering_still_recovers_every_newest_value(
        reader: str, brokers: str, names: Names, state_dir: Path, start: Start) -> None:
    clicks, group = names("clicks"), names("compacted")
    table = group_table(group) if reader == "processor" else names("table")
    manager = topics(brokers, **COMPACTABLE)
    try:
        manager.ensure_table(table, 1)
        manager.ensure_stream(clicks, 1)
    finally:
        manager.close()
    truth = preload(brokers, table)
    low, end = watermarks(brokers, table, 0)
    # Nothing was compacted yet: every offset written is still there.
    assert (low, end) == (0, ROUNDS * TABLE_KEYS)
    assert records_in(brokers, table, end) == end

    # 1 ms per record: without compaction, recovery would take about ten seconds.
    builder = RecordingBuilder(RocksDBStorageBuilder(state_dir), pause=0.001)
    target: View | Processor
    if reader == "view":
        target = View(brokers, table, INT64, storage_builder=builder, consumer_config=SLOW_READER)
    else:
        graph = define_group(group, Input(clicks, codec.String(), count), Persist(INT64))
        target = Processor(brokers, graph, storage_builder=builder, consumer_config=SLOW_READER,
                           commit_interval=0.2)
    running = start(target)
    # Recovery is under way (the first records are stored) when the cleaner is let loose on the table.
    wait_until(lambda: builder.updates > 0, timeout=60, message="recovery under way")
    assert not target.recovered()
    allow_compaction(brokers, table)
    wait_until(target.recovered, timeout=120, message="recovery of the table being compacted")
    builder.pause = 0.0
    read = builder.updates
    print(f"recovery applied {read} of the {end} records the table held when it started")

    # Every key has its newest value...
    assert {k: target.get(k) for k in truth} == truth
    # ...although the reader saw fewer records than the topic held when it started: the cleaner removed
    # records ahead of it.
    assert read < end, f"the reader applied {read} records of {end}: nothing was compacted during recovery"
    if isinstance(target, Processor):
        # The recovered counts are what the processor goes on from.
        with Emitter(brokers, clicks, codec.String()) as emitter:
            for key in truth:
                emitter.emit(key, "click")
        wait_until(lambda: all(target.get(k) == truth[k] + 1 for k in truth), timeout=60,
                   message="counts after recovery")
    running.stop()
