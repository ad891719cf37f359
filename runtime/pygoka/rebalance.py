"""Assignment: the partitions a processor instance holds, and how they change when its group rebalances.

Assigned partitions get their tables opened and stay paused until the table reader caught them up;
tables of partitions no longer owned are closed, or followed with hot standby. The group runner
(runner.py) decides when: it checkpoints before partitions are given up and resumes those that are ready.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable
from typing import Any

from pygoka.graph import GroupGraph
from pygoka.partition import PartitionRun
from pygoka.storage.base import StorageBuilder
from pygoka.table import PartitionTable
from pygoka.table_reader import TableReader


class Assignment:
    """Assignment holds an instance's active partition runs and its open table partitions.

    Its methods run on the runner's thread. The table reader reports caught-up tables from its own
    thread through a queue that ready() drains, so a partition's state changes between two batches of
    messages, never within one.
    """

    def __init__(self, graph: GroupGraph, storage: StorageBuilder, reader: TableReader, *,
                 hot_standby: bool) -> None:
        self.table_topic = graph.table_topic() if graph.persist is not None else None
        self.join_topics = [join.table for join in graph.joins]
        self.consumed = graph.consumed_topics()
        #: owned are the consumed topic partitions the group gave this instance (incremental rebalancing adds
        #: and revokes them piecewise; a partition number is active only while every topic's one is owned).
        self.owned: set[tuple[str, int]] = set()
        self.storage = storage
        self.reader = reader
        self.hot_standby = hot_standby
        #: runs are the active partitions by number.
        self.runs: dict[int, PartitionRun] = {}
        #: tables are the open group table partitions by number: active ones and standby ones.
        self.tables: dict[int, PartitionTable] = {}
        #: join_tables are the open joined table partitions by (topic, number), of active partitions only.
        self.join_tables: dict[tuple[str, int], PartitionTable] = {}
        #: assigned_once tells whether the group ever assigned partitions to this instance (also none).
        self.assigned_once = False
        #: recovery_seconds sums, over the partitions assigned, how long each waited for its tables.
        self.recovery_seconds = 0.0
        #: rebalances counts the assignments and revocations this instance went through.
        self.rebalances = 0
        #: unassigned_seconds is how long this instance was in the group without an active partition: waiting
        #: for its first assignment, and from giving up all its partitions to getting some again.
        self.unassigned_seconds = 0.0
        self._unassigned_since: float | None = None
        self._caught_up: queue.Queue[tuple[PartitionRun | None, PartitionTable, int]] = queue.Queue()
        # Incremented per (topic, partition) each time its table is given to the reader: a caught-up report
        # of an earlier reading is stale and ignored.
        self._readings: dict[tuple[str, int], int] = {}

    def read_ahead(self, partitions: int, *, follow: bool) -> None:
        """read_ahead reads every group table partition as a standby one: to its end, or following it."""
        assert self.table_topic is not None
        for number in range(partitions):
            table = self._group_table(number)
            table.standby = True
            self._read(table, None, follow=follow)

    def tables_recovered(self) -> bool:
        """tables_recovered tells whether every open group table partition caught up."""
        return all(not table.recovering for table in self.tables.values())

    def recovered(self) -> bool:
        """recovered is true once the group assigned partitions and every active one caught up."""
        return self.assigned_once and all(not run.recovering for run in list(self.runs.values()))

    def take(self, consumer: Any, batch_size: int, timeout: float) -> list[Any]:
        """take is pygoka.kafka.take for the group consumer, without messages a rebalance made stale.

        A rebalance may run inside the second consume call. A partition it revoked and gave back is fetched
        again from its last commit, so the first message, taken before, would be processed twice: it is
        dropped unless its partition's run survived the rebalance (an incremental one keeps runs).
        """
        first: list[Any] = consumer.consume(num_messages=1, timeout=timeout)
        if not first or batch_size <= 1:
            return first
        owner = self.runs.get(first[0].partition())
        rebalances = self.rebalances
        rest: list[Any] = consumer.consume(num_messages=batch_size - 1, timeout=0)
        if self.rebalances != rebalances and self.runs.get(first[0].partition()) is not owner:
            return rest
        return first + rest

    def subscribed(self) -> None:
        """subscribed starts counting unassigned_seconds: the instance asked the group for partitions."""
        self._unassigned_since = time.monotonic()

    def own(self, partitions: Iterable[tuple[str, int]]) -> list[int]:
        """own adds topic partitions the group gave; it returns the numbers now owned for every consumed topic
        and not active yet (co-partitioning: a number's partitions are processed by one instance only)."""
        added = set(partitions) - self.owned
        self.owned |= added
        return sorted(number for number in {partition for _, partition in added}
                      if number not in self.runs and all((topic, number) in self.owned for topic in self.consumed))

    def disown(self, partitions: Iterable[tuple[str, int]]) -> list[int]:
        """disown removes topic partitions the group took back; it returns the active numbers among them."""
        removed = set(partitions)
        self.owned -= removed
        return sorted({number for _, number in removed if number in self.runs})

    def assign(self, numbers: Iterable[int]) -> list[int]:
        """assign starts a run per partition number not active yet; it returns the numbers to pause.

        A paused partition's input must wait until ready() returns its run: its tables are being
        caught up from their stored offsets.
        """
        self.rebalances += 1
        paused: list[int] = []
        started: list[PartitionRun] = []
        for number in numbers:
            if number in self.runs:
                continue
            table = self._group_table(number) if self.table_topic is not None else None
            joins: dict[str, PartitionTable] = {}
            for topic in self.join_topics:
                key = (topic, number)
                if key not in self.join_tables:
                    self.join_tables[key] = PartitionTable(topic, number, self.storage(*key))
                joins[topic] = self.join_tables[key]
            run = PartitionRun(number, table, joins)
            self.runs[number] = run
            started.append(run)
        # Given to the reader once every table is open (opening takes milliseconds each), so that it starts
        # reading all of them together rather than a few per pass of its loop.
        for run in started:
            for partition_table in run.tables():
                partition_table.standby = False
                # The group table is read to its end, then only written by this instance; joins are followed.
                self._read(partition_table, run, follow=partition_table is not run.table)
            if run.recovering:
                paused.append(run.partition)
        if self.runs and self._unassigned_since is not None:
            self.unassigned_seconds += time.monotonic() - self._unassigned_since
            self._unassigned_since = None
        # Only now: other threads (recovered(), monitors) must not see an assignment without its runs.
        self.assigned_once = True
        return paused

    def ready(self) -> list[PartitionRun]:
        """ready applies the reader's caught-up reports; it returns the runs whose tables all caught up now."""
        ready: list[PartitionRun] = []
        while True:
            try:
                run, table, reading = self._caught_up.get_nowait()
            except queue.Empty:
                return ready
            if self._readings.get((table.topic, table.partition)) != reading:
                continue
            if run is None:
                if table.standby:
                    table.caught_up()
                continue
            if self.runs.get(run.partition) is not run:
                continue
            table.caught_up()
            if not run.recovering:
                self.recovery_seconds += time.monotonic() - run.started
                ready.append(run)

    def deactivate(self, numbers: Iterable[int]) -> list[PartitionRun]:
        """deactivate ends the runs of partition numbers; their tables stay open until release_unowned."""
        gone = [self.runs.pop(number) for number in list(numbers) if number in self.runs]
        if gone:
            self.rebalances += 1
            if not self.runs:
                self._unassigned_since = time.monotonic()
        self.reader.remove_many([(t.topic, t.partition) for run in gone for t in run.tables()])
        return gone

    def release_unowned(self) -> None:
        """release_unowned closes (or, with hot standby, follows) the tables of partitions not active here."""
        released = [key for key in self.join_tables if key[1] not in self.runs]
        self.reader.remove_many(released)
        for key in released:
            self.join_tables.pop(key).close()
        for number, table in list(self.tables.items()):
            if number in self.runs:
                continue
            if self.hot_standby:
                if not table.standby:
                    table.standby = True
                    self._read(table, None, follow=True)
            else:
                table.close()
                del self.tables[number]

    def close(self) -> None:
        """close closes every open table; the assignment holds nothing afterwards."""
        for table in list(self.tables.values()) + list(self.join_tables.values()):
            table.close()
        self.tables.clear()
        self.join_tables.clear()
        self.runs.clear()

    def _group_table(self, number: int) -> PartitionTable:
        table = self.tables.get(number)
        if table is None:
            assert self.table_topic is not None
            table = PartitionTable(self.table_topic, number, self.storage(self.table_topic, number))
            self.tables[number] = table
        return table

    def _read(self, table: PartitionTable, run: PartitionRun | None, *, follow: bool) -> None:
        key = (table.topic, table.partition)
        reading = self._readings.get(key, 0) + 1
        self._readings[key] = reading
        table.recover()
        self.reader.add(table, follow=follow,
                        on_caught_up=lambda caught_up: self._caught_up.put((run, caught_up, reading)))
