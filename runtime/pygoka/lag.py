"""Consumer lag of a group as a pure function of the offsets Kafka reports: the autoscaler's, `pygoka topics`'
and the monitor page's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PartitionOffsets:
    """PartitionOffsets are one partition's watermarks and the group's committed offset or position (None: none)."""

    topic: str
    partition: int
    start: int
    end: int
    committed: int | None


def partition_lag(offsets: PartitionOffsets) -> int:
    """partition_lag is end minus committed; without a commit, or one retention deleted, from the start offset.

    A group without a commit starts at the earliest offset (the runtime's auto.offset.reset), so everything
    still in the log is work; a commit below the start offset resumes at the start for the same reason.
    """
    start = max(offsets.start, 0)
    position = start if offsets.committed is None or offsets.committed < start else offsets.committed
    return max(offsets.end - position, 0)


def group_lag(partitions: Iterable[PartitionOffsets]) -> int:
    """group_lag is the sum of partition_lag over the group's input partitions."""
    return sum(partition_lag(offsets) for offsets in partitions)
