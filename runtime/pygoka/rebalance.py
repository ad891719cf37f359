"""Rebalancing: what a group runner does when the consumer group assigns, revokes or loses partitions.

Assigned partitions get their tables opened and are paused until the table reader caught them up;
revoked ones are checkpointed first; lost ones drop what was not stored. Tables of partitions no longer
owned are closed, or followed with hot standby.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

from pygoka.checkpoint import Checkpointer
from pygoka.graph import GroupGraph
from pygoka.options import ProcessorOptions
from pygoka.partition import PartitionRun
from pygoka.storage.base import StorageBuilder
from pygoka.table import PartitionState, PartitionTable
from pygoka.table_reader import TableReader
from pygoka.visit import Visits

log = logging.getLogger("pygoka.processor")


class Rebalancing:
    """Rebalancing is the part of GroupRunner that reacts to partition assignments (see runner.py)."""

    group: str
    graph: GroupGraph
    options: ProcessorOptions
    storage: StorageBuilder
    table_topic: str
    table_codec: Any
    consumed: list[str]
    consumer: Any
    reader: TableReader
    checkpointer: Checkpointer
    visits: Visits
    runs: dict[int, PartitionRun]
    tables: dict[int, PartitionTable]
    join_tables: dict[tuple[str, int], PartitionTable]
    assigned_once: bool
    _events: queue.Queue[tuple[PartitionRun, PartitionTable]]
    _failed: bool

    def _process_batch(self, messages: list[Any]) -> None:
        raise NotImplementedError  # GroupRunner's

    def _group_table(self, number: int) -> PartitionTable:
        table = self.tables.get(number)
        if table is None:
            table = PartitionTable(self.table_topic, number, self.storage(self.table_topic, number))
            self.tables[number] = table
        return table

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        numbers = sorted({tp.partition for tp in partitions})
        log.info("group %s: assigned partitions %s", self.group, numbers)
        consumer.assign(partitions)
        paused: list[TopicPartition] = []
        for number in numbers:
            table = self._group_table(number) if self.table_codec is not None else None
            joins: dict[str, PartitionTable] = {}
            for join in self.graph.joins:
                key = (join.table, number)
                if key not in self.join_tables:
                    self.join_tables[key] = PartitionTable(join.table, number, self.storage(*key))
                joins[join.table] = self.join_tables[key]
            run = PartitionRun(number, table, joins)
            self.runs[number] = run
            if run.recovering:
                paused.extend(tp for tp in partitions if tp.partition == number)
                for partition_table in run.tables():
                    partition_table.state = PartitionState.RECOVERING
                    self.reader.add(partition_table, follow=partition_table is not table,
                                    on_caught_up=self._caught_up_callback(run))
        if paused:
            consumer.pause(paused)
        self._release_unassigned(set(numbers))
        self.assigned_once = True

    def _caught_up_callback(self, run: PartitionRun) -> Callable[[PartitionTable], None]:
        return lambda table: self._events.put((run, table))

    def _standby_caught_up(self, table: PartitionTable) -> None:
        if table.state is PartitionState.RECOVERING:
            table.state = PartitionState.STANDBY

    def _handle_events(self) -> None:
        while True:
            try:
                run, table = self._events.get_nowait()
            except queue.Empty:
                return
            if self.runs.get(run.partition) is not run:
                continue
            if table is run.table:
                table.state = PartitionState.RUNNING
            if run.caught_up(table.topic):
                log.info("group %s: partition %d recovered", self.group, run.partition)
                if run.held:
                    held, run.held = run.held, []
                    self._process_batch(held)
                self.consumer.resume([TopicPartition(topic, run.partition) for topic in self.consumed])

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("group %s: revoked partitions %s", self.group, sorted({tp.partition for tp in partitions}))
        if not self._failed:
            self.checkpointer.revoke()
            committed = {f"{topic}/{run.partition}": offset for run in self.runs.values()
                         for topic, offset in sorted(run.committed.items())}
            log.info("group %s: committed when giving partitions up: %s", self.group, committed or "nothing")
        self._deactivate()

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.warning("group %s: lost partitions %s", self.group, sorted({tp.partition for tp in partitions}))
        if self._failed:
            # Stopping anyway (the consumer closes after a failure): only drop what was not stored.
            self.checkpointer.discard_tables()
        else:
            self.checkpointer.lost()
        self._deactivate()

    def _deactivate(self) -> None:
        self.reader.remove_many([(t.topic, t.partition) for run in self.runs.values() for t in run.tables()])
        self.runs.clear()
        self.visits.abort("interrupted by a rebalance")

    def _release_unassigned(self, active: set[int]) -> None:
        """Close (or, with hot standby, follow) the tables of partitions this instance no longer owns."""
        released = [key for key in self.join_tables if key[1] not in active]
        self.reader.remove_many(released)
        for key in released:
            self.join_tables.pop(key).close()
        for number, table in list(self.tables.items()):
            if number in active:
                continue
            if self.options.hot_standby:
                table.state = PartitionState.RECOVERING
                self.reader.add(table, follow=True, on_caught_up=self._standby_caught_up)
            else:
                table.close()
                del self.tables[number]
