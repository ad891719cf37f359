"""The in-memory Tester: processors, views and emitters unit-tested without Kafka (B9, B10, B12, B13, B26).

Every test runs the real processing code on the tester's in-memory transport, on one and on several
partitions, and checks that tester.consume returns only once everything the message caused is done.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from pygoka import (
    Context,
    Emitter,
    Input,
    Join,
    Lookup,
    Loop,
    Output,
    Persist,
    ProcessingError,
    Processor,
    TopicError,
    View,
    codec,
    define_group,
)
from pygoka.errors import CallbackFailedError
from pygoka.graph import GroupGraph
from pygoka.partitioner import partition_for
from pygoka.tester import Tester

pytest_plugins = ["pygoka.testing"]


def count_clicks(ctx: Context, msg: Any) -> None:
    """count_clicks counts the messages of each key in the group table."""
    ctx.set_value((ctx.value() or 0) + 1)


def clicks_graph(group: str = "clicks") -> GroupGraph:
    """clicks_graph counts messages of topic 'clicks' per key (B13)."""
    return define_group(group, Input("clicks", codec.String(), count_clicks), Persist(codec.Int64()))


@pytest.mark.parametrize("tester", [1, 8], indirect=True)
def test_click_count(tester: Tester) -> None:
    """Counting per key gives the same totals on any partition count, each key in its FNV-1a partition."""
    processor = Processor(None, clicks_graph(), tester=tester)
    table = tester.queue_tracker("clicks-table")
    expected = {f"user-{n}": n + 1 for n in range(6)}
    for user, clicks in expected.items():
        for _ in range(clicks):
            tester.consume("clicks", user, "click")
    assert {user: tester.table_value("clicks-table", user) for user in expected} == expected
    assert {user: processor.get(user) for user in expected} == expected
    assert processor.active_partitions() == list(range(tester.partitions))
    updates = list(table)
    assert len(updates) == sum(expected.values())
    assert all(record.partition == partition_for(record.key.encode(), tester.partitions) for record in updates)
    assert {record.partition for record in updates} == {partition_for(u.encode(), tester.partitions) for u in expected}


@pytest.mark.parametrize("tester", [1, 4], indirect=True)
def test_loopback_chain(tester: Tester) -> None:
    """A loopback chain of several hops, over several keys, is complete when consume returns (B9)."""

    def start(ctx: Context, msg: Any) -> None:
        ctx.loopback(f"{ctx.key}-{msg}", msg)

    def step(ctx: Context, msg: Any) -> None:
        ctx.set_value(msg)
        ctx.emit("countdown", ctx.key, msg)
        if msg > 0:
            ctx.loopback(f"{ctx.key.rsplit('-', 1)[0]}-{msg - 1}", msg - 1)

    graph = define_group("chain", Input("start", codec.Int64(), start), Loop(codec.Int64(), step),
                         Persist(codec.Int64()), Output("countdown", codec.Int64()))
    tester.new_processor(graph)
    countdown = tester.queue_tracker("countdown")
    tester.consume("start", "k", 5)
    assert [(record.key, record.value) for record in countdown] == [(f"k-{n}", n) for n in range(5, -1, -1)]
    assert [tester.table_value("chain-table", f"k-{n}") for n in range(6)] == list(range(6))


@pytest.mark.parametrize("tester", [1, 3], indirect=True)
def test_join_and_lookup_via_set_table_value(tester: Tester) -> None:
    """Join reads the co-partitioned table, Lookup any table, including values set while running (B10)."""

    def describe(ctx: Context, msg: Any) -> None:
        user = ctx.join("users") or {}
        country = ctx.lookup("countries", user.get("country", "")) or "unknown"
        ctx.emit("described", ctx.key, f"{user.get('name', '?')} from {country} did {msg}")

    graph = define_group("describe", Input("actions", codec.String(), describe), Join("users", codec.Json()),
                         Lookup("countries", codec.String()), Output("described", codec.String()))
    # Built, not started: the tester starts it at the first consume, after these values are set.
    Processor(None, graph, tester=tester)
    # A lookup table need not be co-partitioned: give it another partition count.
    tester.create_topic("countries", partitions=tester.partitions + 2, table=True)
    tester.set_table_value("users", "u1", {"name": "Ann", "country": "de"})
    tester.set_table_value("countries", "de", "Germany")
    described = tester.queue_tracker("described")

    tester.consume("actions", "u1", "login")
    tester.set_table_value("users", "u2", {"name": "Bob", "country": "fr"})
    tester.set_table_value("countries", "fr", "France")
    tester.consume("actions", "u2", "logout")
    tester.consume("actions", "u3", "nothing")
    assert [record.value for record in described] == [
        "Ann from Germany did login", "Bob from France did logout", "? from unknown did nothing",
    ]


def test_outputs_consumed_by_second_group(tester: Tester) -> None:
    """A second group consuming the first group's output has processed it when consume returns (B9)."""

    def forward(ctx: Context, msg: Any) -> None:
        ctx.emit("forwarded", msg, ctx.key)

    tester.new_processor(define_group("first", Input("raw", codec.String(), forward),
                                      Output("forwarded", codec.String())))
    tester.new_processor(define_group("second", Input("forwarded", codec.String(), count_clicks),
                                      Persist(codec.Int64())))
    for sender, receiver in [("a", "x"), ("b", "x"), ("c", "y")]:
        tester.consume("raw", sender, receiver)
    assert tester.table_value("second-table", "x") == 2
    assert tester.table_value("second-table", "y") == 1


@pytest.mark.parametrize("tester", [1, 4], indirect=True)
def test_view_sees_table_updates(tester: Tester) -> None:
    """A view built with the tester holds every update of the table when consume returns (B26)."""
    Processor(None, clicks_graph(), tester=tester)
    view = View(None, "clicks-table", codec.Int64(), tester=tester)
    tester.consume("clicks", "u1", "c")
    assert view.recovered()
    assert view.get("u1") == 1
    for _ in range(3):
        tester.consume("clicks", "u2", "c")
    assert view.get("u2") == 3
    assert view.get("nobody") is None
    assert dict(view.iterate()) == {"u1": 1, "u2": 3}


def test_queue_tracker(tester: Tester) -> None:
    """A queue tracker returns the records produced after it was made, in order, with their headers."""

    def echo(ctx: Context, msg: Any) -> None:
        ctx.emit("echo", ctx.key, msg.upper(), headers={"seen": ctx.key})

    tester.new_processor(define_group("echo", Input("words", codec.String(), echo), Output("echo", codec.String())))
    tester.consume("words", "before", "ignored")
    tracker = tester.queue_tracker("echo")
    assert tracker.next() is None
    for word in ["a", "b", "c"]:
        tester.consume("words", f"k{word}", word)
    assert len(tracker) == 3
    first = tracker.next()
    assert first is not None
    assert (first.key, first.value, first.headers) == ("ka", "A", {"seen": b"ka"})
    assert [(record.key, record.value) for record in tracker] == [("kb", "B"), ("kc", "C")]
    assert tracker.next() is None
    tester.consume("words", "kd", "d")
    tracker.seek_to_end()
    assert len(tracker) == 0


def test_consume_passes_headers_and_timestamp(tester: Tester) -> None:
    """The message given to consume reaches the callback with its headers and timestamp (B11)."""
    seen: list[tuple[dict[str, bytes], datetime.datetime]] = []
    tester.new_processor(define_group("meta", Input("events", codec.String(),
                                                    lambda ctx, msg: seen.append((ctx.headers, ctx.timestamp)))))
    stamp = datetime.datetime(2024, 5, 17, 12, 30, tzinfo=datetime.UTC)
    tester.consume("events", "k", "v", headers={"trace": "t-1", "raw": b"\x00"}, timestamp=stamp)
    assert seen == [({"trace": b"t-1", "raw": b"\x00"}, stamp)]


@pytest.mark.parametrize("tester", [1, 4], indirect=True)
def test_clear_values(tester: Tester) -> None:
    """clear_values empties every table: the processor, its views and table_value all start over."""
    processor = tester.new_processor(clicks_graph())
    view = tester.new_view("clicks-table")
    tester.set_table_value("scores", "u1", 7, codec=codec.Int64())
    for user in ["u1", "u1", "u2"]:
        tester.consume("clicks", user, "c")
    assert view.get("u1") == 2

    tester.clear_values()
    assert tester.table_value("clicks-table", "u1") is None
    assert tester.table_value("scores", "u1") is None
    assert view.get("u1") is None
    assert view.get("u2") is None
    tester.consume("clicks", "u1", "c")
    assert tester.table_value("clicks-table", "u1") == 1
    assert processor.get("u1") == 1
    assert view.get("u1") == 1


def test_set_table_value_of_running_group_table(tester: Tester) -> None:
    """Setting a running processor's own table value is what the processor continues from."""
    processor = tester.new_processor(clicks_graph())
    tester.consume("clicks", "u1", "c")
    tester.set_table_value("clicks-table", "u1", 41)
    tester.consume("clicks", "u1", "c")
    assert processor.get("u1") == 42
    assert tester.table_value("clicks-table", "u1") == 42


def test_callback_exception_surfaces(tester: Tester) -> None:
    """An exception in a callback makes consume raise the ProcessingError run() raised (B12)."""

    def picky(ctx: Context, msg: Any) -> None:
        if msg == "bad":
            raise ValueError("cannot handle bad")
        ctx.set_value(msg)

    processor = tester.new_processor(define_group("picky", Input("in", codec.String(), picky),
                                                  Persist(codec.String())))
    tester.consume("in", "k1", "good")
    with pytest.raises(ProcessingError, match="ValueError: cannot handle bad") as raised:
        tester.consume("in", "k2", "bad")
    error = raised.value
    assert (error.group, error.topic, error.partition, error.offset) == ("picky", "in", 0, 1)
    assert isinstance(error.__cause__, ValueError)
    assert tester.table_value("picky-table", "k1") == "good"
    assert tester.table_value("picky-table", "k2") is None
    with pytest.raises(Exception, match="not running"):
        processor.get("k1")


def test_error_of_processor_started_later_surfaces(tester: Tester) -> None:
    """A processor failing on records already in its input fails the call that starts it (B12)."""
    tester.consume("backlog", "k", "poison", codec=codec.String())

    def poisoned(ctx: Context, msg: Any) -> None:
        ctx.fail(f"poisoned by {msg}")

    with pytest.raises(ProcessingError, match="poisoned by poison"):
        tester.new_processor(define_group("late", Input("backlog", codec.String(), poisoned)))


def test_view_of_missing_table_fails(tester: Tester) -> None:
    """A view of a table nobody created fails with the TopicError a view on Kafka raises (B26), its reader stopped."""
    with pytest.raises(TopicError, match="'missing-table' does not exist"):
        tester.new_view("missing-table", codec.String())
    assert [thread.name for thread in threading.enumerate() if thread.name == "pygoka-reader-view-missing-table"] == []


@pytest.mark.parametrize("tester", [1, 4], indirect=True)
def test_emitter_with_tester(tester: Tester) -> None:
    """An emitter built with the tester feeds processors; wait_idle waits for what it caused (B28)."""
    processor = Processor(None, clicks_graph(), tester=tester)
    tester.start()
    with Emitter(None, "clicks", codec.String(), tester=tester) as emitter:
        deliveries = [emitter.emit_sync(f"u{n % 3}", "click", timeout=10) for n in range(7)]
    assert [d.partition for d in deliveries] == [partition_for(f"u{n % 3}".encode(), tester.partitions)
                                                 for n in range(7)]
    tester.wait_idle()
    assert [processor.get(f"u{n}") for n in range(3)] == [3, 2, 2]


def test_instances_of_one_group_split_partitions(tester: Tester) -> None:
    """Instances of one group share the partitions range-style; a survivor takes over all of them (B18, B23)."""
    partitions = 4
    tester.create_topic("clicks", partitions)
    first = Processor(None, clicks_graph(), tester=tester, partitions=partitions)
    second = Processor(None, clicks_graph(), tester=tester, partitions=partitions)
    users = [f"user-{n}" for n in range(12)]
    for user in users:
        tester.consume("clicks", user, "c")
    assert sorted([first.active_partitions(), second.active_partitions()]) == [[0, 1], [2, 3]]

    tester.stop(second)
    for user in users:
        tester.consume("clicks", user, "c")
    assert first.active_partitions() == [0, 1, 2, 3]
    assert {user: first.get(user) for user in users} == dict.fromkeys(users, 2)


def test_brokers_may_be_none_only_with_a_tester() -> None:
    """Building a processor, view or emitter without brokers needs a tester."""
    with pytest.raises(ValueError, match="tester"):
        Processor(None, clicks_graph())
    with pytest.raises(ValueError, match="tester"):
        View(None, "clicks-table", codec.Int64())
    with pytest.raises(ValueError, match="tester"):
        Emitter(None, "clicks", codec.String())


def test_tester_as_context_manager_stops_processors() -> None:
    """Leaving a with-block stops every processor the tester runs."""
    with Tester(partitions=2) as tt:
        processor = tt.new_processor(clicks_graph())
        tt.consume("clicks", "u", "c")
        assert processor.get("u") == 1
    assert processor.active_partitions() == []


# -- a processor the test runs itself (Goka's tests: `go proc.Run(ctx)`) ----------------------------------------


def run_in_thread(target: Processor | View) -> tuple[threading.Thread, list[BaseException]]:
    """run_in_thread calls target.run() on a thread of the test's, keeping what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            target.run()
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


def test_a_processor_the_test_runs_before_the_tester_does(tester: Tester) -> None:
    processor = Processor(None, clicks_graph(), tester=tester)
    thread, raised = run_in_thread(processor)
    tester.consume("clicks", "user-1", "click")
    tester.consume("clicks", "user-1", "click")
    assert processor.get("user-1") == 2
    processor.stop()
    thread.join(30)
    assert not thread.is_alive() and raised == []


def test_a_processor_the_test_runs_after_the_tester_started_it(tester: Tester) -> None:
    processor = tester.new_processor(clicks_graph())
    tester.consume("clicks", "user-1", "click")
    thread, raised = run_in_thread(processor)
    view = View(None, "clicks-table", codec.Int64(), tester=tester)
    viewing, view_raised = run_in_thread(view)
    tester.consume("clicks", "user-1", "click")
    assert processor.get("user-1") == 2
    assert view.get("user-1") == 2
    assert thread.is_alive()
    for target, running, errors in ((view, viewing, view_raised), (processor, thread, raised)):
        target.stop()
        running.join(30)
        assert not running.is_alive() and errors == []


def test_the_test_s_run_raises_what_the_processor_raised(tester: Tester) -> None:
    def fail(ctx: Context, msg: Any) -> None:
        raise RuntimeError("callback bug")

    processor = Processor(None, define_group("failing", Input("clicks", codec.String(), fail)), tester=tester)
    thread, raised = run_in_thread(processor)
    with pytest.raises(ProcessingError, match="callback bug"):
        tester.consume("clicks", "user-1", "click")
    thread.join(30)
    assert not thread.is_alive()
    assert [type(error) for error in raised] == [CallbackFailedError]
    assert isinstance(raised[0].exception, RuntimeError) and raised[0].__cause__ is raised[0].exception
