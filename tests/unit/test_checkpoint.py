"""Checkpoints of both guarantees against a fake CheckpointHost: order, rebalances, outages, aborts, fencing.

The host's producer, group consumer and watermark client are fakes that log every call and raise the
KafkaErrors a test queues for a method; tables and partition runs are the real ones over MemoryStorage.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from pygoka.checkpoint import AtLeastOnce, Checkpointer, ExactlyOnce
from pygoka.errors import (
    DeliveryError,
    FencedError,
    OutageError,
    ProcessingError,
    ProducerFailedError,
    TransactionExpiredError,
)
from pygoka.options import ProcessorOptions
from pygoka.partition import PartitionRun
from pygoka.storage import MemoryStorage
from pygoka.table import PartitionTable


def kafka_error(code: int, *, fatal: bool = False, retriable: bool = False, abort: bool = False) -> KafkaException:
    return KafkaException(KafkaError(code, f"error {code}", fatal=fatal, retriable=retriable,
                                     txn_requires_abort=abort))


class Client:
    """Client logs its calls into a shared list and raises what was queued for a method, in order."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.failures: dict[str, list[BaseException]] = defaultdict(list)

    def fail(self, method: str, *errors: BaseException) -> None:
        self.failures[method].extend(errors)

    def call(self, method: str) -> None:
        self.log.append(f"{self.name}.{method}")
        if self.failures[method]:
            raise self.failures[method].pop(0)


class FakeProducer(Client):
    def flush(self, timeout: float) -> int:
        self.call("flush")
        return 0

    def poll(self, timeout: float) -> int:
        return 0

    def init_transactions(self, timeout: float) -> None:
        self.call("init_transactions")

    def begin_transaction(self) -> None:
        self.call("begin_transaction")

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: Any, timeout: float) -> None:
        self.call("send_offsets_to_transaction")

    def commit_transaction(self, timeout: float) -> None:
        self.call("commit_transaction")

    def abort_transaction(self, timeout: float) -> None:
        self.call("abort_transaction")


class FakeConsumer(Client):
    def __init__(self, log: list[str]) -> None:
        super().__init__("consumer", log)
        self.committed: list[tuple[str, int, int]] = []
        self.seeks: list[tuple[str, int, int]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        self.call("commit")
        self.committed += [(tp.topic, tp.partition, tp.offset) for tp in offsets]
        return offsets

    def consumer_group_metadata(self) -> object:
        return object()

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class FakeWatermarks(Client):
    def __init__(self, log: list[str]) -> None:
        super().__init__("watermarks", log)
        self.high = 0

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.call("offsets_for_times")
        return [TopicPartition(tp.topic, tp.partition, self.high) for tp in partitions]


class LoggedStorage(MemoryStorage):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def write(self, updates: Any, offset: int | None) -> None:
        self.log.append("storage.write")
        super().write(updates, offset)


class FakeHost:
    """FakeHost is a CheckpointHost with one active partition (0) of input topic 'in' and a group table."""

    group = "g"
    consumed = ["in"]

    def __init__(self) -> None:
        self.log: list[str] = []
        self.producers = [FakeProducer("producer0", self.log)]
        self.consumer = FakeConsumer(self.log)
        self.watermarks = FakeWatermarks(self.log)
        self.table = PartitionTable("g-table", 0, LoggedStorage(self.log))
        self.table.caught_up()
        self.run = PartitionRun(0, self.table, {})
        self.runs = {0: self.run}
        self.fatal_error: KafkaError | None = None
        self.delivery_failures: list[tuple[KafkaError, str, int]] = []
        self.rewinds: list[str] = []
        self.busy: threading.Thread | None = None

    @property
    def producer(self) -> FakeProducer:
        return self.producers[-1]

    def take_delivery_failure(self) -> tuple[KafkaError, str, int] | None:
        return self.delivery_failures.pop(0) if self.delivery_failures else None

    def new_producer(self, busy: threading.Thread | None = None) -> None:
        self.busy = busy
        self.producers.append(FakeProducer(f"producer{len(self.producers)}", self.log))

    def rewound(self, reason: str) -> None:
        self.rewinds.append(reason)

    def process(self, first: int, last: int) -> None:
        """process plays the runner processing offsets first..last of 'in', each updating key k."""
        for offset in range(first, last + 1):
            self.table.set(b"k", str(offset).encode())
        self.run.processed_through("in", first, last, last - first + 1)
        self.watermarks.high = last + 1  # one table record per message, the table partition's end


class Clock:
    """Clock stands in for the time module of pygoka.checkpoint: monotonic() is what a test sets."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("pygoka.checkpoint.time", fake)
    return fake


def checkpointer(host: FakeHost, guarantee: str = "at_least_once", **options: Any) -> Checkpointer:
    opts = ProcessorOptions(guarantee=guarantee, transactional_id="g-tx", **options)
    result = ExactlyOnce(host, opts) if opts.exactly_once else AtLeastOnce(host, opts)
    result.start()
    host.log.clear()
    return result


# -- at-least-once ---------------------------------------------------------------------------------


def test_at_least_once_flushes_then_stores_the_tables_then_commits() -> None:
    host = FakeHost()
    cp = checkpointer(host)
    host.process(0, 4)
    assert cp.checkpoint() is True
    assert host.log == ["producer0.flush", "watermarks.offsets_for_times", "storage.write", "consumer.commit"]
    assert host.consumer.committed == [("in", 0, 5)]
    assert (host.table.offset(), host.table.get(b"k"), host.run.committed) == (4, b"4", {"in": 5})
    host.log.clear()
    assert cp.checkpoint() is True  # nothing new: nothing stored, nothing committed
    assert host.log == ["producer0.flush"]


def test_a_rebalance_during_the_commit_keeps_the_stored_table_and_commits_at_the_next_checkpoint() -> None:
    host = FakeHost()
    cp = checkpointer(host)
    host.process(0, 2)
    host.consumer.fail("commit", kafka_error(KafkaError.REBALANCE_IN_PROGRESS))
    assert cp.checkpoint() is False
    assert (host.table.offset(), host.run.committed) == (2, {})
    assert cp.checkpoint() is True
    assert host.consumer.committed == [("in", 0, 3)]


def test_at_least_once_revoke_whose_commit_fails_gives_up_without_raising() -> None:
    host = FakeHost()
    cp = checkpointer(host)
    host.process(0, 1)
    host.consumer.fail("commit", kafka_error(KafkaError.ILLEGAL_GENERATION))
    cp.revoke()
    assert host.run.committed == {}
    assert host.table.get(b"k") == b"1"  # acknowledged by Kafka and stored: the next owner reads it back


def test_transient_commit_errors_are_retried_until_max_outage(clock: Clock) -> None:
    host = FakeHost()
    cp = checkpointer(host, max_outage=30)
    host.process(0, 0)
    host.consumer.fail("commit", *[kafka_error(KafkaError._TRANSPORT) for _ in range(3)])
    assert cp.checkpoint() is False
    clock.now += 29
    assert cp.checkpoint() is False
    clock.now += 2
    with pytest.raises(OutageError, match=r"Kafka failed for 31 s, longer than max_outage \(30 s\)") as raised:
        cp.checkpoint()
    assert raised.value.kafka_error.code() == KafkaError._TRANSPORT


def test_a_successful_commit_ends_the_outage(clock: Clock) -> None:
    host = FakeHost()
    cp = checkpointer(host, max_outage=30)
    host.process(0, 0)
    host.consumer.fail("commit", kafka_error(KafkaError._TRANSPORT))
    assert cp.checkpoint() is False
    clock.now += 20
    assert cp.checkpoint() is True
    host.process(1, 1)
    host.consumer.fail("commit", kafka_error(KafkaError._TRANSPORT))
    clock.now += 20
    assert cp.checkpoint() is False  # a new outage: 0 s of it so far, not 40


def test_a_failed_delivery_stops_before_anything_is_stored_or_committed() -> None:
    host = FakeHost()
    cp = checkpointer(host, max_outage=60)
    host.process(0, 3)
    host.delivery_failures.append((KafkaError(KafkaError._MSG_TIMED_OUT, "timed out"), "g-table", 0))
    with pytest.raises(DeliveryError, match="within max_outage \\(60 s\\)") as raised:
        cp.checkpoint()
    assert (raised.value.topic, raised.value.partition) == ("g-table", 0)
    assert raised.value.kafka_error.code() == KafkaError._MSG_TIMED_OUT
    assert host.log == ["producer0.flush"]
    assert host.table.offset() is None


def test_an_unknown_table_end_keeps_the_tables_previous_offset() -> None:
    host = FakeHost()
    cp = checkpointer(host)
    host.process(0, 0)
    cp.checkpoint()
    host.process(1, 1)
    host.watermarks.fail("offsets_for_times", kafka_error(KafkaError._TIMED_OUT))
    assert cp.checkpoint() is True
    assert (host.table.offset(), host.table.get(b"k"), host.consumer.committed[-1]) == (0, b"1", ("in", 0, 2))


def test_the_ends_of_all_dirty_tables_are_asked_in_one_request_and_a_partition_error_keeps_that_ones_offset(
) -> None:
    host = FakeHost()
    second = PartitionTable("g-table", 1, LoggedStorage(host.log))
    second.caught_up()
    host.runs[1] = PartitionRun(1, second, {})
    cp = checkpointer(host)
    host.process(0, 3)
    second.set(b"j", b"1")
    host.runs[1].processed_through("in", 0, 0, 1)
    asked: list[list[tuple[str, int]]] = []

    def ends(partitions: list[TopicPartition], timeout: float) -> list[Any]:
        asked.append([(tp.topic, tp.partition) for tp in partitions])
        # A TopicPartition's error is read-only: the answer for partition 1 is a look-alike carrying one.
        unknown = SimpleNamespace(topic="g-table", partition=1, offset=-1001,
                                  error=KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return [TopicPartition("g-table", 0, 4), unknown]

    host.watermarks.offsets_for_times = ends  # type: ignore[method-assign]
    assert cp.checkpoint() is True
    assert asked == [[("g-table", 0), ("g-table", 1)]]
    assert (host.table.offset(), second.offset(), second.get(b"j")) == (3, None, b"1")


def test_a_commit_error_that_is_no_rebalance_or_outage_stops_the_processor() -> None:
    host = FakeHost()
    cp = checkpointer(host)
    host.process(0, 0)
    host.consumer.fail("commit", kafka_error(KafkaError.GROUP_AUTHORIZATION_FAILED))
    with pytest.raises(ProcessingError, match="cannot commit offsets"):
        cp.checkpoint()


# -- exactly-once ----------------------------------------------------------------------------------


def test_exactly_once_stores_the_tables_only_after_the_transaction_committed() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 4)
    assert cp.checkpoint() is True
    assert host.log == ["producer0.flush", "producer0.send_offsets_to_transaction", "producer0.commit_transaction",
                        "watermarks.offsets_for_times", "storage.write", "producer0.begin_transaction"]
    assert (host.table.offset(), host.run.committed) == (4, {"in": 5})


def test_a_rebalance_during_the_transaction_aborts_it_and_rewinds_to_the_last_commit() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 4)
    cp.checkpoint()
    host.process(5, 9)
    host.producer.fail("send_offsets_to_transaction", kafka_error(KafkaError.ILLEGAL_GENERATION, abort=True))
    host.log.clear()
    assert cp.checkpoint() is False
    assert host.log == ["producer0.flush", "producer0.send_offsets_to_transaction", "producer0.abort_transaction",
                        "producer0.begin_transaction"]
    assert host.consumer.seeks == [("in", 0, 5)]
    assert (host.table.get(b"k"), host.table.dirty_count(), host.run.commit_offsets()) == (b"4", 0, {})
    assert len(host.rewinds) == 1


def test_before_the_first_commit_a_rewind_goes_to_the_first_processed_offset() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(7, 9)
    host.producer.fail("commit_transaction", kafka_error(KafkaError._TIMED_OUT, abort=True))
    assert cp.checkpoint() is False
    assert host.consumer.seeks == [("in", 0, 7)]


def test_an_abort_that_fails_is_done_by_a_new_producer() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    host.producer.fail("commit_transaction", kafka_error(KafkaError._TIMED_OUT, abort=True))
    host.producer.fail("abort_transaction", kafka_error(KafkaError._TIMED_OUT, retriable=True))
    assert cp.checkpoint() is False
    assert host.log == ["producer0.flush", "producer0.send_offsets_to_transaction", "producer0.commit_transaction",
                        "producer0.abort_transaction", "producer1.init_transactions", "producer1.begin_transaction"]
    host.log.clear()
    host.process(0, 2)
    assert cp.checkpoint() is True
    assert all(entry.startswith(("producer1.", "watermarks.", "storage.")) for entry in host.log)


def test_a_producer_that_lost_every_broker_is_replaced_without_trying_its_abort() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 0)
    cp.connection_lost()
    assert cp.checkpoint() is False
    assert host.log == ["producer1.init_transactions", "producer1.begin_transaction"]
    assert host.table.dirty_count() == 0


def test_a_fenced_producer_stops_the_processor_with_nothing_stored() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    host.producer.fail("commit_transaction", kafka_error(KafkaError._FENCED, fatal=True))
    with pytest.raises(FencedError, match="transactional producer 'g-tx' failed: error") as raised:
        cp.checkpoint()
    assert raised.value.kafka_error.code() == KafkaError._FENCED
    assert type(raised.value) is FencedError  # a newer instance's: run() stops
    assert host.table.offset() is None and host.run.committed == {}


@pytest.mark.parametrize("code", [KafkaError._FENCED, KafkaError.INVALID_TXN_STATE])
def test_a_producer_fenced_after_an_outage_is_told_apart_from_a_zombie(code: int) -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    # The commit times out while Kafka is away; once it is back the broker has aborted the transaction.
    host.producer.fail("commit_transaction", kafka_error(KafkaError._TIMED_OUT, retriable=True),
                       kafka_error(code, fatal=True))
    with pytest.raises(TransactionExpiredError, match="after an outage: the broker aborted the transaction") \
            as raised:
        cp.checkpoint()
    assert raised.value.kafka_error.code() == code
    assert host.table.offset() is None and host.run.committed == {}


def test_an_invalid_transaction_state_outside_an_outage_is_no_expiry() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    host.producer.fail("commit_transaction", kafka_error(KafkaError.INVALID_TXN_STATE, fatal=True))
    with pytest.raises(ProducerFailedError) as raised:
        cp.checkpoint()
    assert not isinstance(raised.value, FencedError)


def test_retriable_transactional_errors_are_retried_until_max_outage(clock: Clock) -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once", max_outage=20)
    host.process(0, 0)
    failures = 0

    def commit_transaction(timeout: float) -> None:
        nonlocal failures
        failures += 1
        clock.now += timeout
        raise kafka_error(KafkaError._TIMED_OUT, retriable=True)

    host.producer.commit_transaction = commit_transaction  # type: ignore[method-assign]
    with pytest.raises(OutageError, match="longer than max_outage \\(20 s\\)"):
        cp.checkpoint()
    assert failures == 5  # calls of max_outage / 4 = 5 s each until more than 20 s passed


def test_revoke_aborts_without_rewinding_what_leaves_anyway() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    host.producer.fail("commit_transaction", kafka_error(KafkaError.REBALANCE_IN_PROGRESS, abort=True))
    cp.revoke()
    assert host.consumer.seeks == []
    assert host.table.dirty_count() == 0 and host.run.committed == {}


def test_an_incremental_revoke_that_aborts_rewinds_the_partitions_that_stay() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    host.producer.fail("commit_transaction", kafka_error(KafkaError.REBALANCE_IN_PROGRESS, abort=True))
    cp.revoke(keeping=True)
    # Processed again from where consumption started: the aborted transaction held offsets 0..2.
    assert host.consumer.seeks == [("in", 0, 0)]
    assert host.table.dirty_count() == 0 and host.run.committed == {}


def test_a_transient_delivery_failure_aborts_and_a_permanent_one_stops() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 0)
    host.delivery_failures.append((KafkaError(KafkaError.NOT_ENOUGH_REPLICAS, "few", retriable=True), "out", 1))
    assert cp.checkpoint() is False
    assert "producer0.abort_transaction" in host.log
    host.process(0, 0)
    host.delivery_failures.append((KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"), "out", 1))
    with pytest.raises(ProcessingError, match="producing a record failed: too large"):
        cp.checkpoint()


class HangingProducer(FakeProducer):
    """HangingProducer's send_offsets_to_transaction ignores its timeout until released, as librdkafka#5456's."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.release = threading.Event()

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: Any, timeout: float) -> None:
        self.call("send_offsets_to_transaction")
        self.release.wait(5)


def test_sending_offsets_that_hangs_past_its_timeout_is_redone_by_a_new_producer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost()
    hanging = HangingProducer("producer0", host.log)
    host.producers = [hanging]
    cp = checkpointer(host, "exactly_once")
    monkeypatch.setattr("pygoka.checkpoint._HUNG_GRACE", 0.0, raising=False)
    assert isinstance(cp, ExactlyOnce)
    cp._call_timeout = 0.05
    host.process(0, 2)
    try:
        assert cp.checkpoint() is False
        assert host.log == ["producer0.flush", "producer0.send_offsets_to_transaction",
                            "producer1.init_transactions", "producer1.begin_transaction"]
        # The old producer may be closed only once the hung call returned.
        assert host.busy is not None and host.busy.is_alive()
        assert host.consumer.seeks == [("in", 0, 0)] and host.table.dirty_count() == 0
        host.log.clear()
        host.process(0, 2)
        assert cp.checkpoint() is True
        assert host.run.committed == {"in": 3}
    finally:
        hanging.release.set()


def test_sending_offsets_that_times_out_is_redone_by_a_new_producer() -> None:
    host = FakeHost()
    cp = checkpointer(host, "exactly_once")
    host.process(0, 2)
    # librdkafka asking a coordinator it still caches after an outage: every retry would time out as well.
    host.producer.fail("send_offsets_to_transaction", kafka_error(KafkaError._TIMED_OUT, retriable=True))
    assert cp.checkpoint() is False
    assert host.log == ["producer0.flush", "producer0.send_offsets_to_transaction", "producer1.init_transactions",
                        "producer1.begin_transaction"]
    assert host.consumer.seeks == [("in", 0, 0)] and host.table.dirty_count() == 0
    host.log.clear()
    host.process(0, 2)
    assert cp.checkpoint() is True
    assert host.run.committed == {"in": 3}
