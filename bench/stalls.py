"""Partition stalls: how long each partition of a topic went without a record, from when a watcher saw them.

Shared by workload 6 of bench/compare.py (processes on this machine) and tests/e2e/test_scaling.py (pods
scaled through the operator), so that both report the same figure.
"""

from __future__ import annotations

#: STALLED_SECONDS is the gap after which a partition counts as stalled (at 1,000/s over 8 it has ~8 ms gaps).
STALLED_SECONDS = 0.5


class PartitionArrivals:
    """PartitionArrivals holds the arrival times (time.monotonic()) of each partition's records, in order."""

    def __init__(self) -> None:
        self.by_partition: dict[int, list[float]] = {}

    def note(self, partition: int, at: float) -> None:
        """note records that a record of partition arrived at `at`."""
        self.by_partition.setdefault(partition, []).append(at)

    def stall(self, start: float, end: float) -> float:
        """stall is the longest time (s) any partition went without a record within [start, end]."""
        return max((_longest_gap(times, start, end) for times in self.by_partition.values()), default=0.0)

    def stalled(self, start: float, end: float, longer_than: float = STALLED_SECONDS) -> int:
        """stalled counts the partitions that went without a record for longer_than seconds in [start, end]."""
        return sum(_longest_gap(times, start, end) > longer_than for times in self.by_partition.values())


def _longest_gap(times: list[float], start: float, end: float) -> float:
    """_longest_gap is the longest stretch of [start, end] without an arrival, counting from the last before start."""
    longest = 0.0
    previous = max((t for t in times if t < start), default=start)
    for t in times:
        if t >= start:
            longest = max(longest, min(t, end) - previous)
            previous = t
        if t > end:
            return longest
    return max(longest, end - previous)
