"""Exactly-once processing (guarantee="exactly_once"), on Kafka and on the Tester unless marked.

Input offsets, table updates and outputs of a checkpoint are committed in one Kafka transaction, the
local store gets a transaction's table updates only after it committed, and an aborted transaction is
processed again from the last committed offsets. Crashes are in tests/faults/test_crash.py, broker
outages in tests/faults/test_broker_outage.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from helpers import Names, Running, Start, count, wait_until
from procs import FAST_REBALANCE
from pygoka import (
    CallbackError,
    Context,
    Input,
    Output,
    Persist,
    ProcessingError,
    Processor,
    ProcessorOptions,
    codec,
    define_group,
    group_table,
)
from pygoka.graph import GroupGraph
from pygoka.kafka.transport import Transport

if TYPE_CHECKING:
    from backends import Backend

pytestmark = pytest.mark.kafka
pytest_plugins = ["backends"]

PARTITIONS = 2
EXACTLY_ONCE: dict[str, Any] = {"guarantee": "exactly_once", "commit_interval": 0.2, "default_partitions": PARTITIONS,
                                "consumer_config": dict(FAST_REBALANCE)}


def count_and_forward(output: str) -> Callable[[Context, Any], None]:
    """count_and_forward counts each key in the table and emits the message number to output."""

    def callback(ctx: Context, msg: Any) -> None:
        ctx.set_value((ctx.value() or 0) + 1)
        ctx.emit(output, ctx.key, msg)

    return callback


def emit_numbered(backend: Backend, topic: str, count: int, keys: int, partitions: int = PARTITIONS,
                  first: int = 0) -> Counter[str]:
    """emit_numbered emits count messages numbered from first over keys keys and returns the count per key."""
    truth: Counter[str] = Counter()
    with backend.emitter(topic, codec.String(), partitions=partitions) as emitter:
        for number in range(first, first + count):
            key = f"key-{number % keys}"
            emitter.emit(key, str(number))
            truth[key] += 1
    return truth


def read_all(backend: Backend, topic: str, partitions: int, isolation: str = "read_committed") -> list[Any]:
    """read_all reads every record of topic, up to its high watermark, as a consumer with isolation sees it."""
    consumer = backend.consumer({"group.id": f"reader-{topic}", "isolation.level": isolation,
                                 "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        # A read_uncommitted answer: the high watermark, past aborted records and transaction markers.
        marks = backend.consumer({"group.id": f"marks-{topic}", "isolation.level": "read_uncommitted"})
        try:
            ends = {tp.partition: marks.get_watermark_offsets(tp, timeout=10) for tp in tps}
        finally:
            marks.close()
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        records: list[Any] = []
        pending = {p for p, (low, high) in ends.items() if high > low}
        deadline = time.monotonic() + 60
        while pending:
            assert time.monotonic() < deadline, f"{topic}: partitions {pending} not read to {ends}"
            records.extend(m for m in consumer.consume(500, timeout=0.2) if m.error() is None)
            pending = {tp.partition for tp in consumer.position([TopicPartition(topic, p) for p in pending])
                       if tp.offset < ends[tp.partition][1]}
        return records
    finally:
        consumer.close()


def values(p: Processor, keys: list[str]) -> dict[str, Any]:
    """values reads keys from the processor's table once it holds its partitions."""
    return {key: p.get(key) for key in keys} if p.recovered() else {}


def test_counts_and_outputs_are_exact_and_written_in_transactions(backend: Backend, names: Names, state_dir: Path,
                                                                  start: Start) -> None:
    topic, output, group = names("in"), names("out"), names("g")
    truth = emit_numbered(backend, topic, 300, keys=7)
    graph = define_group(group, Input(topic, codec.String(), count_and_forward(output)), Persist(codec.Int64()),
                         Output(output, codec.String()))
    running = start(backend.processor(graph, state_dir=state_dir, **EXACTLY_ONCE))
    wait_until(lambda: values(running.target, list(truth)) == dict(truth), message="exact counts")
    running.stop()

    forwarded = sorted(int(m.value()) for m in read_all(backend, output, PARTITIONS))
    assert forwarded == list(range(300)), "each message forwarded exactly once"
    if backend.name == "kafka":
        # A commit marker takes an offset after each transaction's records: the table ends with one.
        table = read_all(backend, group_table(group), PARTITIONS, "read_uncommitted")
        consumer = backend.consumer({"group.id": names("marks"), "isolation.level": "read_uncommitted"})
        try:
            for partition in {m.partition() for m in table}:
                last = max(m.offset() for m in table if m.partition() == partition)
                high = consumer.get_watermark_offsets(TopicPartition(group_table(group), partition), timeout=10)[1]
                assert high == last + 2, f"partition {partition}: last record {last}, high watermark {high}"
        finally:
            consumer.close()


class FlakyProducer:
    """FlakyProducer wraps a producer and fails its commit_transaction calls number `fail_on` with an
    abortable error, without committing, as a broker does when a transaction timed out."""

    def __init__(self, inner: Any, fail_on: set[int], abort_fails: bool = False) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.abort_fails = abort_fails
        self.commits = 0
        self.injected = 0
        self.failed_aborts = 0

    def abort_transaction(self, timeout: float | None = None) -> None:
        if self.abort_fails:
            # As librdkafka waiting for a coordinator it lost in an outage: the call times out, again and again.
            self.failed_aborts += 1
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "injected: timed out waiting for the coordinator",
                                            retriable=True))
        self.inner.abort_transaction(timeout)

    def commit_transaction(self, timeout: float | None = None) -> None:
        self.commits += 1
        if self.commits in self.fail_on:
            self.injected += 1
            raise KafkaException(KafkaError(KafkaError._STATE, "injected: transaction timed out",
                                            txn_requires_abort=True))
        self.inner.commit_transaction(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class FlakyRun:
    """FlakyRun is a counting, forwarding exactly-once processor whose producers fail as a test says."""

    topic: str
    output: str
    graph: GroupGraph
    producers: list[FlakyProducer]
    running: Running
    truth: Counter[str]


def start_flaky(backend: Backend, names: Names, state_dir: Path, start: Start, messages: int,
                wrap: Callable[[Any, int], FlakyProducer]) -> FlakyRun:
    """start_flaky starts the processor on `messages` numbered messages, its n-th producer built by wrap(inner, n),
    and waits for its first commit and exact counts."""
    topic, output, group = names("in"), names("out"), names("g")
    producers: list[FlakyProducer] = []

    def flaky(config: dict[str, Any]) -> FlakyProducer:
        producers.append(wrap(backend.transport.producer(config), len(producers)))
        return producers[-1]

    transport = Transport(consumer=backend.transport.consumer, producer=flaky,
                          topic_manager=backend.transport.topic_manager)
    graph = define_group(group, Input(topic, codec.String(), count_and_forward(output)), Persist(codec.Int64()),
                         Output(output, codec.String()))
    truth = emit_numbered(backend, topic, messages, keys=5)
    running = start(backend.processor(graph, state_dir=state_dir, **{**EXACTLY_ONCE, "transport": transport}))
    wait_until(lambda: producers and producers[0].commits >= 1 and values(running.target, list(truth)) == dict(truth),
               message="the first commit")
    return FlakyRun(topic, output, graph, producers, running, truth)


def test_an_aborted_transaction_is_processed_again_from_the_last_commit(backend: Backend, names: Names,
                                                                        state_dir: Path, start: Start) -> None:
    run = start_flaky(backend, names, state_dir, start, 100, lambda inner, _n: FlakyProducer(inner, fail_on={2, 3, 4}))
    producers, running, truth = run.producers, run.running, run.truth
    # Each aborted commit makes the processor process its messages again and commit again.
    truth.update(emit_numbered(backend, run.topic, 100, keys=5, first=100))
    wait_until(lambda: producers[0].injected == 3 and values(running.target, list(truth)) == dict(truth),
               message="three aborted transactions and exact counts")
    running.stop()
    assert running.error is None

    # A restart reads the local store and the committed offsets: it processes again only what was aborted
    # (the last abort may be the one of the final commit), so the store must hold no aborted update.
    again = start(backend.processor(run.graph, state_dir=state_dir, **EXACTLY_ONCE))
    wait_until(lambda: values(again.target, list(truth)) == dict(truth), message="counts after a restart")
    again.stop()
    forwarded = Counter(int(m.value()) for m in read_all(backend, run.output, PARTITIONS))
    assert forwarded == Counter(range(200)), "every message forwarded exactly once despite three aborted transactions"


def test_an_abort_that_does_not_finish_is_done_by_a_new_producer(backend: Backend, names: Names,
                                                                 state_dir: Path, start: Start) -> None:
    # Only the first producer fails: its second commit, then every abort.
    run = start_flaky(backend, names, state_dir, start, 50,
                      lambda inner, n: FlakyProducer(inner, fail_on={2} if n == 0 else set(), abort_fails=n == 0))
    producers, running, truth = run.producers, run.running, run.truth
    truth.update(emit_numbered(backend, run.topic, 50, keys=5, first=50))
    # Counts are read only once the second producer committed: before, they may still be the aborted ones.
    wait_until(lambda: len(producers) == 2 and producers[1].commits >= 1
               and values(running.target, list(truth)) == dict(truth),
               message="a commit of a second producer, and exact counts")
    running.stop()
    assert running.error is None
    assert (producers[0].injected, producers[0].failed_aborts) == (1, 1)
    forwarded = Counter(int(m.value()) for m in read_all(backend, run.output, PARTITIONS))
    assert forwarded == Counter(range(100)), "every message forwarded exactly once"


def test_a_failing_callback_aborts_its_transaction(backend: Backend, names: Names, state_dir: Path,
                                                   start: Start) -> None:
    topic, output, group = names("in"), names("out"), names("g")
    truth = emit_numbered(backend, topic, 50, keys=3, partitions=1)
    fail = threading.Event()
    fail.set()
    forward = count_and_forward(output)

    def callback(ctx: Context, msg: Any) -> None:
        if msg == "40" and fail.is_set():
            raise ValueError("cannot handle 40")
        forward(ctx, msg)

    graph = define_group(group, Input(topic, codec.String(), callback), Persist(codec.Int64()),
                         Output(output, codec.String()))
    options = {**EXACTLY_ONCE, "partitions": 1, "commit_interval": 60.0}
    first = start(backend.processor(graph, state_dir=state_dir, **options))
    first.join(60)
    error = first.error
    assert isinstance(error, ProcessingError), repr(error)
    assert (error.topic, error.partition, error.offset) == (topic, 0, 40)
    # The 40 messages before the failing one were processed in the same transaction: none of them is visible.
    assert read_all(backend, output, 1) == []

    fail.clear()
    second = start(backend.processor(graph, state_dir=state_dir, **options))
    wait_until(lambda: values(second.target, list(truth)) == dict(truth), message="exact counts after the restart")
    second.stop()
    assert sorted(int(m.value()) for m in read_all(backend, output, 1)) == list(range(50))


def test_defer_commit_is_refused(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, group = names("in"), names("g")

    def defer(ctx: Context, _msg: Any) -> None:
        ctx.defer_commit()

    emit_numbered(backend, topic, 1, keys=1)
    running = start(backend.processor(define_group(group, Input(topic, codec.String(), defer)), state_dir=state_dir,
                                      **EXACTLY_ONCE))
    running.join(60)
    assert isinstance(running.error, ProcessingError)
    assert isinstance(running.error.__cause__, CallbackError)
    assert "defer_commit is not available with guarantee 'exactly_once'" in str(running.error)


def test_options_are_checked() -> None:
    # Exactly-once outputs are invisible until their transaction commits: checkpoints come ten times as often.
    assert ProcessorOptions().checkpoint_interval == 1.0
    assert ProcessorOptions(guarantee="exactly_once").checkpoint_interval == 0.1
    assert ProcessorOptions(guarantee="exactly_once", commit_interval=2.0).checkpoint_interval == 2.0
    graph = define_group("g", Input("t", codec.String(), lambda ctx, msg: None))
    with pytest.raises(ValueError, match="guarantee must be one of at_least_once, exactly_once, not 'twice'"):
        Processor("127.0.0.1:1", graph, guarantee="twice")
    with pytest.raises(ValueError, match="max_outage must be greater than 0, not 0"):
        Processor("127.0.0.1:1", graph, max_outage=0)


# -- Kafka only: fencing and transaction markers are the broker's ----------------------------------


@pytest.mark.parametrize("backend", ["kafka"], indirect=True)
def test_a_zombie_is_fenced_and_its_successor_loses_nothing(backend: Backend, names: Names, tmp_path: Path,
                                                            start: Start) -> None:
    topic, group = names("in"), names("g")
    transactional_id = names("txn")
    graph = define_group(group, Input(topic, codec.String(), count), Persist(codec.Int64()))
    truth = emit_numbered(backend, topic, 100, keys=4)
    zombie = start(backend.processor(graph, state_dir=tmp_path / "zombie", transactional_id=transactional_id,
                                     **EXACTLY_ONCE))
    wait_until(lambda: values(zombie.target, list(truth)) == dict(truth), message="counts of the first instance")

    # A successor with the same transactional id (a restarted pod) fences the old instance...
    successor = Producer({"bootstrap.servers": backend.brokers, "transactional.id": transactional_id})
    successor.init_transactions(30)
    truth.update(emit_numbered(backend, topic, 100, keys=4))
    zombie.join(60)
    assert isinstance(zombie.error, ProcessingError), repr(zombie.error)
    assert transactional_id in str(zombie.error) and "fenced" in str(zombie.error).lower(), str(zombie.error)

    # ...and the next instance, from an empty state, counts every message exactly once.
    successor.flush(5)
    again = start(backend.processor(graph, state_dir=tmp_path / "next", transactional_id=transactional_id,
                                    **EXACTLY_ONCE))
    wait_until(lambda: values(again.target, list(truth)) == dict(truth), message="exact counts after the fence")


@pytest.mark.parametrize("backend", ["kafka"], indirect=True)
def test_a_view_reads_committed_updates_and_waits_for_open_transactions(backend: Backend, names: Names,
                                                                        tmp_path: Path, start: Start) -> None:
    table = group_table(names("g"))
    manager = backend.topic_manager()
    try:
        manager.ensure_table(table, 1)
    finally:
        manager.close()
    writer = Producer({"bootstrap.servers": backend.brokers, "transactional.id": names("writer")})
    writer.init_transactions(30)
    for value, commit in ((b"1", True), (b"999", False)):
        writer.begin_transaction()
        writer.produce(table, key=b"k", value=value, partition=0)
        if commit:
            writer.commit_transaction(30)
        else:
            writer.abort_transaction(30)
    first = backend.view(table, codec.Int64(), state_dir=tmp_path / "first")
    start(first)
    wait_until(first.recovered, message="the view to pass the aborted transaction")
    assert first.get("k") == 1

    writer.begin_transaction()
    writer.produce(table, key=b"k", value=b"2", partition=0)
    writer.flush(10)
    second = backend.view(table, codec.Int64(), state_dir=tmp_path / "second")
    start(second)
    # An open transaction may still commit: a view is not recovered before it is decided.
    threading.Event().wait(2.0)
    assert not second.recovered()
    writer.commit_transaction(30)
    wait_until(second.recovered, message="recovery once the transaction committed")
    assert second.get("k") == 2
    wait_until(lambda: first.get("k") == 2, message="the following view to apply the committed update")
