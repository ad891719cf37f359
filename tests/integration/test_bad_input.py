"""Bad input (issue 7): undecodable messages and failing callbacks stop the processor or go to a dead-letter
topic (on_decode_error / on_callback_error); null keys, non-UTF-8 keys and strings, JSON that is not an object.

Runs on Kafka and on the Tester (tests/backends.py). Covered elsewhere, not repeated here: the default stop on a
decode error naming topic, partition, offset and codec (test_delivery.py
test_b12_failure_names_the_message_and_commits_nothing_after_it[decode]), oversized values rejected by the
broker's max.message.bytes (test_delivery.py test_b7_failed_produce_stops_the_processor_without_committing)
and tombstones (test_delivery.py test_b31_*).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import Names, Running, Seen, Start, wait_until
from pygoka import Context, Input, Output, ProcessingError, codec, define_group
from pygoka.codec import Codec
from test_delivery import PARTITIONS, committed, failure, processor

if TYPE_CHECKING:
    from backends import Backend

pytestmark = pytest.mark.kafka
pytest_plugins = ["backends"]

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]


def produce_raw(backend: Backend, topic: str, records: list[Record]) -> list[tuple[int, int]]:
    """produce_raw writes (key, value, headers) as raw bytes to partition 0 of topic; returns (partition, offset)s."""
    manager = backend.topic_manager()
    try:
        manager.ensure_stream(topic, PARTITIONS)
    finally:
        manager.close()
    producer = backend.transport.producer({"bootstrap.servers": backend.brokers})
    landed: list[tuple[int, int]] = []

    def report(error: Any, message: Any) -> None:
        assert error is None, f"producing to {topic} failed: {error}"
        landed.append((message.partition(), message.offset()))

    for key, value, headers in records:
        producer.produce(topic, value=value, key=key, partition=0, headers=headers, on_delivery=report)
        producer.flush(30)
    assert len(landed) == len(records)
    return landed


def read_all(backend: Backend, topic: str, count: int) -> list[Any]:
    """read_all reads count records of topic from the beginning (all partitions) with a plain consumer."""
    consumer = backend.consumer({"group.id": f"{topic}-reader", "auto.offset.reset": "earliest",
                                 "enable.auto.commit": False})
    found: list[Any] = []
    try:
        consumer.subscribe([topic])

        def got_all() -> bool:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(message)
            return len(found) >= count

        wait_until(got_all, 60, interval=0, message=f"{count} records in {topic}")
    finally:
        consumer.close()
    return found


def start_with(backend: Backend, state_dir: Path, start: Start, group: str, topic: str, value_codec: Codec,
               callback: Callable[[Context, Any], None], **options: Any) -> Running:
    """start_with runs a one-input processor of group on topic with the given options."""
    graph = define_group(group, Input(topic, value_codec, callback))
    return start(processor(backend, graph, state_dir, **options))


def test_decode_error_goes_to_the_dead_letter_topic_and_processing_continues(
    backend: Backend, names: Names, state_dir: Path, start: Start,
) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()
    landed = produce_raw(backend, topic, [
        (b"k", b"1", None), (b"k", b"two", [("trace", b"abc")]), (b"k", b"3", None),
    ])
    running = start_with(backend, state_dir, start, group, topic, codec.Int64(), lambda _ctx, n: seen.add(n),
                         on_decode_error="dead_letter")
    assert seen.wait_for(2) == [1, 3]
    [dead] = read_all(backend, f"{group}-dead-letter", 1)
    assert (dead.key(), dead.value()) == (b"k", b"two")
    headers = dict(dead.headers())
    assert headers["trace"] == b"abc"
    assert headers["pygoka.topic"] == topic.encode()
    assert headers["pygoka.partition"] == b"0"
    assert headers["pygoka.offset"] == str(landed[1][1]).encode()
    assert headers["pygoka.codec"] == b"Int64"
    assert b"Int64 codec cannot decode b'two'" in headers["pygoka.error"]
    wait_until(lambda: committed(backend, group, topic).get(0) == landed[2][1] + 1, message="commit after 3")
    assert running.error is None


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_callback_error_goes_to_the_dead_letter_topic_without_its_effects(
    backend: Backend, names: Names, state_dir: Path, start: Start, guarantee: str,
) -> None:
    topic, output, group, dlt = names("in"), names("out"), names("g"), names("dlt")
    seen = Seen()

    def handle(ctx: Context, value: str) -> None:
        ctx.emit(output, ctx.key, value)
        if value == "bad":
            raise ValueError("cannot handle bad")
        seen.add(value)

    produce_raw(backend, output, [])  # creates the output topic
    landed = produce_raw(backend, topic, [(b"a", b"good", None), (b"b", b"bad", None), (b"c", b"fine", None)])
    graph = define_group(group, Input(topic, codec.String(), handle), Output(output, codec.String()))
    running = start(processor(backend, graph, state_dir, on_callback_error="dead_letter", dead_letter_topic=dlt,
                              guarantee=guarantee))
    assert seen.wait_for(2) == ["good", "fine"]
    [dead] = read_all(backend, dlt, 1)
    assert (dead.key(), dead.value()) == (b"b", b"bad")
    headers = dict(dead.headers())
    assert headers["pygoka.error"] == b"ValueError: cannot handle bad"
    assert headers["pygoka.offset"] == str(landed[1][1]).encode()
    emitted = read_all(backend, output, 2)
    assert sorted(m.value() for m in emitted) == [b"fine", b"good"]
    wait_until(lambda: committed(backend, group, topic).get(0) == landed[2][1] + 1, message="commit after fine")
    assert running.error is None


def test_callback_error_stops_by_default(backend: Backend, names: Names, state_dir: Path, start: Start) -> None:
    topic, group = names("in"), names("g")

    def expect_dict(_ctx: Context, value: Any) -> None:
        value["user"]  # JSON that is not an object fails here

    landed = produce_raw(backend, topic, [(b"k", b"[1, 2]", None)])
    running = start_with(backend, state_dir, start, group, topic, codec.Json(), expect_dict)
    error = failure(running)
    assert (error.topic, error.partition, error.offset) == (topic, 0, landed[0][1])
    assert "TypeError" in str(error)


def test_json_that_is_not_an_object_is_decoded_and_dead_lettered_by_the_callback(
    backend: Backend, names: Names, state_dir: Path, start: Start,
) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()

    def expect_dict(_ctx: Context, value: Any) -> None:
        seen.add(value["user"])

    produce_raw(backend, topic, [(b"k", b'"text"', None), (b"k", b"42", None), (b"k", b'{"user": "u1"}', None)])
    start_with(backend, state_dir, start, group, topic, codec.Json(), expect_dict, on_callback_error="dead_letter")
    assert seen.wait_for(1) == ["u1"]
    dead = read_all(backend, f"{group}-dead-letter", 2)
    assert [m.value() for m in dead] == [b'"text"', b"42"]
    assert all(dict(m.headers())["pygoka.codec"] == b"Json" for m in dead)


def test_non_utf8_string_stops_naming_the_codec(backend: Backend, names: Names, state_dir: Path,
                                                start: Start) -> None:
    topic, group = names("in"), names("g")
    landed = produce_raw(backend, topic, [(b"k", b"\xff\xfe", None)])
    running = start_with(backend, state_dir, start, group, topic, codec.String(), lambda _ctx, _v: None)
    error = failure(running)
    assert (error.topic, error.partition, error.offset) == (topic, 0, landed[0][1])
    assert "String codec cannot decode 2 bytes: not UTF-8" in str(error)


def test_non_utf8_key_stops_naming_the_key_bytes(backend: Backend, names: Names, state_dir: Path,
                                                start: Start) -> None:
    topic, group = names("in"), names("g")
    landed = produce_raw(backend, topic, [(b"\xc3\x28key", b"v", None)])
    running = start_with(backend, state_dir, start, group, topic, codec.String(), lambda _ctx, _v: None)
    error = failure(running)
    assert isinstance(error, ProcessingError)
    assert (error.topic, error.offset) == (topic, landed[0][1])
    assert "message key b'\\xc3(key' is not UTF-8" in str(error)


def test_null_key_is_processed_with_an_empty_key(backend: Backend, names: Names, state_dir: Path,
                                                start: Start) -> None:
    topic, group = names("in"), names("g")
    seen = Seen()
    produce_raw(backend, topic, [(None, b"v", None)])
    start_with(backend, state_dir, start, group, topic, codec.String(), lambda ctx, v: seen.add((ctx.key, v)))
    assert seen.wait_for(1) == [("", "v")]


def test_unknown_error_mode_is_rejected() -> None:
    from pygoka.options import ProcessorOptions

    with pytest.raises(ValueError, match="on_callback_error must be one of fail, dead_letter, not 'skip'"):
        ProcessorOptions(on_callback_error="skip")
