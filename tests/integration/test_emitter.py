"""Emitter behaviour (B28) on the real broker: placement, finish() semantics and encode errors."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition
from helpers import Names
from pygoka import CodecError, Delivery, Emitter, EmitterClosedError, codec
from pygoka.partitioner import partition_for

pytestmark = pytest.mark.kafka


def _count_records(brokers: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "pygoka-test-count"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        consumer.close()


def test_emit_places_keys_like_goka_and_reports_the_delivery(brokers: str, names: Names) -> None:
    """emit_sync returns where the record went: the partition Go Goka's hash partitioner picks."""
    topic = names("emits")
    with Emitter(brokers, topic, codec.String(), partitions=6) as emitter:
        deliveries = {key: emitter.emit_sync(key, "v") for key in (f"user-{i}" for i in range(30))}
    for key, delivery in deliveries.items():
        assert isinstance(delivery, Delivery)
        assert delivery.topic == topic
        assert delivery.partition == partition_for(key.encode(), 6), key
        assert delivery.offset >= 0


def test_finish_waits_for_every_pending_emit(brokers: str, names: Names) -> None:
    """finish() returns only once every asynchronous emit was delivered (B28)."""
    topic = names("pending")
    emitter = Emitter(brokers, topic, codec.Int64(), partitions=3)
    futures = [emitter.emit(f"k{i % 17}", i) for i in range(2000)]
    emitter.finish()
    assert all(future.done() for future in futures)
    assert all(future.exception() is None for future in futures)
    assert _count_records(brokers, topic, 3) == 2000


def test_emit_after_finish_raises(brokers: str, names: Names) -> None:
    """After finish(), emit and emit_sync raise EmitterClosedError (B28); finish() twice is harmless."""
    emitter = Emitter(brokers, names("closed"), codec.String(), partitions=1)
    emitter.emit_sync("a", "x")
    emitter.finish()
    emitter.finish()
    with pytest.raises(EmitterClosedError, match="finished"):
        emitter.emit("a", "y")
    with pytest.raises(EmitterClosedError):
        emitter.emit_sync("a", "y")


def test_encode_errors_raise_at_once_and_send_nothing(brokers: str, names: Names) -> None:
    """A value the codec cannot encode raises CodecError from emit itself, naming the codec (B28)."""
    topic = names("bad-values")
    with Emitter(brokers, topic, codec.Int64(), partitions=2) as emitter:
        with pytest.raises(CodecError, match="Int64"):
            emitter.emit("a", "not a number")
        with pytest.raises(CodecError, match="Int64"):
            emitter.emit_sync("a", 2**70)
        emitter.emit_sync("a", 1)
    assert _count_records(brokers, topic, 2) == 1


def test_none_value_is_a_tombstone(brokers: str, names: Names) -> None:
    """Emitting None produces a record with a null value (a tombstone), as Goka's emitter does."""
    topic = names("tombstones")
    with Emitter(brokers, topic, codec.String(), partitions=1) as emitter:
        delivery = emitter.emit_sync("gone", None)
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": names("reader"), "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, delivery.offset)])
        message = consumer.consume(1, timeout=10)[0]
    finally:
        consumer.close()
    assert message.error() is None
    assert message.key() == b"gone"
    assert message.value() is None
