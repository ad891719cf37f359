"""SIGKILL faults: processor instances killed at random points while 200,000 messages flow through a
two-instance group, per delivery guarantee.

At-least-once loses no update (every count >= truth, and == truth without crashes); exactly-once
gives counts == truth whatever was killed when. The kill times and victims come from a seeded random
generator whose seed is printed, so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from helpers import Names, wait_until
from procs import FAST_REBALANCE, Proc
from pygoka import Emitter, View, codec, group_table

MESSAGES = 200_000
KEYS = 500
PARTITIONS = 8
# Spread over this many seconds, so the kills land while messages flow.
PRODUCE_SECONDS = 16.0


class Feed:
    """Feed emits MESSAGES clicks over KEYS keys at a steady pace from a thread, counting the truth."""

    def __init__(self, brokers: str, topic: str) -> None:
        self.truth: Counter[str] = Counter()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._emitter = Emitter(brokers, topic, codec.String(), partitions=PARTITIONS)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            chunk = 2000
            pause = PRODUCE_SECONDS / (MESSAGES / chunk)
            for start in range(0, MESSAGES, chunk):
                began = time.monotonic()
                for index in range(start, start + chunk):
                    key = f"user-{index % KEYS}"
                    self._emitter.emit(key, "click")
                    self.truth[key] += 1
                time.sleep(max(0.0, pause - (time.monotonic() - began)))
            self._emitter.finish()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc
        finally:
            self.done.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the feed did not finish"
        if self.error is not None:
            raise self.error


def committed_lag(admin: AdminClient, group: str, topic: str) -> int:
    """committed_lag is the sum over partitions of end offset minus the group's committed offset."""
    partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
    request = ConsumerGroupTopicPartitions(group, partitions)
    committed = admin.list_consumer_group_offsets([request])[group].result().topic_partitions
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
    lag = 0
    for tp in committed:
        end = next(result.result().offset for key, result in ends.items() if key.partition == tp.partition)
        lag += end - max(tp.offset, 0)
    return lag


def table_values(brokers: str, table: str, state_dir: Path) -> dict[str, int]:
    """table_values reads the whole group table with a View (read_committed) once it recovered."""
    view = View(brokers, table, codec.Int64(), state_dir=state_dir)
    view.start()
    try:
        wait_until(view.recovered, timeout=120, message="the view to recover the table")
        return dict(view.iterate())
    finally:
        view.stop()


@pytest.mark.timeout(420)
@pytest.mark.parametrize(("guarantee", "kills", "membership"), [
    ("at_least_once", 0, "static"),
    ("at_least_once", 3, "static"),
    ("exactly_once", 3, "static"),
    # A killed member's partitions move to the survivor (after the session timeout) and back.
    ("exactly_once", 3, "dynamic"),
])
def test_sigkill_during_processing(brokers: str, names: Names, tmp_path: Path,
                                   guarantee: str, kills: int, membership: str) -> None:
    topic, group = names("crash-clicks"), names(f"crash-{guarantee.replace('_', '-')}")
    seed = int(os.environ.get("PYGOKA_FAULT_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (rerun with PYGOKA_FAULT_SEED={seed})")
    rng = random.Random(seed)
    feed = Feed(brokers, topic)

    def instance(name: str) -> Proc:
        # A pod's identity: static membership (whose id the transactional id derives from), or a transactional
        # id of its own, so that a restarted instance aborts what its killed predecessor left open.
        options: dict[str, Any] = {"guarantee": guarantee, "partitions": PARTITIONS,
                                   "consumer_config": dict(FAST_REBALANCE), "commit_interval": 0.5}
        if membership == "static":
            options["group_instance_id"] = name
        else:
            options["transactional_id"] = f"{group}-{name}"
        return Proc(name, tmp_path / "procs", brokers=brokers, group=group, inputs=[topic],
                    state_dir=tmp_path / f"state-{name}", options=options)

    procs = [instance("a").start(), instance("b").start()]
    # Both members hold partitions before the feed starts: the kills are the only faults.
    for proc in procs:
        proc.wait(lambda status: status.get("running") and status.get("active"), timeout=60,
                  message="the instance to start and get partitions")
    feed.start()
    started = time.monotonic()
    schedule = sorted(rng.uniform(1.0, PRODUCE_SECONDS) for _ in range(kills))
    killed: list[tuple[float, str]] = []
    for at in schedule:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        victim = rng.choice(procs)
        victim.kill()
        killed.append((round(time.monotonic() - started, 1), victim.name))
        time.sleep(rng.uniform(0.0, 2.0))
        victim.start()
    print(f"killed (seconds after the feed started, instance): {killed}")
    feed.join(120)

    admin = AdminClient({"bootstrap.servers": brokers})
    wait_until(lambda: committed_lag(admin, group, topic) == 0, timeout=240, interval=0.5,
               message="the group to commit every input message")
    for proc in procs:
        assert proc.stop() == 0, proc.log_tail()

    values = table_values(brokers, group_table(group), tmp_path / "view")
    truth = dict(feed.truth)
    assert set(values) == set(truth), "keys differ"
    if guarantee == "exactly_once" or kills == 0:
        wrong = {key: (values[key], count) for key, count in truth.items() if values[key] != count}
        assert not wrong, (f"{len(wrong)} counts differ from the truth (value, truth): {list(wrong.items())[:10]}\n"
                           + "\n".join(proc.log_tail(60) for proc in procs))
    else:
        lost = {key: (values[key], count) for key, count in truth.items() if values[key] < count}
        assert not lost, f"{len(lost)} counts below the truth (value, truth): {list(lost.items())[:10]}"
        repeated = sum(values.values()) - MESSAGES
        print(f"at-least-once: {repeated} updates repeated after {kills} kills")
