"""A partition run: what a processor holds for one active partition number."""

from __future__ import annotations

import threading
import time
from typing import Any

from pygoka.table import PartitionState, PartitionTable


class PartitionRun:
    """PartitionRun tracks one active partition: its tables, recovery and the offsets to commit.

    The offset committed for an input topic is the lowest offset whose commit was deferred and not yet
    done, or else the next offset after the last processed message (B7, B8).
    """

    def __init__(self, partition: int, table: PartitionTable | None, joins: dict[str, PartitionTable]) -> None:
        self.partition = partition
        self.table = table
        self.joins = joins
        self._tables = ([table] if table is not None else []) + list(joins.values())
        self.next_offsets: dict[str, int] = {}
        #: first_offsets are the offsets of the first message processed per topic (where a rewind may go).
        self.first_offsets: dict[str, int] = {}
        self.committed: dict[str, int] = {}
        self.processed = 0
        #: held are messages fetched before the partition was paused for recovery, processed once it recovered.
        self.held: list[Any] = []
        self.started = time.monotonic()
        self._deferred: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    def tables(self) -> list[PartitionTable]:
        """tables are the group table and joined table partitions of this partition number."""
        return list(self._tables)

    @property
    def recovering(self) -> bool:
        """recovering tells whether a table of the partition has not caught up yet (its input is paused)."""
        return any(table.recovering for table in self._tables)

    @property
    def state(self) -> PartitionState:
        """state is RECOVERING until every table caught up, then RUNNING."""
        return PartitionState.RECOVERING if self.recovering else PartitionState.RUNNING

    def processed_through(self, topic: str, first: int, last: int, count: int) -> bool:
        """processed_through records that count messages of topic, from offset first to last, were processed.

        It tells whether they are the first of topic in this assignment.
        """
        self.next_offsets[topic] = last + 1
        self.processed += count
        if topic in self.first_offsets:
            return False
        self.first_offsets[topic] = first
        return True

    def rewind(self) -> None:
        """rewind forgets what was processed after the last commit (its transaction was aborted)."""
        self.next_offsets = {topic: offset for topic, offset in self.committed.items() if topic in self.next_offsets}

    def defer(self, topic: str, offset: int) -> None:
        """defer holds the commit of offset of topic back until release."""
        with self._lock:
            pending = self._deferred.setdefault(topic, {})
            pending[offset] = pending.get(offset, 0) + 1

    def release(self, topic: str, offset: int) -> None:
        """release lets the commit of a deferred offset go ahead."""
        with self._lock:
            pending = self._deferred.get(topic, {})
            count = pending.get(offset, 0)
            if count <= 1:
                pending.pop(offset, None)
            else:
                pending[offset] = count - 1

    def forget(self, topic: str, offset: int) -> None:
        """forget drops every deferral of offset: its message was dead-lettered, so nothing will finish it."""
        with self._lock:
            self._deferred.get(topic, {}).pop(offset, None)

    def commit_offsets(self) -> dict[str, int]:
        """commit_offsets are the offsets per topic that may be committed and were not yet."""
        result: dict[str, int] = {}
        with self._lock:
            for topic, next_offset in self.next_offsets.items():
                pending = self._deferred.get(topic)
                offset = min(min(pending), next_offset) if pending else next_offset
                if self.committed.get(topic, -1) < offset:
                    result[topic] = offset
        return result

    def committed_offsets(self, offsets: dict[str, int]) -> None:
        """committed_offsets records that offsets were committed to Kafka."""
        self.committed.update(offsets)
