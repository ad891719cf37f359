"""Goka's 4-tests scenarios with pygoka.tester: processors tested without Kafka.

    python -m pytest examples/4-tests -q
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pygoka import Context, Input, Inputs, Loop, Output, Persist, ProcessingError, Processor, codec, define_group
from pygoka.tester import Tester

pytest_plugins = ["pygoka.testing"]


def test_one_input(tester: Tester) -> None:
    """A processor with one input sees the message consumed."""
    received: list[str] = []
    Processor(None, define_group("group", Input("input", codec.String(), lambda ctx, msg: received.append(msg))),
              tester=tester)

    tester.consume("input", "key", "some message")

    assert received == ["some message"]


def test_input_output(tester: Tester) -> None:
    """What a callback emits can be read with a queue tracker created before the message."""
    Processor(None, define_group(
        "group",
        Input("input", codec.String(), lambda ctx, msg: ctx.emit("output", ctx.key, f"forwarded: {msg}")),
        Output("output", codec.String()),
    ), tester=tester)
    output = tester.queue_tracker("output")

    tester.consume("input", "key", "some-message")

    record = output.next()
    assert record is not None
    assert (record.key, record.value) == ("key", "forwarded: some-message")
    assert output.next() is None


def test_set_table_value(tester: Tester) -> None:
    """A value set in the group table before the first message is recovered and added to."""
    def add(ctx: Context, msg: int) -> None:
        ctx.set_value((ctx.value() or 0) + msg)

    Processor(None, define_group("group", Input("input", codec.Int64(), add), Persist(codec.Int64())),
              tester=tester)
    tester.set_table_value("group-table", "value", 10)

    tester.consume("input", "value", 2)

    assert tester.table_value("group-table", "value") == 12


def test_persist(tester: Tester) -> None:
    """The callback's set_value lands in the group table."""
    Processor(None, define_group(
        "group",
        Input("input", codec.String(), lambda ctx, msg: ctx.set_value(f"state: {msg}")),
        Persist(codec.String()),
    ), tester=tester)

    tester.consume("input", "key", "some-message")

    assert tester.table_value("group-table", "key") == "state: some-message"


def test_clear_values_between_cases(tester: Tester) -> None:
    """clear_values starts a case over with empty tables; trackers only see what follows them."""
    def handle(ctx: Context, msg: str) -> None:
        ctx.set_value(f"state: {msg}")
        ctx.emit("output", "output-key", f"forwarded: {msg}")

    Processor(None, define_group("group", Input("input", codec.String(), handle), Persist(codec.String()),
                                 Output("output", codec.String())), tester=tester)
    tester.consume("input", "bob", "hello")

    tester.clear_values()
    assert tester.table_value("group-table", "bob") is None
    output = tester.queue_tracker("output")
    tester.consume("input", "bob", "again")

    assert [(r.key, r.value) for r in output] == [("output-key", "forwarded: again")]
    assert tester.table_value("group-table", "bob") == "state: again"


def test_chain_with_loop(tester: Tester) -> None:
    """Two processors in one tester: input -> loop -> output -> the second group's table."""
    Processor(None, define_group(
        "proc1",
        Input("input", codec.String(), lambda ctx, msg: ctx.loopback(ctx.key, f"loop: {msg}")),
        Loop(codec.String(), lambda ctx, msg: ctx.emit("proc1-out", ctx.key, f"proc1-out: {msg}")),
        Output("proc1-out", codec.String()),
    ), tester=tester)
    Processor(None, define_group(
        "proc2",
        Input("proc1-out", codec.String(), lambda ctx, msg: ctx.set_value(f"persist: {msg}")),
        Persist(codec.String()),
    ), tester=tester)

    # consume returns once the message and everything it caused were processed.
    tester.consume("input", "bob", "hello world")

    assert tester.table_value("proc2-table", "bob") == "persist: proc1-out: loop: hello world"


def _raise(ctx: Context) -> None:
    raise RuntimeError("some panic")


def _divide_by_zero(ctx: Context) -> None:
    _ = 123 // len(ctx.key[:0])


def _fail(ctx: Context) -> None:
    ctx.fail("failing callback")


@pytest.mark.parametrize("failer", [_raise, _divide_by_zero, _fail])
def test_failing_callback_stops_the_processor(failer: Callable[[Context], None]) -> None:
    """A callback that raises or calls ctx.fail stops the processor with a ProcessingError naming the input."""
    tester = Tester()
    processor = Processor(None, define_group(
        "group",
        Inputs(["input", "input2"], codec.String(), lambda ctx, msg: failer(ctx)),
    ), tester=tester)

    with pytest.raises(ProcessingError) as raised:
        tester.consume("input", "key", "some-message")

    assert "input" in str(raised.value)
    assert isinstance(processor.error, ProcessingError)
    tester.close(raise_errors=False)
