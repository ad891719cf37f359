"""What a callback can do with its Context (B3-B6, B9-B11), on a real Kafka and on the Tester (tests/backends.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition
from helpers import FAST_REBALANCE, Names, Running, Seen, Start, wait_until
from pygoka import (
    Context,
    Delivery,
    GroupGraph,
    Input,
    Join,
    Lookup,
    Loop,
    Output,
    Persist,
    ProcessingError,
    Processor,
    PygokaError,
    codec,
    define_group,
    group_table,
    loop_stream,
)
from pygoka.codec import Codec

if TYPE_CHECKING:
    from backends import Backend

pytestmark = pytest.mark.kafka
# backend: every test runs on Kafka and on the Tester.
pytest_plugins = ["backends"]


PARTITIONS = 2


# -- helpers ----------------------------------------------------------------------------------------


def create_stream(backend: Backend, topic: str, partitions: int = PARTITIONS) -> None:
    """create_stream creates topic (delete policy), as an operator would before a processor emits to it."""
    manager = backend.topic_manager()
    try:
        manager.ensure_stream(topic, partitions)
    finally:
        manager.close()


def emit_all(backend: Backend, topic: str, records: list[tuple[str, Any]], value_codec: Codec | None = None,
             headers: dict[str, bytes | str] | None = None, partitions: int = PARTITIONS) -> list[Delivery]:
    """emit_all emits records synchronously (creating topic if missing) and returns where they landed."""
    with backend.emitter(topic, value_codec or codec.String(), partitions=partitions) as emitter:
        return [emitter.emit_sync(key, value, headers, timeout=30) for key, value in records]


def read_topic(backend: Backend, topic: str, count: int, timeout: float = 30.0) -> list[Message]:
    """read_topic reads topic from the beginning until count records arrived."""
    manager = backend.topic_manager()
    try:
        partitions = range(manager.partitions(topic) or 0)
    finally:
        manager.close()
    consumer = backend.consumer({"group.id": f"reader-{topic}", "enable.auto.commit": False,
                                 "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Message] = []

        def read() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                records.append(message)
            return len(records) >= count

        wait_until(read, timeout, interval=0, message=f"{count} records in {topic}")
        return records
    finally:
        consumer.close()


def processor(backend: Backend, graph: GroupGraph, state_dir: Path, **options: Any) -> Processor:
    """processor is a single-instance processor with few partitions and frequent commits."""
    settings: dict[str, Any] = {"state_dir": state_dir, "default_partitions": PARTITIONS, "commit_interval": 0.2,
                                "consumer_config": dict(FAST_REBALANCE)}
    settings.update(options)
    return backend.processor(graph, **settings)


def failure(running: Running) -> ProcessingError:
    """failure waits for a processor expected to fail and returns the error run() raised."""
    running.join(60)
    error = running.error
    assert isinstance(error, ProcessingError), f"expected ProcessingError, run() ended with {error!r}"
    return error


def fails_with(backend: Backend, names: Names, state_dir: Path, start: Start, callback: Callable[[Context, Any], None],
               *edges: Any) -> ProcessingError:
    """fails_with runs a group whose input callback is callback on one message and returns its failure."""
    topic = names("in")
    graph = define_group(names("g"), Input(topic, codec.String(), callback), *edges)
    running = start(processor(backend, graph, state_dir))
    [delivery] = emit_all(backend, topic, [("key", "value")])
    error = failure(running)
    assert (error.topic, error.partition, error.offset) == (topic, delivery.partition, delivery.offset)
    return error


# -- B3: emit targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("table", "cannot emit to table topic (use set_value instead)"),
        ("loop", "cannot emit to loop topic (use loopback instead)"),
        ("empty", "cannot emit to empty topic"),
        ("undeclared", "not declared as Output"),
    ],
)
def test_b3_emit_to_forbidden_topic_stops_the_processor(backend: Backend, names: Names, state_dir: Path, start: Start,
                                                         target: str, expected: str) -> None:
    undeclared = names("elsewhere")

    def emit(ctx: Context, msg: Any) -> None:
        topic = {"table": group_table(ctx.group), "loop": loop_stream(ctx.group), "empty": "",
                 "undeclared": undeclared}[target]
        ctx.emit(topic, ctx.key, msg)

    error = fails_with(backend, names, state_dir, start, emit, Persist(codec.String()), Loop(codec.String(), emit))
    assert expected in str(error)
    if target == "undeclared":
        assert f"'{undeclared}'" in str(error)


# -- B4, B5: state misuse -------------------------------------------------------------------------------


@pytest.mark.parametrize("access", ["value", "set_value", "delete"])
def test_b4_state_without_persist_stops_the_processor(backend: Backend, names: Names, state_dir: Path, start: Start,
                                                       access: str) -> None:
    def use_state(ctx: Context, msg: Any) -> None:
        if access == "value":
            ctx.value()
        elif access == "set_value":
            ctx.set_value(msg)
        else:
            ctx.delete()

    error = fails_with(backend, names, state_dir, start, use_state)
    assert "cannot access state in stateless processor" in str(error)
    assert "CallbackError" in str(error)


class Picky:
    """Picky is a user codec that fails with a plain exception, not a CodecError."""

    def encode(self, value: Any) -> bytes:
        raise TypeError(f"picky refuses {value!r}")

    def decode(self, data: bytes) -> Any:
        return data


@pytest.mark.parametrize(
    ("table_codec", "value", "expected"),
    [
        (codec.String(), None, "cannot set None as table value"),
        (codec.Int64(), "not a number", "Int64 codec cannot encode str"),
        (codec.Json(), {1, 2}, "Json codec cannot encode set"),
        (Picky(), "anything", "codec Picky cannot encode value for table"),
    ],
)
def test_b5_set_value_of_unencodable_value_stops_the_processor(
    backend: Backend, names: Names, state_dir: Path, start: Start, table_codec: Codec, value: Any, expected: str,
) -> None:
    def set_bad(ctx: Context, msg: Any) -> None:
        ctx.set_value(value)

    error = fails_with(backend, names, state_dir, start, set_bad, Persist(table_codec))
    assert expected in str(error)


# -- B6: value and set_value ----------------------------------------------------------------------------


def test_b6_value_set_value_and_the_table_record(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()

    def store(ctx: Context, msg: Any) -> None:
        before = ctx.value()
        ctx.set_value(msg, headers={"origin": "test", "raw": b"\x00\x01"})
        seen.add((ctx.key, before, ctx.value()))

    graph = define_group(group, Input(topic, codec.String(), store), Persist(codec.String()))
    p = processor(backend, graph, state_dir)
    running = start(p)
    [delivery] = emit_all(backend, topic, [("never-set", "v1")])
    assert seen.wait_for(1) == [("never-set", None, "v1")]
    emit_all(backend, topic, [("never-set", "v2")])
    assert seen.wait_for(2)[1] == ("never-set", "v1", "v2")
    wait_until(lambda: p.get("never-set") == "v2", message="processor.get of the new value")

    records = read_topic(backend, group_table(group), 2)
    assert [(r.key(), r.value()) for r in records] == [(b"never-set", b"v1"), (b"never-set", b"v2")]
    # The table is co-partitioned with the input: the record is on the input message's partition.
    assert {r.partition() for r in records} == {delivery.partition}
    for record in records:
        assert record.headers() == [("origin", b"test"), ("raw", b"\x00\x01")]
    running.stop()


def test_b6_delete_removes_the_value_and_writes_a_tombstone(backend: Backend, names: Names, state_dir: Path,
                                                            start: Start) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()

    def store_or_delete(ctx: Context, msg: Any) -> None:
        if msg == "delete":
            ctx.delete()
        else:
            ctx.set_value(msg)
        seen.add(ctx.value())

    graph = define_group(group, Input(topic, codec.String(), store_or_delete), Persist(codec.String()))
    p = processor(backend, graph, state_dir)
    running = start(p)
    emit_all(backend, topic, [("k", "v"), ("k", "delete")])
    assert seen.wait_for(2) == ["v", None]
    records = read_topic(backend, group_table(group), 2)
    assert [(r.key(), r.value()) for r in records] == [(b"k", b"v"), (b"k", None)]
    wait_until(lambda: p.recovered(), message="processor running")
    assert p.get("k") is None
    running.stop()


# -- B9: loopback -------------------------------------------------------------------------------------


def test_b9_loopback_without_loop_stops_the_processor(backend: Backend, names: Names, state_dir: Path,
                                                      start: Start) -> None:
    def loop(ctx: Context, msg: Any) -> None:
        ctx.loopback("other", msg)

    error = fails_with(backend, names, state_dir, start, loop)
    assert "no loop topic configured" in str(error)


def test_b9_chain_input_loop_output_second_group_table(backend: Backend, names: Names, tmp_path: Path,
                                                      start: Start) -> None:
    source, output = names("in"), names("out")
    first, second = names("first"), names("second")
    looped = Seen()

    def redirect(ctx: Context, target: Any) -> None:
        # Re-key: the message for user u naming target t goes to t's partition through the loop.
        ctx.loopback(target, ctx.key)

    def on_loop(ctx: Context, user: Any) -> None:
        looped.add((ctx.topic, ctx.key, user))
        ctx.emit(output, ctx.key, f"{user}->{ctx.key}")

    def persist(ctx: Context, msg: Any) -> None:
        ctx.set_value(msg)

    create_stream(backend, output)
    first_graph = define_group(first, Input(source, codec.String(), redirect), Loop(codec.String(), on_loop),
                               Output(output, codec.String()))
    second_graph = define_group(second, Input(output, codec.String(), persist), Persist(codec.String()))
    reader = processor(backend, second_graph, tmp_path / "second")
    start(processor(backend, first_graph, tmp_path / "first"))
    start(reader)
    emit_all(backend, source, [("alice", "t1"), ("bob", "t2")])

    assert sorted(looped.wait_for(2)) == [(loop_stream(first), "t1", "alice"), (loop_stream(first), "t2", "bob")]
    wait_until(lambda: reader.recovered() and reader.get("t1") == "alice->t1" and reader.get("t2") == "bob->t2",
               message="the second group's table to hold the chain's results")


# -- B10: join and lookup ---------------------------------------------------------------------------------


def test_b10_join_lookup_and_undeclared_tables(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, joined, looked_up = names("in"), names("users") + "-table", names("prices") + "-table"
    emit_all(backend, joined, [("u1", "Alice"), ("u2", "Bob")], partitions=PARTITIONS)
    # A lookup table need not be co-partitioned.
    emit_all(backend, looked_up, [("apple", "3"), ("pear", "5")], partitions=PARTITIONS + 1)
    seen = Seen()

    def enrich(ctx: Context, item: Any) -> None:
        errors: list[str] = []
        misuses: list[Callable[[], Any]] = [lambda: ctx.join(names("nope")), lambda: ctx.lookup(names("nope"), "apple")]
        for misuse in misuses:
            try:
                misuse()
            except PygokaError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        seen.add((ctx.key, ctx.join(joined), ctx.lookup(looked_up, item), ctx.lookup(looked_up, "missing"), errors))

    graph = define_group(names("g"), Input(topic, codec.String(), enrich), Join(joined, codec.String()),
                         Lookup(looked_up, codec.String()))
    running = start(processor(backend, graph, state_dir))
    emit_all(backend, topic, [("u1", "apple"), ("u2", "pear"), ("u3", "apple")])
    results = {item[0]: item for item in seen.wait_for(3)}
    nope = names("nope")
    expected_errors = [f"CallbackError: table '{nope}' is not declared as Join of group '{graph.group}'",
                       f"PygokaError: table '{nope}' is not declared as Lookup of group '{graph.group}'"]
    assert results == {
        "u1": ("u1", "Alice", "3", None, expected_errors),
        "u2": ("u2", "Bob", "5", None, expected_errors),
        "u3": ("u3", None, "3", None, expected_errors),
    }
    running.stop()


def test_b10_undeclared_join_stops_the_processor(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    def join(ctx: Context, msg: Any) -> None:
        ctx.join("not-joined-table")

    error = fails_with(backend, names, state_dir, start, join)
    assert "table 'not-joined-table' is not declared as Join" in str(error)


# -- B11: headers -------------------------------------------------------------------------------------


def test_b11_input_headers_and_headers_on_emitted_records(backend: Backend, names: Names, state_dir: Path,
                                                          start: Start) -> None:
    topic, output = names("in"), names("out")
    create_stream(backend, output)
    seen = Seen()

    def forward(ctx: Context, msg: Any) -> None:
        seen.add(ctx.headers)
        ctx.emit(output, ctx.key, msg.upper(), headers={"trace": ctx.headers.get("trace", b""), "step": "forward"})

    graph = define_group(names("g"), Input(topic, codec.String(), forward), Output(output, codec.String()))
    running = start(processor(backend, graph, state_dir))
    emit_all(backend, topic, [("k", "hello")], headers={"trace": b"\x01abc", "user": "ü"})
    assert seen.wait_for(1) == [{"trace": b"\x01abc", "user": "ü".encode()}]
    [record] = read_topic(backend, output, 1)
    assert (record.key(), record.value()) == (b"k", b"HELLO")
    assert record.headers() == [("trace", b"\x01abc"), ("step", b"forward")]
    running.stop()


def test_b11_message_without_headers_has_empty_headers(backend: Backend, names: Names, state_dir: Path,
                                                       start: Start) -> None:
    topic = names("in")
    seen = Seen()

    def record(ctx: Context, msg: Any) -> None:
        seen.add((ctx.headers, ctx.topic, ctx.offset, ctx.partition, ctx.timestamp.year >= 2024))

    graph = define_group(names("g"), Input(topic, codec.String(), record))
    running = start(processor(backend, graph, state_dir))
    [delivery] = emit_all(backend, topic, [("k", "v")])
    assert seen.wait_for(1) == [({}, topic, delivery.offset, delivery.partition, True)]
    running.stop()
