"""Commits and at-least-once delivery (B7, B8, B12-B15) and nil handling (B31), on Kafka and on the Tester.

Every test but the failed-produce one (Kafka only: the tester has no failed deliveries) runs on both
backends of tests/backends.py.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from helpers import FAST_REBALANCE, Names, Running, Seen, Start, count, key_on, wait_until
from pygoka import (
    Context,
    Delivery,
    GroupGraph,
    Input,
    NilHandling,
    Output,
    Persist,
    ProcessingError,
    Processor,
    codec,
    define_group,
    group_table,
)
from pygoka.codec import Codec
from pygoka.kafka.transport import Transport
from pygoka.storage import MemoryStorageBuilder

if TYPE_CHECKING:
    from backends import Backend

pytestmark = pytest.mark.kafka
# backend: the tests run on Kafka and on the Tester.
pytest_plugins = ["backends"]


PARTITIONS = 2


# -- helpers ----------------------------------------------------------------------------------------


def emit_all(backend: Backend, topic: str, records: list[tuple[str, Any]],
             value_codec: Codec | None = None) -> list[Delivery]:
    """emit_all emits records synchronously (creating topic if missing) and returns where they landed."""
    with backend.emitter(topic, value_codec or codec.String(), partitions=PARTITIONS) as emitter:
        return [emitter.emit_sync(key, value, timeout=30) for key, value in records]


def committed(backend: Backend, group: str, topic: str) -> dict[int, int]:
    """committed maps each partition of topic with a committed offset of group to that offset."""
    consumer = backend.consumer({"group.id": group, "enable.auto.commit": False})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}


def wait_committed(backend: Backend, group: str, topic: str, partition: int, offset: int) -> None:
    """wait_committed waits until group committed exactly offset for the partition of topic."""
    wait_until(lambda: committed(backend, group, topic).get(partition) == offset, interval=0.2,
               message=f"commit of offset {offset} on {topic}/{partition}")


def processor(backend: Backend, graph: GroupGraph, state_dir: Path, **options: Any) -> Processor:
    """processor is a single-instance processor with few partitions and frequent commits."""
    settings: dict[str, Any] = {"state_dir": state_dir, "default_partitions": PARTITIONS, "commit_interval": 0.2,
                                "consumer_config": dict(FAST_REBALANCE)}
    settings.update(options)
    return backend.processor(graph, **settings)


def failure(running: Running) -> ProcessingError:
    """failure waits for a processor expected to fail and returns the error run() raised."""
    running.join(60)
    error = running.error
    assert isinstance(error, ProcessingError), f"expected ProcessingError, run() ended with {error!r}"
    return error


def table_value(p: Processor, key: str) -> Any:
    """table_value is p.get(key) once p holds its partitions, None before (get raises until then)."""
    return p.get(key) if p.recovered() else None


# -- B7: commit after callback and acknowledgement ------------------------------------------------------


def test_b7_offset_is_committed_only_after_the_callback_returned(backend: Backend, names: Names, state_dir: Path,
                                                                 start: Start) -> None:
    topic, group = names("in"), names("g")
    entered, release = threading.Event(), threading.Event()
    seen = Seen()

    def slow(ctx: Context, msg: Any) -> None:
        if msg == "slow":
            entered.set()
            assert release.wait(60), "the test never released the callback"
        seen.add(msg)

    start(processor(backend, define_group(group, Input(topic, codec.String(), slow)), state_dir))
    _, blocked = emit_all(backend, topic, [("k", "first"), ("k", "slow")])
    assert entered.wait(30)
    # While the callback runs, its message is not committed, whatever the commit interval.
    for _ in range(5):
        assert committed(backend, group, topic).get(blocked.partition, -1) <= blocked.offset
    release.set()
    wait_committed(backend, group, topic, blocked.partition, blocked.offset + 1)
    assert seen.items() == ["first", "slow"]


def create_small_topic(backend: Backend, topic: str) -> None:
    """create_small_topic creates a stream whose broker rejects records above 1000 bytes."""
    admin = AdminClient({"bootstrap.servers": backend.brokers})
    new = NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1, config={"max.message.bytes": "1000"})
    admin.create_topics([new])[topic].result(30)
    wait_until(lambda: topic in admin.list_topics(topic, timeout=10).topics
               and not admin.list_topics(topic, timeout=10).topics[topic].error, message=f"{topic} created")


# Kafka only: the tester has no failed deliveries.
@pytest.mark.parametrize("backend", ["kafka"], indirect=True)
@pytest.mark.parametrize("rejected_by", ["broker", "client"])
# A refused record is no outage: exactly-once does not retry its transaction but stops as well.
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_b7_failed_produce_stops_the_processor_without_committing(
    backend: Backend, names: Names, tmp_path: Path, start: Start, rejected_by: str, guarantee: str,
) -> None:
    topic, output, group = names("in"), names("out"), names("g")
    create_small_topic(backend, output)
    big = "x" * 5000

    def forward(ctx: Context, msg: Any) -> None:
        ctx.emit(output, ctx.key, big if msg == "big" else msg)

    graph = define_group(group, Input(topic, codec.String(), forward), Output(output, codec.String()))
    # The broker refuses the big record at acknowledgement; a client limit refuses it at produce().
    producer = {"message.max.bytes": 2000} if rejected_by == "client" else {}
    running = start(processor(backend, graph, tmp_path / "first", producer_config=producer, guarantee=guarantee))
    _, failing, _ = emit_all(backend, topic, [("k", "small"), ("k", "big"), ("k", "after")])

    error = failure(running)
    assert "Message size too large" in str(error)
    if rejected_by == "broker":
        # Found at acknowledgement: the error names the record that was not stored.
        assert "producing a record failed" in str(error)
        assert error.topic == output
    else:
        assert (error.topic, error.partition, error.offset) == (topic, failing.partition, failing.offset)
    assert committed(backend, group, topic).get(failing.partition, 0) <= failing.offset

    # At least once: the failed message is processed again after a restart.
    seen = Seen()

    def record(ctx: Context, msg: Any) -> None:
        seen.add(msg)

    fixed = define_group(group, Input(topic, codec.String(), record))
    start(processor(backend, fixed, tmp_path / "second", guarantee=guarantee))
    wait_until(lambda: seen.items()[-2:] == ["big", "after"], message="redelivery of the failed message")
    wait_committed(backend, group, topic, failing.partition, failing.offset + 2)


# -- B8: deferred commits ---------------------------------------------------------------------------


def test_b8_deferred_commit_waits_for_done(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, group = names("in"), names("g")
    held, probe = key_on(0, PARTITIONS), key_on(1, PARTITIONS)
    dones: list[Callable[..., None]] = []
    seen = Seen()

    def maybe_defer(ctx: Context, msg: Any) -> None:
        if msg == "defer":
            dones.append(ctx.defer_commit())
        seen.add(msg)

    start(processor(backend, define_group(group, Input(topic, codec.String(), maybe_defer)), state_dir))
    deferred, after = emit_all(backend, topic, [(held, "defer"), (held, "after")])
    seen.wait_for(2)
    # A commit on the other partition proves a checkpoint ran after both messages were processed.
    [probed] = emit_all(backend, topic, [(probe, "probe")])
    wait_committed(backend, group, topic, probed.partition, probed.offset + 1)
    assert committed(backend, group, topic).get(deferred.partition, 0) <= deferred.offset

    threading.Thread(target=dones[0]).start()
    wait_committed(backend, group, topic, deferred.partition, after.offset + 1)


def test_b8_done_with_error_stops_the_processor(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, group = names("in"), names("g")
    dones: list[Callable[..., None]] = []
    seen = Seen()

    def defer(ctx: Context, msg: Any) -> None:
        if msg == "defer":
            dones.append(ctx.defer_commit())
        seen.add(msg)

    running = start(processor(backend, define_group(group, Input(topic, codec.String(), defer)), state_dir))
    deferred, _ = emit_all(backend, topic, [("k", "defer"), ("k", "after")])
    seen.wait_for(2)
    threading.Thread(target=dones[0], args=(RuntimeError("downstream refused"),)).start()

    error = failure(running)
    assert "deferred commit failed: RuntimeError: downstream refused" in str(error)
    assert (error.topic, error.partition, error.offset) == (topic, deferred.partition, deferred.offset)
    assert committed(backend, group, topic).get(deferred.partition, 0) <= deferred.offset


# -- B12: failures stop the processor -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ("raise", "ValueError: cannot handle 2"),
        ("fail", "gave up on 2"),
        ("decode", "Int64 codec cannot decode b'two'"),
    ],
)
def test_b12_failure_names_the_message_and_commits_nothing_after_it(
    backend: Backend, names: Names, state_dir: Path, start: Start, cause: str, expected: str,
) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()

    def handle(ctx: Context, number: Any) -> None:
        if number == 2 and cause == "raise":
            raise ValueError("cannot handle 2")
        if number == 2 and cause == "fail":
            ctx.fail("gave up on 2")
        seen.add(number)

    graph = define_group(group, Input(topic, codec.Int64(), handle))
    running = start(processor(backend, graph, state_dir))
    bad = b"two" if cause == "decode" else b"2"
    _, failing, _ = emit_all(backend, topic, [("k", b"1"), ("k", bad), ("k", b"3")], value_codec=codec.Bytes())

    error = failure(running)
    message = str(error)
    for part in (f"topic '{topic}'", f"partition {failing.partition}", f"offset {failing.offset}", expected):
        assert part in message
    assert (error.topic, error.partition, error.offset) == (topic, failing.partition, failing.offset)
    assert seen.items() == [1]
    assert committed(backend, group, topic).get(failing.partition, 0) <= failing.offset


# -- B13, B14, B15: counting, restarts, redelivery ---------------------------------------------------------


def test_b13_counting_then_stop_returns_normally(backend: Backend, names: Names, state_dir: Path,
                                                 start: Start) -> None:
    topic = names("in")
    p = processor(backend, define_group(names("g"), Input(topic, codec.String(), count), Persist(codec.Int64())),
                  state_dir)
    running = start(p)
    emit_all(backend, topic, [("k1", "a"), ("k1", "b"), ("k2", "c"), ("k1", "d")])
    wait_until(lambda: table_value(p, "k1") == 3 and table_value(p, "k2") == 1, message="counts of k1 and k2")
    assert p.get("never") is None
    running.stop()
    assert running.error is None
    assert not running.thread.is_alive()


def test_b14_clean_restarts_do_not_count_twice(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, group = names("in"), names("g")
    keys = ["k0", "k1", "k2", "k3", "k4"]
    probes = [key_on(partition, PARTITIONS, "probe") for partition in range(PARTITIONS)]
    calls = Seen()

    def counting(ctx: Context, msg: Any) -> None:
        calls.add(ctx.key)
        count(ctx, msg)

    graph = define_group(group, Input(topic, codec.String(), counting), Persist(codec.Int64()))

    def cycle(p: Processor, round_number: int) -> None:
        running = start(p)
        # A probe per partition: once each is counted, every message before it was (re)processed.
        emit_all(backend, topic, [(probe, "probe") for probe in probes])
        wait_until(lambda: all(table_value(p, probe) == round_number for probe in probes), message="probes counted")
        assert sum(p.get(key) or 0 for key in keys) == 10
        running.stop()

    first = processor(backend, graph, state_dir)
    emit_all(backend, topic, [(keys[i % len(keys)], f"m{i}") for i in range(10)])
    cycle(first, 1)
    second = processor(backend, graph, state_dir)
    cycle(second, 2)
    cycle(second, 3)  # the same Processor object runs again
    cycle(processor(backend, graph, state_dir), 4)
    assert len([key for key in calls.items() if key in keys]) == 10


def test_b29_the_stored_table_offset_is_the_last_update_of_each_partition(
    backend: Backend, names: Names, state_dir: Path, start: Start,
) -> None:
    """A processor's tables are stored with the offset of their last update, so recovery reads no record again.

    Successful deliveries are not reported (delivery.report.only.error): the offset comes from the broker.
    """
    topic, group = names("in"), names("g")
    graph = define_group(group, Input(topic, codec.String(), count), Persist(codec.Int64()))
    storage = MemoryStorageBuilder()
    p = processor(backend, graph, state_dir, storage_builder=storage)
    running = start(p)
    keys = [key_on(partition, PARTITIONS, f"k{partition}-") for partition in range(PARTITIONS)] + ["x", "y", "z"]
    emit_all(backend, topic, [(keys[i % len(keys)], "m") for i in range(25)])
    wait_until(lambda: sum(table_value(p, key) or 0 for key in keys) == 25, message="25 counted")
    running.stop()
    assert running.error is None

    table = group_table(group)
    consumer = backend.consumer({"group.id": names("probe")})
    try:
        ends = [consumer.get_watermark_offsets(TopicPartition(table, n), timeout=10)[1] for n in range(PARTITIONS)]
    finally:
        consumer.close()
    assert all(end > 0 for end in ends), f"every partition has updates: {ends}"
    assert [storage(table, n).offset() for n in range(PARTITIONS)] == [end - 1 for end in ends]


class UnpausedConsumer:
    """UnpausedConsumer wraps the group consumer and ignores pause(), counting the messages it then returns
    for partitions the processor paused: librdkafka may return a few that it fetched before the pause."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.paused: set[tuple[str, int]] = set()
        self.returned_while_paused = 0

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any, on_lost: Any) -> None:
        self.inner.subscribe(topics, on_assign=lambda _c, parts: on_assign(self, parts),
                             on_revoke=lambda _c, parts: on_revoke(self, parts),
                             on_lost=lambda _c, parts: on_lost(self, parts))

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update((tp.topic, tp.partition) for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update((tp.topic, tp.partition) for tp in partitions)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        messages: list[Any] = self.inner.consume(num_messages=num_messages, timeout=timeout)
        self.returned_while_paused += sum((m.topic(), m.partition()) in self.paused for m in messages
                                          if m.error() is None)
        return messages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SlowReader:
    """SlowReader wraps a table reader's consumer and sleeps before each of its first fetches."""

    def __init__(self, inner: Any, slow_calls: int) -> None:
        self.inner = inner
        self.slow_calls = slow_calls

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        if self.slow_calls > 0:
            self.slow_calls -= 1
            time.sleep(0.3)
        messages: list[Any] = self.inner.consume(num_messages=num_messages, timeout=timeout)
        return messages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_messages_fetched_while_a_partition_recovers_are_processed_once_it_recovered(
    backend: Backend, names: Names, state_dir: Path, start: Start,
) -> None:
    """Messages returned for a partition paused for recovery are processed after it, each once and in order."""
    topic, group = names("in"), names("g")
    keys = [key_on(partition, PARTITIONS, f"k{partition}-") for partition in range(PARTITIONS)]
    graph = define_group(group, Input(topic, codec.String(), count), Persist(codec.Int64()))
    first = start(processor(backend, graph, state_dir / "first"))
    emit_all(backend, topic, [(key, "m") for key in keys for _ in range(10)])
    wait_until(lambda: all(table_value(first.target, key) == 10 for key in keys), message="the first counts")
    first.stop()

    consumers: list[UnpausedConsumer] = []

    def consumer(config: dict[str, Any]) -> Any:
        inner = backend.transport.consumer(config)
        if config["group.id"] == group:
            consumers.append(UnpausedConsumer(inner))
            return consumers[-1]
        return SlowReader(inner, slow_calls=3)

    transport = Transport(consumer=consumer, producer=backend.transport.producer,
                          topic_manager=backend.transport.topic_manager)
    emit_all(backend, topic, [(key, "m") for key in keys for _ in range(20)])
    # A new state directory: the table is recovered from its topic, slowly, while the input is fetched.
    second = start(processor(backend, graph, state_dir / "second", transport=transport))
    wait_until(lambda: all(table_value(second.target, key) == 30 for key in keys), message="the counts of 30")
    assert consumers and consumers[0].returned_while_paused > 0, "no message came while a partition recovered"
    second.stop()
    assert second.error is None


def test_b15_only_the_failed_message_is_processed_again(backend: Backend, names: Names, state_dir: Path,
                                                        start: Start) -> None:
    topic, group = names("in"), names("g")
    calls: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    failed_once = threading.Event()

    def fail_once_on_2(ctx: Context, msg: Any) -> None:
        with lock:
            calls[msg] += 1
        if msg == "2" and not failed_once.is_set():
            failed_once.set()
            raise RuntimeError("first attempt at message 2 fails")
        count(ctx, msg)

    graph = define_group(group, Input(topic, codec.String(), fail_once_on_2), Persist(codec.Int64()))
    running = start(processor(backend, graph, state_dir))
    emit_all(backend, topic, [("k", "1"), ("k", "2")])
    assert "first attempt at message 2 fails" in str(failure(running))

    restarted = processor(backend, graph, state_dir)
    start(restarted)
    wait_until(lambda: calls["2"] == 2, message="message 2 processed again")
    wait_until(lambda: table_value(restarted, "k") == 2, message="count 2 for k")
    assert calls == {"1": 1, "2": 2}


# -- B31: nil handling ----------------------------------------------------------------------------


def test_b31_tombstone_is_committed_without_calling_the_callback(backend: Backend, names: Names, state_dir: Path,
                                                                 start: Start) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()

    def record(ctx: Context, msg: Any) -> None:
        seen.add((ctx.key, msg))

    start(processor(backend, define_group(group, Input(topic, codec.String(), record)), state_dir))
    [tombstone] = emit_all(backend, topic, [("k", None)])
    wait_committed(backend, group, topic, tombstone.partition, tombstone.offset + 1)
    assert seen.items() == []
    emit_all(backend, topic, [("k", "after")])
    assert seen.wait_for(1) == [("k", "after")]


@pytest.mark.parametrize(("nil_handling", "expected"), [("process", None), (NilHandling.DECODE, "")])
def test_b31_nil_handling_passes_tombstones_to_the_callback(
    backend: Backend, names: Names, state_dir: Path, start: Start, nil_handling: NilHandling | str, expected: Any,
) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()

    def record(ctx: Context, msg: Any) -> None:
        seen.add((ctx.key, msg))

    graph = define_group(group, Input(topic, codec.String(), record))
    start(processor(backend, graph, state_dir, nil_handling=nil_handling))
    [tombstone] = emit_all(backend, topic, [("k", None), ("k", "after")])[:1]
    assert seen.wait_for(2) == [("k", expected), ("k", "after")]
    wait_committed(backend, group, topic, tombstone.partition, tombstone.offset + 2)
