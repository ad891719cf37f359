"""PartitionRun: which input offsets may be committed, with deferred commits (B7, B8), and recovery state."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st
from pygoka.partition import PartitionRun
from pygoka.storage import MemoryStorage
from pygoka.table import PartitionState, PartitionTable


def stateless_run(partition: int = 0) -> PartitionRun:
    """stateless_run is a run without tables, as a processor without Persist or Join has."""
    return PartitionRun(partition, None, {})


def test_nothing_processed_nothing_to_commit() -> None:
    assert stateless_run().commit_offsets() == {}


def test_commit_is_the_offset_after_the_last_processed_message() -> None:
    run = stateless_run()
    for offset in (0, 1, 2):
        run.processed_through("in", offset, offset, 1)
    assert run.commit_offsets() == {"in": 3}
    assert run.processed == 3


def test_committed_offsets_are_not_committed_again() -> None:
    run = stateless_run()
    run.processed_through("in", 4, 4, 1)
    run.committed_offsets(run.commit_offsets())
    assert run.committed == {"in": 5}
    assert run.commit_offsets() == {}
    run.processed_through("in", 5, 5, 1)
    assert run.commit_offsets() == {"in": 6}


def test_topics_are_committed_independently() -> None:
    run = stateless_run()
    run.processed_through("a", 10, 10, 1)
    run.processed_through("b", 0, 0, 1)
    run.committed_offsets({"a": 11})
    run.processed_through("b", 1, 1, 1)
    assert run.commit_offsets() == {"b": 2}


def test_deferred_offset_holds_the_commit_back_until_released() -> None:
    run = stateless_run()
    run.processed_through("in", 0, 0, 1)
    run.defer("in", 1)
    for offset in (1, 2, 3):
        run.processed_through("in", offset, offset, 1)
    # Offset 1 is not done: committing 1 means "resume at 1", so message 1 is redelivered.
    assert run.commit_offsets() == {"in": 1}
    run.committed_offsets({"in": 1})
    assert run.commit_offsets() == {}
    run.release("in", 1)
    assert run.commit_offsets() == {"in": 4}


def test_lowest_pending_deferral_wins() -> None:
    run = stateless_run()
    run.defer("in", 3)
    run.defer("in", 5)
    for offset in range(8):
        run.processed_through("in", offset, offset, 1)
    assert run.commit_offsets() == {"in": 3}
    run.release("in", 5)
    assert run.commit_offsets() == {"in": 3}
    run.release("in", 3)
    assert run.commit_offsets() == {"in": 8}


def test_one_message_deferred_twice_needs_two_releases() -> None:
    run = stateless_run()
    run.defer("in", 2)
    run.defer("in", 2)
    run.processed_through("in", 2, 2, 1)
    run.release("in", 2)
    assert run.commit_offsets() == {"in": 2}
    run.release("in", 2)
    assert run.commit_offsets() == {"in": 3}


def test_release_of_an_unknown_offset_changes_nothing() -> None:
    run = stateless_run()
    run.defer("in", 1)
    run.processed_through("in", 1, 1, 1)
    run.release("in", 7)
    run.release("other", 1)
    assert run.commit_offsets() == {"in": 1}


def test_deferral_on_one_topic_does_not_hold_back_another() -> None:
    run = stateless_run()
    run.defer("a", 0)
    run.processed_through("a", 0, 0, 1)
    run.processed_through("b", 0, 0, 1)
    assert run.commit_offsets() == {"a": 0, "b": 1}


def test_commit_never_moves_backwards() -> None:
    run = stateless_run()
    run.processed_through("in", 5, 5, 1)
    run.committed_offsets({"in": 6})
    # A deferral of an offset below the committed one cannot pull the commit back.
    run.defer("in", 2)
    assert run.commit_offsets() == {}


def test_releases_from_many_threads() -> None:
    run = stateless_run()
    offsets = range(200)
    for offset in offsets:
        run.defer("in", offset)
        run.processed_through("in", offset, offset, 1)
    assert run.commit_offsets() == {"in": 0}
    threads = [threading.Thread(target=lambda o=o: run.release("in", o)) for o in offsets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert run.commit_offsets() == {"in": 200}


@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)), st.sets(st.integers(0, n - 1)))
    )
)
def test_commit_is_lowest_unreleased_deferral_or_next_offset(case: tuple[int, set[int], set[int]]) -> None:
    count, deferred, released = case
    run = stateless_run()
    for offset in range(count):
        if offset in deferred:
            run.defer("in", offset)
        run.processed_through("in", offset, offset, 1)
    for offset in released:
        run.release("in", offset)
    pending = deferred - released
    assert run.commit_offsets() == {"in": min(pending) if pending else count}


def test_recovering_until_every_table_caught_up() -> None:
    table = PartitionTable("g-table", 2, MemoryStorage())
    join = PartitionTable("j-table", 2, MemoryStorage())
    run = PartitionRun(2, table, {"j-table": join})
    assert run.tables() == [table, join]
    states = [run.state]
    table.caught_up()
    states.append(run.state)
    join.caught_up()
    states.append(run.state)
    assert states == [PartitionState.RECOVERING, PartitionState.RECOVERING, PartitionState.RUNNING]
    join.recover()
    assert run.recovering


def test_processed_through_records_a_stretch_of_messages() -> None:
    run = stateless_run()
    assert run.processed_through("in", 3, 9, 7) is True
    assert run.processed_through("in", 10, 11, 2) is False
    assert (run.first_offsets, run.next_offsets, run.processed) == ({"in": 3}, {"in": 12}, 9)


def test_run_without_tables_is_running_at_once() -> None:
    run = stateless_run(5)
    assert run.partition == 5
    assert run.tables() == []
    assert run.state is PartitionState.RUNNING


def test_forget_releases_a_deferral_that_will_never_be_done() -> None:
    """forget drops a dead-lettered message's deferrals, so later offsets commit again."""
    run = PartitionRun(0, None, {})
    run.processed_through("in", 4, 4, 1)
    run.defer("in", 5)
    run.defer("in", 5)
    run.processed_through("in", 5, 5, 1)
    run.processed_through("in", 6, 6, 1)
    assert run.commit_offsets() == {"in": 5}
    run.forget("in", 5)
    assert run.commit_offsets() == {"in": 7}


def test_rewind_forgets_what_was_processed_after_the_last_commit() -> None:
    """After an aborted transaction: nothing to commit until messages are processed again."""
    run = stateless_run()
    for offset in (7, 8):
        run.processed_through("a", offset, offset, 1)
    run.committed_offsets(run.commit_offsets())
    run.processed_through("a", 9, 9, 1)
    run.processed_through("b", 3, 3, 1)  # never committed in this assignment
    assert run.first_offsets == {"a": 7, "b": 3}
    run.rewind()
    assert run.next_offsets == {"a": 9}
    assert run.commit_offsets() == {}
    run.processed_through("b", 3, 3, 1)
    assert run.commit_offsets() == {"b": 4}
    assert run.first_offsets == {"a": 7, "b": 3}
