"""Partitions, rebalancing and recovery against a real Kafka (B16, B18, B19, B20, B23-B27, B29).

Behaviours about several processor instances run each instance in its own process (tests/procs.py).
B19 needs one instance and also runs on the Tester (tests/backends.py); the others need several
instances, Kafka's topic configurations or a broker outage, which the Tester does not simulate.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from helpers import Kafka, Names, Start, wait_until
from procs import FAST_REBALANCE, Proc
from pygoka import (
    Context,
    Emitter,
    Input,
    Inputs,
    Join,
    Lookup,
    NotRunningError,
    Output,
    Persist,
    Processor,
    TopicError,
    View,
    Visitor,
    codec,
    define_group,
    group_table,
)
from pygoka.kafka.config import admin_config, producer_config
from pygoka.partitioner import partition_for
from pygoka.storage.memory import MemoryStorageBuilder
from pygoka.storage.rocksdb import RocksDBStorageBuilder
from pygoka.topic_manager import KafkaTopicManager

if TYPE_CHECKING:
    from backends import Backend

pytestmark = pytest.mark.kafka
# own_broker: a broker of a test's own; backend: Kafka or the Tester (B19 runs on both).
pytest_plugins = ["kafka_broker", "backends"]


# -- helpers ----------------------------------------------------------------------------------------


def keys_covering(partitions: int, per_partition: int) -> list[str]:
    """keys_covering are keys placing exactly per_partition keys on every partition."""
    keys: list[str] = []
    counts = [0] * partitions
    i = 0
    while min(counts) < per_partition:
        key = f"user-{i}"
        number = partition_for(key.encode(), partitions)
        if counts[number] < per_partition:
            keys.append(key)
            counts[number] += 1
        i += 1
    return keys


def owner(key: str, partitions: int) -> int:
    """owner is the partition of key."""
    return partition_for(key.encode(), partitions)


def manager(brokers: str) -> KafkaTopicManager:
    """manager is a topic manager for the test's own topic setup."""
    return KafkaTopicManager(admin_config(brokers))


def emit_all(brokers: str, topic: str, records: list[tuple[str, Any]], value_codec: Any = None) -> None:
    """emit_all emits records to topic and waits until Kafka acknowledged every one."""
    with Emitter(brokers, topic, value_codec or codec.String()) as emitter:
        futures = [emitter.emit(key, value) for key, value in records]
    for future in futures:
        future.result(30)


def produce_raw(brokers: str, topic: str, records: list[tuple[bytes, bytes]], partition: int = -1) -> None:
    """produce_raw writes records bypassing pygoka, to one partition or placed by key as pygoka places them."""
    producer = Producer(producer_config(brokers))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=partition)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def split_complete(procs: list[Proc], partitions: int, each: int) -> bool:
    """split_complete tells whether every instance holds `each` recovered partitions, together all of them."""
    statuses = [p.status() for p in procs]
    if not all(s.get("recovered") for s in statuses):
        return False
    actives = [set(s["active"]) for s in statuses]
    return all(len(a) == each for a in actives) and set().union(*actives) == set(range(partitions))


@pytest.fixture
def procs(brokers: str, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """procs starts processor instances in child processes; those still running are killed at teardown."""
    started: list[Proc] = []

    def make(name: str, **spec: Any) -> Proc:
        proc = Proc(name, tmp_path / "procs", brokers=brokers, state_dir=tmp_path / f"state-{name}", **spec)
        started.append(proc.start())
        return proc

    yield make
    for proc in started:
        if proc.alive():
            proc.kill()


# -- several instances, each in its own process ---------------------------------------------------


#: PROTOCOLS are the consumer group protocols: classic (eager range, the default) and Kafka 4's (KIP-848,
#: incremental, the broker's range assignor), whose settings are the broker's (no session.timeout.ms).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "classic": {}, "consumer": {"consumer_config": {"group.protocol": "consumer"}},
    # A partial revoke commits the transaction of partitions that stay active too.
    "consumer-exactly-once": {"consumer_config": {"group.protocol": "consumer"}, "guarantee": "exactly_once"},
}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_b18_partitions_move_between_instances_with_their_state(
        brokers: str, names: Names, procs: Callable[..., Proc], protocol: str) -> None:
    """B18: 20 partitions on one instance, 10/10 on two, 20 again on the survivor with the other's state."""
    clicks, group = names("clicks"), names("b18")
    manager(brokers).ensure_stream(clicks, 20)
    keys = keys_covering(20, 2)
    options = PROTOCOLS[protocol]
    a = procs("a", group=group, inputs=[clicks], keys=keys, options=options)
    a.wait(lambda s: s["recovered"] and len(s["active"]) == 20, message="a owning all 20 partitions")
    emit_all(brokers, clicks, [(k, "click") for k in keys])
    a.wait(lambda s: all(s["values"].get(k) == 1 for k in keys), message="counts 1 on a")

    b = procs("b", group=group, inputs=[clicks], keys=keys, options=options)
    wait_until(lambda: split_complete([a, b], 20, 10), timeout=90, message="a 10/b 10 split")
    # b never processed anything: its counts come from the group table topic.
    b_keys = [k for k in keys if owner(k, 20) in b.active()]
    assert b.values() == {k: 1 for k in b_keys}

    emit_all(brokers, clicks, [(k, "click") for k in keys])

    def counted(expected: int) -> bool:
        values = {**a.values(), **b.values()}
        return all(values.get(k) == expected for k in keys)

    wait_until(lambda: counted(2), timeout=60, message="counts 2 on a and b")
    assert b.stop() == 0
    a.wait(lambda s: s["recovered"] and len(s["active"]) == 20 and all(s["values"].get(k) == 2 for k in keys),
           timeout=90, message="a owning 20 partitions again, with b's counts")
    emit_all(brokers, clicks, [(k, "click") for k in keys])
    a.wait(lambda s: all(s["values"].get(k) == 3 for k in keys), message="counts 3 on a")
    assert a.stop() == 0


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_b23_instances_own_the_same_partition_numbers_of_every_topic(
        brokers: str, names: Names, procs: Callable[..., Proc], protocol: str) -> None:
    """B23: 3 instances over 6 partitions own the same numbers of both inputs, the join and the group table."""
    first, second, joined, group = names("first"), names("second"), names("joined"), names("b23")
    topics = manager(brokers)
    topics.ensure_stream(first, 6)
    topics.ensure_stream(second, 6)
    topics.ensure_table(joined, 6)
    keys = keys_covering(6, 2)
    emit_all(brokers, joined, [(k, f"j-{k}") for k in keys])
    instances = [procs(name, group=group, inputs=[first, second], join=joined, keys=keys,
                       options=PROTOCOLS[protocol]) for name in "abc"]
    wait_until(lambda: split_complete(instances, 6, 2), timeout=120, message="a 2/2/2 split")

    emit_all(brokers, first, [(k, "x") for k in keys])
    emit_all(brokers, second, [(k, "y") for k in keys])
    wait_until(lambda: sum(p.status()["processed"] for p in instances) == 2 * len(keys), timeout=60,
               message="every message processed")
    owned: list[set[int]] = []
    for proc in instances:
        status = proc.status()
        active = set(status["active"])
        owned.append(active)
        assert {p for t, p in status["seen"] if t == first} == active
        assert {p for t, p in status["seen"] if t == second} == active
        assert {p for p, _state in status["tables"]} == active
        mine = [k for k in keys if owner(k, 6) in active]
        # The join read the key's own partition of the joined table, held by this instance.
        assert status["joined"] == {k: [owner(k, 6), f"j-{k}"] for k in mine}
        # Both inputs' messages of a key updated the same group table partition.
        assert status["values"] == {k: 2 for k in mine}
    assert sorted(p for active in owned for p in active) == list(range(6))


def test_b16_hot_standby_follows_every_partition_but_processes_its_own(
        brokers: str, names: Names, procs: Callable[..., Proc]) -> None:
    """B16: a hot standby instance keeps all table partitions current, with only its own active."""
    clicks, group = names("clicks"), names("b16")
    manager(brokers).ensure_stream(clicks, 6)
    keys = keys_covering(6, 2)
    standby = procs("standby", group=group, inputs=[clicks], keys=keys, options={"hot_standby": True})
    standby.wait(lambda s: s["recovered"] and len(s["active"]) == 6, message="standby owning all 6")
    other = procs("other", group=group, inputs=[clicks], keys=keys)
    wait_until(lambda: split_complete([standby, other], 6, 3), timeout=90, message="a 3/3 split")
    active = standby.active()

    for expected in (1, 2):
        emit_all(brokers, clicks, [(k, "click") for k in keys])
        other.wait(lambda s, n=expected: all(v == n for v in s["values"].values()) and len(s["values"]) == 6,
                   message=f"counts {expected} on the other instance")
        status = standby.wait(lambda s, n=expected: s["values"] == {k: n for k in keys}, timeout=60,
                              message=f"counts {expected} of every key on the standby")
        assert set(status["active"]) == active
        states = dict((p, state) for p, state in status["tables"])
        assert sorted(states) == list(range(6))
        assert {p for p, state in states.items() if state == "running"} == active
        assert {p for p, state in states.items() if state == "standby"} == set(range(6)) - active


def test_b20_visit_all_visits_the_keys_of_the_active_partitions(
        brokers: str, names: Names, procs: Callable[..., Proc], state_dir: Path,
        start: Start) -> None:
    """B20: visit_all runs the visitor on every key of this instance's active partitions; it sets and emits."""
    clicks, out, group = names("clicks"), names("resets"), names("b20")
    topics = manager(brokers)
    topics.ensure_stream(clicks, 4)
    topics.ensure_stream(out, 4)
    keys = keys_covering(4, 3)

    def count(ctx: Context, _msg: Any) -> None:
        ctx.set_value((ctx.value() or 0) + 1)

    def reset(ctx: Context, meta: Any) -> None:
        ctx.set_value(meta)
        ctx.emit(out, ctx.key, meta)

    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()),
                         Visitor("reset", reset), Output(out, codec.Int64()))
    here = Processor(brokers, graph, state_dir=state_dir, consumer_config=FAST_REBALANCE, commit_interval=0.2)
    start(here)
    wait_until(lambda: here.recovered() and len(here.active_partitions()) == 4, message="4 partitions here")
    other = procs("other", group=group, inputs=[clicks], keys=keys)

    def split() -> bool:
        mine, theirs = set(here.active_partitions()), other.status()
        return (here.recovered() and theirs.get("recovered", False) and len(mine) == 2
                and mine | set(theirs["active"]) == set(range(4)))

    wait_until(split, timeout=90, message="a 2/2 split")
    mine = [k for k in keys if owner(k, 4) in here.active_partitions()]
    theirs = [k for k in keys if k not in mine]
    emit_all(brokers, clicks, [(k, "click") for k in keys for _ in range(2)])
    wait_until(lambda: all(here.get(k) == 2 for k in mine), message="counts 2 here")
    other.wait(lambda s: s["values"] == {k: 2 for k in theirs}, message="counts 2 on the other instance")

    assert here.visit_all("reset", 100, timeout=60) == len(mine)
    assert {k: here.get(k) for k in mine} == {k: 100 for k in mine}
    assert other.values() == {k: 2 for k in theirs}
    assert sorted(read_all(brokers, out, len(mine))) == sorted((k, b"100") for k in mine)
    emit_all(brokers, clicks, [(k, "click") for k in keys])
    wait_until(lambda: all(here.get(k) == 101 for k in mine), message="counts continue from the reset value")
    other.wait(lambda s: s["values"] == {k: 3 for k in theirs}, message="counts 3 on the other instance")


def read_all(brokers: str, topic: str, expected: int, timeout: float = 30.0) -> list[tuple[str, bytes]]:
    """read_all reads every record of topic once the topic holds expected records; more is an error."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "pygoka-test-reader",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions

        def total() -> int:
            return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)

        wait_until(lambda: total() >= expected, timeout, message=f"{expected} records in {topic}")
        assert total() == expected
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[tuple[str, bytes]] = []

        def read() -> bool:
            for message in consumer.consume(100, timeout=0.2):
                assert message.error() is None, message.error()
                key, value = message.key(), message.value()
                assert key is not None and value is not None
                records.append((key.decode(), value))
            return len(records) >= expected

        wait_until(read, timeout, message=f"reading {expected} records of {topic}")
        return records
    finally:
        consumer.close()


# -- one instance -----------------------------------------------------------------------------------


def test_b19_sum_over_several_inputs_with_sync_and_async_emits(
        backend: Backend, names: Names, state_dir: Path, tmp_path: Path, start: Start) -> None:
    """B19: random sync and async emits to three inputs; processor.get and view.get equal each key's sum."""
    topics, group = [names(f"numbers{i}") for i in range(3)], names("b19")

    def add(ctx: Context, number: Any) -> None:
        ctx.set_value((ctx.value() or 0) + number)

    graph = define_group(group, Inputs(topics, codec.Int64(), add), Persist(codec.Int64()))
    emitters = {t: backend.emitter(t, codec.Int64(), partitions=4) for t in topics}
    processor = backend.processor(graph, state_dir=state_dir, commit_interval=0.2)
    start(processor)
    wait_until(lambda: processor.recovered() and len(processor.active_partitions()) == 4, message="recovered")

    rng = random.Random(19)
    sums: dict[str, int] = {}
    pending: list[Future[Any]] = []
    for _ in range(300):
        topic, key, number = rng.choice(topics), f"key-{rng.randrange(12)}", rng.randint(1, 9)
        sums[key] = sums.get(key, 0) + number
        if rng.random() < 0.5:
            emitters[topic].emit_sync(key, number, timeout=30)
        else:
            pending.append(emitters[topic].emit(key, number))
    for emitter in emitters.values():
        emitter.finish()
    for future in pending:
        future.result(30)

    wait_until(lambda: {k: processor.get(k) for k in sums} == sums, timeout=60, message="processor sums")
    view = backend.view(group_table(group), codec.Int64(), state_dir=tmp_path / "view")
    view.start()
    try:
        assert view.wait_recovered(60)
        wait_until(lambda: {k: view.get(k) for k in sums} == sums, timeout=60, message="view sums")
    finally:
        view.stop()


def test_b24_join_must_be_copartitioned_lookup_need_not(
        brokers: str, names: Names, state_dir: Path, start: Start) -> None:
    """B24: a Join table with another partition count fails at start naming both counts; a Lookup works."""
    clicks, joined, looked_up = names("clicks"), names("joined"), names("looked")
    topics = manager(brokers)
    topics.ensure_stream(clicks, 10)
    topics.ensure_table(joined, 5)
    topics.ensure_table(looked_up, 5)

    def ignore(ctx: Context, _msg: Any) -> None:
        pass

    graph = define_group(names("b24-join"), Input(clicks, codec.String(), ignore), Join(joined, codec.String()))
    expected = f"topics are not copartitioned! topic '{joined}' has 5 partitions, expected 10"
    with pytest.raises(TopicError, match=re.escape(expected)):
        Processor(brokers, graph, state_dir=state_dir).run()

    lookup_keys = keys_covering(5, 1)
    emit_all(brokers, looked_up, [(k, f"name-of-{k}") for k in lookup_keys])

    def copy(ctx: Context, wanted: Any) -> None:
        ctx.set_value(ctx.lookup(looked_up, wanted) or "missing")

    graph = define_group(names("b24-lookup"), Input(clicks, codec.String(), copy), Lookup(looked_up, codec.String()),
                         Persist(codec.String()))
    processor = Processor(brokers, graph, state_dir=state_dir / "lookup", commit_interval=0.2)
    running = start(processor)
    wait_until(lambda: processor.recovered() and len(processor.active_partitions()) == 10, timeout=60,
               message="lookup table and all 10 partitions recovered")
    emit_all(brokers, clicks, [(f"click-{k}", k) for k in lookup_keys])
    wait_until(lambda: all(processor.get(f"click-{k}") == f"name-of-{k}" for k in lookup_keys), timeout=60,
               message="values looked up in a 5-partition table by a 10-partition group")
    running.stop()


def topic_config(brokers: str, topic: str, name: str) -> str:
    """topic_config is a topic's configuration value, read with a plain AdminClient."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = AdminClient({"bootstrap.servers": brokers})
    value: str = admin.describe_configs([resource])[resource].result(timeout=30)[name].value
    return value


def test_b25_topic_manager_policies_and_partition_counts(brokers: str, names: Names) -> None:
    """B25: tables are compacted, streams use delete; count mismatches of existing topics are reported."""
    topics = manager(brokers)
    table, stream = names("table"), names("stream")
    assert topics.partitions(table) is None
    topics.ensure_table(table, 3)
    topics.ensure_stream(stream, 3)
    assert topic_config(brokers, table, "cleanup.policy") == "compact"
    assert topic_config(brokers, stream, "cleanup.policy") == "delete"
    assert (topics.partitions(table), topics.partitions(stream)) == (3, 3)

    topics.ensure_stream(stream, 3)
    topics.ensure_table(table, 3)
    with pytest.raises(TopicError, match=re.escape(f"topic '{stream}' has 3 partitions, expected 4")):
        topics.ensure_stream(stream, 4)
    with pytest.raises(TopicError, match=re.escape(f"topic '{table}' has 3 partitions, expected 2")):
        topics.ensure_table(table, 2)
    # A stream is not a valid table: it would lose keys to retention.
    with pytest.raises(TopicError, match="compact"):
        topics.ensure_table(stream, 3)


def test_b26_view_get_before_start_missing_keys_and_recovered(
        brokers: str, names: Names, tmp_path: Path) -> None:
    """B26: get before start fails, a missing key is None, recovered() only once all preloaded data is in."""
    table = names("table")
    manager(brokers).ensure_table(table, 4)
    # Every key twice: a view calling itself recovered too early would show first values or miss keys.
    produce_raw(brokers, table, [(f"k{i}".encode(), f"first-{i}".encode()) for i in range(10_000)]
                + [(f"k{i}".encode(), f"last-{i}".encode()) for i in range(10_000)])
    view = View(brokers, table, codec.String(), state_dir=tmp_path / "view")
    with pytest.raises(NotRunningError):
        view.get("k1")
    assert not view.recovered()
    view.start()
    try:
        wait_until(view.recovered, timeout=60, interval=0.01, message="view recovered")
        assert dict(view.iterate()) == {f"k{i}": f"last-{i}" for i in range(10_000)}
        assert view.get("no-such-key") is None
        assert not view.has("no-such-key")
    finally:
        view.stop()
    with pytest.raises(NotRunningError):
        view.get("k1")


def table_with(brokers: str, names: Names, records: list[tuple[bytes, bytes]],
               policy: str = "compact") -> str:
    """table_with is a new one-partition table topic holding records at offsets 0.. in order."""
    topic = names("table")
    topics = manager(brokers)
    if policy == "compact":
        topics.ensure_table(topic, 1)
    else:
        topics.ensure_stream(topic, 1)
    produce_raw(brokers, topic, records, partition=0)
    return topic


def view_over(brokers: str, topic: str, builder: MemoryStorageBuilder) -> View:
    """view_over starts a view of topic on the given storage and waits until it recovered."""
    view = View(brokers, topic, codec.String(), storage_builder=builder)
    view.start()
    assert view.wait_recovered(60)
    return view


def preset(builder: MemoryStorageBuilder, topic: str, data: dict[bytes, bytes], offset: int) -> None:
    """preset fills partition 0 of topic in builder's storage as if recovered up to offset."""
    builder(topic, 0).write(data.items(), offset)


def test_b29_view_recovery_starts_after_the_stored_offset(brokers: str, names: Names) -> None:
    """B29: a stored offset of 4 makes recovery read from offset 5: records 0..4 are not applied again."""
    records = [(b"old", f"old{i}".encode()) for i in range(5)] + [(b"new", f"new{i}".encode()) for i in range(5, 10)]
    topic = table_with(brokers, names, records)
    builder = MemoryStorageBuilder()
    preset(builder, topic, {b"old": b"preset"}, 4)
    view = view_over(brokers, topic, builder)
    try:
        assert (view.get("old"), view.get("new")) == ("preset", "new9")
        assert builder(topic, 0).offset() == 9
    finally:
        view.stop()


def test_b29_stored_offset_at_or_past_the_end_counts_as_recovered(
        brokers: str, names: Names) -> None:
    """B29: a stored offset at the last record, or past the end, is recovered without re-reading the topic."""
    topic = table_with(brokers, names, [(b"a", f"a{i}".encode()) for i in range(10)])
    for stored in (9, 50):
        builder = MemoryStorageBuilder()
        preset(builder, topic, {b"a": b"preset"}, stored)
        view = view_over(brokers, topic, builder)
        try:
            assert view.get("a") == "preset"
            # The view keeps following: a record appended afterwards arrives.
            produce_raw(brokers, topic, [(b"b", f"after-{stored}".encode())])
            wait_until(lambda v=view, s=stored: v.get("b") == f"after-{s}", message="record appended after start")
            assert view.get("a") == "preset"
        finally:
            view.stop()


def test_b29_stored_offset_below_the_low_watermark_still_recovers(
        brokers: str, names: Names) -> None:
    """B29: when Kafka deleted the records after the stored offset, recovery starts at the oldest one left."""
    topic = table_with(brokers, names, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)], policy="delete")
    admin = AdminClient({"bootstrap.servers": brokers})
    deleted = admin.delete_records([TopicPartition(topic, 0, 6)])
    assert next(iter(deleted.values())).result(timeout=30).low_watermark == 6
    builder = MemoryStorageBuilder()
    preset(builder, topic, {b"k0": b"preset"}, 2)
    view = view_over(brokers, topic, builder)
    try:
        assert {k: view.get(k) for k in ("k0", "k3", "k5", "k6", "k9")} == {
            "k0": "preset", "k3": None, "k5": None, "k6": "v6", "k9": "v9"}
    finally:
        view.stop()


def test_b29_processor_resumes_from_its_stored_offset(
        brokers: str, names: Names, state_dir: Path, start: Start) -> None:
    """B29: a restarted processor reads only the table records after its stored offset."""
    clicks, group = names("clicks"), names("b29")
    manager(brokers).ensure_stream(clicks, 1)

    def count(ctx: Context, _msg: Any) -> None:
        ctx.set_value((ctx.value() or 0) + 1)

    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))

    def processor() -> Processor:
        return Processor(brokers, graph, state_dir=state_dir, commit_interval=0.2)

    first = processor()
    running = start(first)
    wait_until(first.recovered, message="first run recovered")
    emit_all(brokers, clicks, [("k", "click")] * 3)
    wait_until(lambda: first.get("k") == 3, message="count 3")
    running.stop()

    table = group_table(group)
    storage = RocksDBStorageBuilder(state_dir)(table, 0)
    try:
        assert storage.offset() == 2
        # A local value no table record has: re-reading offsets <= 2 would overwrite it with 3.
        storage.write([(b"k", b"1000")], None)
    finally:
        storage.close()
    produce_raw(brokers, table, [(b"x", b"7")])

    second = processor()
    running = start(second)
    wait_until(lambda: second.recovered() and second.get("x") == 7, message="record appended while stopped")
    assert second.get("k") == 1000
    emit_all(brokers, clicks, [("k", "click")])
    wait_until(lambda: second.get("k") == 1001, message="counting on from the local value")
    running.stop()


# -- a broker of our own, stopped and started again -------------------------------------------------


def test_b27_view_serves_through_a_broker_outage_and_catches_up(
        own_broker: tuple[str, Kafka], names: Names, tmp_path: Path) -> None:
    """B27: a view keeps its last values while Kafka is down and is current again after it returns."""
    brokers, kafka = own_broker
    table = names("table")
    manager(brokers).ensure_table(table, 2)
    emit_all(brokers, table, [("a", "1"), ("b", "2")])
    view = View(brokers, table, codec.String(), state_dir=tmp_path / "view", reconnect_backoff=0.5)
    view.start()
    try:
        assert view.wait_recovered(60)
        assert (view.get("a"), view.get("b")) == ("1", "2")
        kafka("stop")
        # Reads are served from local storage during the whole outage, until the broker answers again.
        restart = threading.Thread(target=kafka, args=("start",), kwargs={"keep_data": True})
        restart.start()
        served = 0
        while restart.is_alive():
            assert (view.get("a"), view.get("b"), view.get("c")) == ("1", "2", None)
            served += 1
            restart.join(0.1)
        assert served > 10
        emit_all(brokers, table, [("a", "10"), ("c", "3")])
        wait_until(lambda: (view.get("a"), view.get("b"), view.get("c")) == ("10", "2", "3"), timeout=120,
                   message="the view to see values emitted after the broker came back")
        assert view.error is None
    finally:
        view.stop()
