"""Broker outages: a processor, a view and an emitter outlive Kafka being stopped (or crashing) for 20 s while
messages flow, and lose nothing; an outage longer than max_outage fails run() with an error that says so.

Each test has a broker of its own (tests/kafka_broker.py), stopped and started on its data.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from helpers import Kafka, Names, Start, count, wait_until
from kafka_broker import Outage, unreachable
from procs import FAST_REBALANCE
from pygoka import (
    Context,
    Delivery,
    Emitter,
    Input,
    Persist,
    ProcessingError,
    Processor,
    View,
    codec,
    define_group,
    group_table,
)
from pygoka.kafka.config import admin_config
from pygoka.kafka.transport import KAFKA
from pygoka.topic_manager import KafkaTopicManager

pytestmark = pytest.mark.kafka
pytest_plugins = ["kafka_broker"]

OUTAGE_SECONDS = 20.0
KEYS = [f"user-{n}" for n in range(20)]


def counts(target: Processor | View) -> dict[str, Any]:
    """counts are target's values of KEYS, {} while it does not hold them yet."""
    try:
        return {key: target.get(key) for key in KEYS}
    except Exception:  # noqa: BLE001 - not (yet) holding the partition
        return {}


def at_least(values: dict[str, Any], truth: dict[str, int]) -> bool:
    """at_least tells whether every key has a value and none is below its truth."""
    return bool(values) and all(values[key] is not None and values[key] >= count for key, count in truth.items())


class Feed:
    """Feed emits a click every few milliseconds from a thread until stopped, keeping every future."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.truth: Counter[str] = Counter()
        self.futures: list[Future[Delivery]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def _run(self) -> None:
        number = 0
        while not self._stop.wait(0.005):
            key = KEYS[number % len(KEYS)]
            self.futures.append(self.emitter.emit(key, "click"))
            self.truth[key] += 1
            number += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.timeout(360)
# Exactly-once through a network outage, the broker running on: a single replica's controlled shutdown or
# restart may complete a transaction without its markers (KAFKA-20734, docs/guarantees.md), after which no client
# can go on, so a restart would test the broker, not pygoka.
@pytest.mark.parametrize(("guarantee", "outage"), [("at_least_once", "restart"), ("exactly_once", "network")])
def test_a_20_second_outage_while_messages_flow_loses_nothing(own_broker: tuple[str, Kafka],
                                                              names: Names, tmp_path: Path,
                                                              start: Start, caplog: pytest.LogCaptureFixture,
                                                              guarantee: str, outage: Outage) -> None:
    brokers, kafka = own_broker
    clicks, group = names("clicks"), names("outage")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, 4)
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    # Exactly-once: a transaction timeout below the outage, so the open transaction is aborted by the broker
    # and processed again from the last commit once Kafka is back.
    producer = {"transaction.timeout.ms": 10000} if guarantee == "exactly_once" else {}
    processor = Processor(brokers, graph, state_dir=tmp_path / "state", commit_interval=0.2, guarantee=guarantee,
                          consumer_config=dict(FAST_REBALANCE), producer_config=producer)
    running = start(processor)
    wait_until(processor.recovered, 60, message="processor recovered")
    view = View(brokers, group_table(group), codec.Int64(), state_dir=tmp_path / "view", reconnect_backoff=0.5)
    view.start()
    emitter = Emitter(brokers, clicks, codec.String())
    caplog.set_level(logging.INFO, logger="pygoka")
    feed = Feed(emitter).start()
    try:
        assert view.wait_recovered(60)
        wait_until(lambda: sum(v or 0 for v in counts(view).values()) > 100, 60, message="counting before")

        with unreachable(outage, brokers, kafka):
            stopped = time.monotonic()
            while time.monotonic() - stopped < OUTAGE_SECONDS:
                assert running.error is None, f"run() failed during the outage: {running.error!r}"
                assert running.thread.is_alive()
                assert view.error is None
                time.sleep(0.2)
        time.sleep(3.0)
        feed.stop()
        for future in feed.futures:
            future.result(120)
        truth = {key: feed.truth[key] for key in KEYS}
        if guarantee == "exactly_once":
            wait_until(lambda: counts(processor) == truth, 180, message="exact counts after the outage")
            wait_until(lambda: counts(view) == truth, 120, message="the view's exact counts after the outage")
        else:
            # The group lost its member during the outage (session timeout): what was processed after the
            # last commit is processed again, so a count may exceed the truth, but none is below it.
            wait_until(lambda: at_least(counts(processor), truth), 180, message="no count below the truth")
            wait_until(lambda: at_least(counts(view), truth), 120, message="no count in the view below the truth")
        assert running.error is None and running.thread.is_alive()
        assert view.error is None
        repeated = sum(counts(view).values()) - sum(truth.values())
    finally:
        feed.stop()
        emitter.finish()
        view.stop()
    running.stop()
    print(f"{guarantee}: {len(feed.futures)} clicks, {outage} outage {OUTAGE_SECONDS:.0f} s, {repeated} counted twice")
    if guarantee == "exactly_once":
        # The outage outlasts the transaction timeout: the transaction is aborted and redone, or, when the broker
        # aborted it first and so fenced the producer, the run starts over with new clients.
        assert "aborting the transaction" in caplog.text or "starting over" in caplog.text, caplog.text[-2000:]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_an_outage_longer_than_max_outage_fails_run(own_broker: tuple[str, Kafka], names: Names,
                                                    tmp_path: Path, start: Start, guarantee: str) -> None:
    brokers, kafka = own_broker
    clicks, group = names("clicks"), names("too-long")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, 1)
    stopped = threading.Event()
    entered = threading.Event()

    def wait_for_the_outage(ctx: Context, msg: Any) -> None:
        if msg == "last":
            entered.set()
            assert stopped.wait(120), "the test never stopped the broker"
        count(ctx, msg)

    graph = define_group(group, Input(clicks, codec.String(), wait_for_the_outage), Persist(codec.Int64()))
    processor = Processor(brokers, graph, state_dir=tmp_path / "state", commit_interval=0.2, guarantee=guarantee,
                          consumer_config=dict(FAST_REBALANCE), max_outage=8.0)
    running = start(processor)
    with Emitter(brokers, clicks, codec.String()) as emitter:
        for value in ("first", "second"):
            emitter.emit_sync("k", value, timeout=30)
        wait_until(lambda: committed(brokers, group, clicks) == 2, 60, message="the first two messages committed")
        emitter.emit_sync("k", "last", timeout=30)
    assert entered.wait(60)
    # The update of "last" cannot be delivered: the processor gives up after max_outage, not librdkafka's 300 s.
    kafka("stop")
    failed_at = time.monotonic()
    stopped.set()
    running.join(120)
    waited = time.monotonic() - failed_at
    assert isinstance(running.error, ProcessingError), repr(running.error)
    assert "max_outage (8 s)" in str(running.error), str(running.error)
    print(f"{guarantee}: run() failed {waited:.1f} s into the outage: {running.error}")

    # Nothing was lost: once Kafka is back, a new run counts "last" (exactly once with exactly_once; at least
    # once otherwise: its update may have reached Kafka unacknowledged).
    kafka("start", keep_data=True)
    again = Processor(brokers, define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64())),
                      state_dir=tmp_path / "state", commit_interval=0.2, guarantee=guarantee,
                      consumer_config=dict(FAST_REBALANCE))
    start(again)
    wait_until(again.recovered, 120, message="recovery after the outage")
    wait_until(lambda: committed(brokers, group, clicks) == 3, 60, message="the last message committed")
    if guarantee == "exactly_once":
        assert again.get("k") == 3
    else:
        assert again.get("k") in (3, 4)


def committed(brokers: str, group: str, topic: str) -> int:
    """committed is the group's committed offset of partition 0 of topic (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "isolation.level": "read_committed"})
    try:
        offset: int = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        return offset
    finally:
        consumer.close()


class CutAtCommit:
    """CutAtCommit is a producer whose first commit_transaction after arm() starts a network outage and is sent
    into it, so that the broker aborts that transaction (it outlives its timeout) while the commit waits."""

    def __init__(self, inner: Any, outage: Any) -> None:
        self._inner = inner
        self._outage = outage
        self.armed = threading.Event()

    def commit_transaction(self, *args: Any) -> None:
        if self.armed.is_set():
            self.armed.clear()
            self._outage()
        self._inner.commit_transaction(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)


@pytest.mark.timeout(300)
def test_a_commit_the_broker_aborted_during_an_outage_starts_the_run_over(own_broker: tuple[str, Kafka],
                                                                         names: Names, tmp_path: Path,
                                                                         start: Start,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The commit of an exactly-once transaction is sent just as Kafka becomes unreachable for 20 s; the broker
    aborts the transaction after its 5 s timeout, which fences the producer (KAFKA-20785): run() starts over
    with new clients instead of failing, and every count is exact."""
    brokers, kafka = own_broker
    clicks, group = names("clicks"), names("expired")
    KafkaTopicManager(admin_config(brokers)).ensure_stream(clicks, 4)
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    cut_started, cut_ended = threading.Event(), threading.Event()

    def cut() -> None:
        with unreachable("network", brokers, kafka):
            cut_started.set()
            time.sleep(OUTAGE_SECONDS)
        cut_ended.set()

    def outage() -> None:
        threading.Thread(target=cut, daemon=True).start()
        assert cut_started.wait(10), "the network was not cut"

    producers: list[CutAtCommit] = []

    def producer(config: dict[str, Any]) -> Any:
        producers.append(CutAtCommit(KAFKA.producer(config), outage))
        return producers[-1]

    processor = Processor(brokers, graph, state_dir=tmp_path / "state", guarantee="exactly_once",
                          consumer_config=dict(FAST_REBALANCE), producer_config={"transaction.timeout.ms": 5000},
                          transport=dataclasses.replace(KAFKA, producer=producer))
    running = start(processor)
    wait_until(processor.recovered, 60, message="processor recovered")
    emitter = Emitter(brokers, clicks, codec.String())
    caplog.set_level(logging.INFO, logger="pygoka")
    feed = Feed(emitter).start()
    try:
        wait_until(lambda: sum(v or 0 for v in counts(processor).values()) > 100, 60, message="counting before")
        producers[-1].armed.set()
        assert cut_ended.wait(OUTAGE_SECONDS + 30), "the outage did not start and end"
        assert running.error is None, f"run() failed: {running.error!r}"
        time.sleep(3.0)
        feed.stop()
        for future in feed.futures:
            future.result(120)
        truth = {key: feed.truth[key] for key in KEYS}
        wait_until(lambda: counts(processor) == truth, 180, message="exact counts after the outage")
        assert running.error is None and running.thread.is_alive()
    finally:
        feed.stop()
        emitter.finish()
    running.stop()
    assert "starting over with a new consumer and producer" in caplog.text, caplog.text[-3000:]
    assert processor.restarts >= 1 and processor.failures == 0
