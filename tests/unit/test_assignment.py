"""Assignment: which partitions and tables an instance holds across rebalances, and when a partition is ready."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from pygoka import Input, Inputs, Join, Persist, codec, define_group
from pygoka.rebalance import Assignment
from pygoka.storage import MemoryStorage
from pygoka.table import PartitionState, PartitionTable
from pygoka.table_reader import CaughtUp

GRAPH = define_group("g", Input("in", codec.String(), lambda ctx, msg: None), Join("profiles", codec.String()),
                     Persist(codec.Int64()))


@dataclass
class FakeReader:
    """FakeReader records what the assignment gives the table reader; report() plays its caught-up callback."""

    reading: dict[tuple[str, int], tuple[PartitionTable, bool, CaughtUp]] = field(default_factory=dict)
    removed: list[tuple[str, int]] = field(default_factory=list)

    def add(self, table: PartitionTable, *, follow: bool, on_caught_up: CaughtUp | None = None) -> None:
        assert on_caught_up is not None
        self.reading[(table.topic, table.partition)] = (table, follow, on_caught_up)

    def remove_many(self, partitions: list[tuple[str, int]]) -> None:
        for key in partitions:
            self.reading.pop(key, None)
            self.removed.append(key)

    def report(self, topic: str, partition: int) -> None:
        table, _, on_caught_up = self.reading[(topic, partition)]
        on_caught_up(table)


def assignment(hot_standby: bool = False) -> tuple[Assignment, FakeReader]:
    reader = FakeReader()
    stores: dict[tuple[str, int], MemoryStorage] = {}

    def storage(topic: str, partition: int) -> MemoryStorage:
        return stores.setdefault((topic, partition), MemoryStorage())

    return Assignment(GRAPH, storage, reader, hot_standby=hot_standby), reader  # type: ignore[arg-type]


def test_assigned_partitions_are_paused_until_all_their_tables_caught_up() -> None:
    a, reader = assignment()
    assert a.assign([0, 1]) == [0, 1]
    assert not a.recovered()
    assert {key: follow for key, (_, follow, _) in reader.reading.items()} == {
        ("g-table", 0): False, ("g-table", 1): False, ("profiles", 0): True, ("profiles", 1): True}
    reader.report("g-table", 0)
    reader.report("profiles", 1)
    assert a.ready() == []
    assert a.runs[0].table is not None and a.runs[0].table.state is PartitionState.RUNNING
    reader.report("profiles", 0)
    assert a.ready() == [a.runs[0]]
    assert [run.state for run in a.runs.values()] == [PartitionState.RUNNING, PartitionState.RECOVERING]
    reader.report("g-table", 1)
    assert a.ready() == [a.runs[1]]
    assert a.recovered()
    assert a.recovery_seconds > 0


def test_a_report_of_an_earlier_reading_is_ignored() -> None:
    a, reader = assignment()
    a.assign([0])
    old = reader.reading[("g-table", 0)][2]
    a.deactivate([0])
    a.assign([0])
    table = a.tables[0]
    old(table)  # the first reading's report, queued before the partition was assigned again
    assert a.ready() == []
    assert table.recovering


def test_partitions_given_up_keep_their_tables_until_the_next_assignment_closes_them() -> None:
    a, reader = assignment()
    a.assign([0, 1])
    table0, table1, join1 = a.tables[0], a.tables[1], a.join_tables[("profiles", 1)]
    assert a.deactivate([0, 1]) != []
    assert a.runs == {}
    assert ("g-table", 1) in reader.removed
    a.assign([0])
    a.release_unowned()
    assert a.tables == {0: table0}  # the same open table: no reopening of its store
    assert table1.state is PartitionState.CLOSED and join1.state is PartitionState.CLOSED
    assert list(a.join_tables) == [("profiles", 0)]


def test_hot_standby_follows_tables_given_up_and_activates_them_when_assigned() -> None:
    a, reader = assignment(hot_standby=True)
    a.read_ahead(2, follow=True)
    assert all(follow and table.standby for table, follow, _ in reader.reading.values())
    standby_report = reader.reading[("g-table", 1)][2]
    reader.report("g-table", 0)
    a.ready()
    assert a.tables[0].state is PartitionState.STANDBY
    assert a.tables_recovered() is False
    a.assign([1])
    a.release_unowned()
    table1 = a.tables[1]
    assert (table1.standby, reader.reading[("g-table", 1)][1]) == (False, False)
    standby_report(table1)  # late report of the standby reading: not the active partition's catching up
    assert a.ready() == []
    assert table1.state is PartitionState.RECOVERING
    # Still following partition 0, not restarted by the assignment.
    assert reader.reading[("g-table", 0)][0].state is PartitionState.STANDBY
    a.deactivate([1])
    a.release_unowned()
    assert table1.standby and reader.reading[("g-table", 1)][1] is True


def test_without_tables_a_partition_is_ready_at_once() -> None:
    graph = define_group("s", Input("in", codec.String(), lambda ctx, msg: None))
    a = Assignment(graph, lambda topic, partition: MemoryStorage(), FakeReader(), hot_standby=False)  # type: ignore[arg-type]
    assert a.assign([3]) == []
    assert a.recovered()
    assert a.runs[3].tables() == []


def test_unassigned_seconds_count_from_subscribing_and_from_giving_all_partitions_up_until_an_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("pygoka.rebalance.time.monotonic", lambda: now[0])
    a, _ = assignment()
    a.subscribed()
    now[0] = 102.0
    a.assign([])  # an assignment of nothing leaves the instance unassigned
    now[0] = 103.0
    a.assign([0, 1])
    assert a.unassigned_seconds == 3.0
    now[0] = 110.0
    a.deactivate([0])  # one partition given up, one kept: still assigned
    now[0] = 111.0
    a.deactivate([1])
    now[0] = 115.0
    a.assign([1])
    assert a.unassigned_seconds == 7.0


def test_a_partition_number_is_active_only_while_every_consumed_topic_of_it_is_owned() -> None:
    graph = define_group("g", Inputs(["a", "b"], codec.String(), lambda ctx, msg: None), Persist(codec.Int64()))
    a = Assignment(graph, lambda topic, partition: MemoryStorage(), FakeReader(), hot_standby=False)  # type: ignore[arg-type]
    assert a.own([("a", 0), ("a", 1), ("b", 1)]) == [1]  # b/0 not here yet: 0 waits
    a.assign([1])
    assert a.own([("b", 0)]) == [0]
    a.assign([0])
    assert a.own([("a", 0)]) == []  # owned already
    assert a.disown([("a", 1)]) == [1]  # one topic's partition of 1 taken back: 1 stops
    a.deactivate([1])
    assert a.disown([("b", 1)]) == []
    assert a.owned == {("a", 0), ("b", 0)}


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self.offset = partition, offset

    def partition(self) -> int:
        return self._partition


class RebalancingConsumer:
    """RebalancingConsumer returns one message, then runs a rebalance inside the next consume call."""

    def __init__(self, rebalance: Callable[[], None], rest: list[int]) -> None:
        self.rebalance, self.rest, self.calls = rebalance, rest, 0

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.calls += 1
        if self.calls == 1:
            return [Message(0, 5)]
        self.rebalance()
        return [Message(0, offset) for offset in self.rest]


def test_take_drops_a_message_taken_before_a_rebalance_revoked_and_gave_back_its_partition() -> None:
    a, _ = assignment()
    a.assign([0, 1])

    def revoke_and_assign_again() -> None:
        a.deactivate([0, 1])
        a.assign([0, 1])

    taken = a.take(RebalancingConsumer(revoke_and_assign_again, [5, 6]), 100, 0.1)
    assert [m.offset for m in taken] == [5, 6]  # fetched again from the last commit, once


def test_take_keeps_a_message_whose_partition_stayed_through_an_incremental_rebalance() -> None:
    a, _ = assignment()
    a.assign([0, 1])
    taken = a.take(RebalancingConsumer(lambda: a.deactivate([1]), [6]), 100, 0.1)
    assert [m.offset for m in taken] == [5, 6]


def test_the_tables_of_an_assignment_are_given_to_the_reader_once_all_are_open() -> None:
    events: list[str] = []
    reader = FakeReader()
    add = reader.add

    def recording_add(table: PartitionTable, *, follow: bool, on_caught_up: CaughtUp | None = None) -> None:
        events.append(f"read {table.topic}/{table.partition}")
        add(table, follow=follow, on_caught_up=on_caught_up)

    def storage(topic: str, partition: int) -> MemoryStorage:
        events.append(f"open {topic}/{partition}")
        return MemoryStorage()

    reader.add = recording_add  # type: ignore[method-assign]
    a = Assignment(GRAPH, storage, reader, hot_standby=False)  # type: ignore[arg-type]
    assert a.assign([0, 1]) == [0, 1]
    # The reader starts reading all of them in one pass rather than the few opened before each of its passes.
    assert events == ["open g-table/0", "open profiles/0", "open g-table/1", "open profiles/1",
                      "read g-table/0", "read profiles/0", "read g-table/1", "read profiles/1"]
