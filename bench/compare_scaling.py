"""Workload 6 of bench/compare.py: how long scaling a group stalls its partitions, 1 -> 4 and 4 -> 2 processes.

A steady stream (--latency-rate clicks/s over every partition) flows through the whole run. One process
runs first; then three more start (1 -> 4), and once the group is stable with four members and a few
seconds passed, two of them are stopped with SIGTERM (4 -> 2). A consumer of the state topic notes when
each partition's updates arrive. A phase's stall is the longest time any one partition went without an
update, from the phase's start until it ends (the group stable again plus SETTLE_SECONDS); with the stream
flowing, a partition that keeps processing has gaps of a few milliseconds. How many partitions stalled for
over stalls.STALLED_SECONDS tells a stop-the-world rebalance (all of them) from an incremental one (those
moved); the largest emit-to-update latency of the clicks sent during the phase is reported too. The counts
are then checked exactly.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common import admin, create_topic, key_name, watch_topic
from compare_run import Run, wait_committed
from confluent_kafka import ConsumerGroupState, Producer
from launch import DECODERS, Launcher, state_topic, table_topics_to_create
from stalls import PartitionArrivals

if TYPE_CHECKING:
    from compare import Bench

#: SETTLE_SECONDS is how long a phase goes on after its group is stable again (moved partitions resuming).
SETTLE_SECONDS = 5.0
#: WARM_SECONDS is how long the stream flows through the single process before the first step.
WARM_SECONDS = 3.0


class Stream:
    """Stream offers clicks at a fixed rate and watches the state topic, noting each update's arrival."""

    def __init__(self, brokers: str, clicks: str, state: str, decode: Callable[[bytes, bytes], tuple[str, int]],
                 rate: float, keys: int) -> None:
        self.brokers, self.clicks, self.state, self.decode = brokers, clicks, state, decode
        self.rate, self.keys = rate, keys
        self.sent: dict[tuple[str, int], float] = {}
        self.counts: dict[str, int] = {}
        self.arrivals: dict[tuple[str, int], float] = {}
        #: last is each key's latest count on the state topic.
        self.last: dict[str, int] = {}
        #: partitions are the arrival times of each state topic partition's updates.
        self.partitions = PartitionArrivals()
        self._stop_feed = threading.Event()
        self._stop_watch = threading.Event()
        self._ready = threading.Event()
        self._threads = [threading.Thread(target=watch_topic, args=(brokers, state, self._arrived, self._ready,
                                                                    self._stop_watch), daemon=True),
                         threading.Thread(target=self._feed, daemon=True)]

    def start(self) -> None:
        self._threads[0].start()
        if not self._ready.wait(30):
            raise TimeoutError(f"the watcher of {self.state} did not start")
        self._threads[1].start()

    def stop_feed(self) -> None:
        self._stop_feed.set()
        self._threads[1].join(30)

    def stop_watch(self) -> None:
        self._stop_watch.set()
        self._threads[0].join(30)

    def _arrived(self, key: bytes, value: bytes, partition: int) -> None:
        """_arrived notes when an update arrived, its key's latest count and its partition's arrival times."""
        now = time.monotonic()
        decoded = self.decode(key, value)
        self.arrivals.setdefault(decoded, now)
        self.last[decoded[0]] = decoded[1]
        self.partitions.note(partition, now)

    def _feed(self) -> None:
        producer = Producer({"bootstrap.servers": self.brokers, "partitioner": "fnv1a", "linger.ms": 0})
        rng = random.Random(11)
        start = time.monotonic()
        i = 0
        while not self._stop_feed.is_set():
            pause = start + i / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            key = key_name(rng.randrange(self.keys))
            self.counts[key] = self.counts.get(key, 0) + 1
            self.sent[(key, self.counts[key])] = time.monotonic()
            producer.produce(self.clicks, b"1700000000000", key.encode())
            producer.poll(0)
            i += 1
        producer.flush(60)

    def max_latency_ms(self, start: float, end: float) -> float:
        """max_latency_ms is the largest emit-to-update latency of the clicks sent within [start, end]."""
        return max(((self.arrivals.get(k, float("inf")) - t) * 1000 for k, t in self.sent.items()
                    if start <= t <= end), default=0.0)


def wait_members(brokers: str, group: str, members: int, timeout: float, runs: list[Run]) -> None:
    """wait_members waits until the group is STABLE with exactly `members` members."""
    client = admin(brokers)
    deadline = time.monotonic() + timeout
    while True:
        try:
            description = client.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
            if description.state == ConsumerGroupState.STABLE and len(description.members) == members:
                return
        except Exception:  # noqa: BLE001 - the group may not exist yet
            pass
        for run in runs:
            run.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} not stable with {members} members within {timeout:.0f}s")
        time.sleep(0.1)


def scaling(bench: Bench, launcher: Launcher, system: str) -> dict[str, Any]:
    """scaling measures the longest partition stall of system's group while it scales 1 -> 4 -> 2 processes."""
    group = bench.group(f"compare-{system}-scaling")
    clicks = bench.topic("compare-scaling-clicks")
    for topic in table_topics_to_create(system, group):
        create_topic(bench.brokers, topic, bench.partitions, {"cleanup.policy": "compact"})
    command = [launcher.command(system, "count", bench.brokers, group, clicks, bench.state_dir(f"{group}-{i}"))
               for i in range(4)]
    first = Run(command[:1], system)
    runs = [first]
    stream = Stream(bench.brokers, clicks, state_topic(system, group, clicks), DECODERS[system],
                    bench.args.latency_rate, bench.keys)
    try:
        first.wait_line("RUNNING", bench.timeout)
        wait_members(bench.brokers, group, 1, bench.timeout, runs)
        # The state topic exists once the system runs (Quix Streams creates it when partitions are assigned).
        while stream.state not in admin(bench.brokers).list_topics(timeout=10).topics:
            first.check()
            time.sleep(0.2)
        stream.start()
        time.sleep(WARM_SECONDS)
        out_start = time.monotonic()
        stay, leave = Run(command[1:2], system), Run(command[2:], system)
        runs += [stay, leave]
        wait_members(bench.brokers, group, 4, bench.timeout, runs)
        out_stable = time.monotonic() - out_start
        time.sleep(SETTLE_SECONDS)
        in_start = time.monotonic()
        leave.finish()
        wait_members(bench.brokers, group, 2, bench.timeout, [first, stay])
        in_stable = time.monotonic() - in_start
        time.sleep(SETTLE_SECONDS)
        in_end = time.monotonic()
        stream.stop_feed()
        wait_committed(bench.brokers, group, clicks, bench.timeout, first)
        deadline = time.monotonic() + 30
        while stream.last != stream.counts and time.monotonic() < deadline:
            time.sleep(0.05)
        stream.stop_watch()
        for run in (stay, first):
            run.finish()
    finally:
        for run in runs:
            run.__exit__(None, None, None)
    wrong = [(key, stream.last.get(key), count) for key, count in stream.counts.items()
             if stream.last.get(key) != count]
    if wrong:
        raise AssertionError(f"{system} scaling: {len(wrong)} keys whose last count is not the truth "
                             f"(key, last, truth), e.g. {wrong[:5]}")
    return {"system": system, "workload": "scaling 1->4->2", "msgs_per_s": len(stream.sent) / (in_end - out_start
            + WARM_SECONDS), "wall_s": in_end - out_start, "cpu_s": sum(r.cpu_s for r in runs),
            "peak_rss_mib": max(r.peak_rss_mib for r in runs), "verified": True,
            "stall_out_s": stream.partitions.stall(out_start, in_start),
            "stall_in_s": stream.partitions.stall(in_start, in_end),
            "stalled_out": stream.partitions.stalled(out_start, in_start),
            "stalled_in": stream.partitions.stalled(in_start, in_end),
            "max_latency_out_ms": stream.max_latency_ms(out_start, in_start),
            "max_latency_in_ms": stream.max_latency_ms(in_start, in_end),
            "stable_out_s": out_stable, "stable_in_s": in_stable}
