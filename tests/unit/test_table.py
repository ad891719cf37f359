"""PartitionTable's decoded values and what a callback reads through them (B6).

A table keeps the values a processor set, of its codec's exact type, until they are stored, so that a
callback reading its key again gets them without decoding. What a callback reads must not change by it:
codecs that do not decode to an equal value of the same type, and mutable values, are decoded every time.
"""

from __future__ import annotations

from typing import Any

import pytest
from pygoka import Context, Input, Persist, Processor, codec, define_group
from pygoka.codec import exact_type
from pygoka.errors import CodecError
from pygoka.storage import MemoryStorage
from pygoka.table import PartitionTable
from pygoka.tester import Tester

pytest_plugins = ["pygoka.testing"]


def table() -> PartitionTable:
    return PartitionTable("t-table", 0, MemoryStorage())


def test_exact_types_of_the_built_in_codecs() -> None:
    assert [exact_type(c) for c in (codec.Int64(), codec.String(), codec.Bytes(), codec.Json())] == [
        int, str, bytes, None]


def test_set_keeps_a_decoded_value_until_the_update_is_stored() -> None:
    t = table()
    t.set(b"k", b"7", 7)
    assert t.decoded == {b"k": 7}
    t.acknowledged(0)
    t.flush()
    assert t.decoded == {}
    assert t.get(b"k") == b"7"


def test_an_update_without_a_decoded_value_drops_the_older_one() -> None:
    t = table()
    t.set(b"k", b"7", 7)
    t.set(b"k", b"8")
    assert t.decoded == {}
    assert t.get(b"k") == b"8"
    t.set(b"k", b"9", 9)
    t.set(b"k", None)
    assert t.decoded == {}


def test_discard_drops_decoded_values_with_the_updates() -> None:
    t = table()
    t.set(b"k", b"7", 7)
    t.discard()
    assert (t.decoded, t.get(b"k")) == ({}, None)


class IntAsText:
    """IntAsText encodes ints as decimal text but decodes to str: decoding changes the type."""

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, int):
            raise CodecError("expected int")
        return str(value).encode()

    def decode(self, data: bytes) -> str:
        return data.decode()


def run_twice(tester: Tester, table_codec: Any, first: Any, mutate: bool = False) -> list[Any]:
    """run_twice sets first for key k, then returns what a callback reads for k at the second message."""
    seen: list[Any] = []

    def callback(ctx: Context, msg: Any) -> None:
        if msg == "set":
            ctx.set_value(first)
            if mutate:
                ctx.value()["mutated"] = True
        else:
            seen.append(ctx.value())

    graph = define_group("g", Input("in", codec.String(), callback), Persist(table_codec))
    Processor(None, graph, tester=tester)
    tester.consume("in", "k", "set")
    tester.consume("in", "k", "read")
    return seen


@pytest.mark.parametrize(("table_codec", "first", "read"), [
    (codec.Int64(), 41, 41),
    (codec.String(), "v", "v"),
    # Decoded every time: the callback reads what the codec makes of the stored bytes, as in Goka.
    (IntAsText(), 41, "41"),
])
def test_a_callback_reads_what_decoding_the_stored_value_gives(tester: Tester, table_codec: Any, first: Any,
                                                               read: Any) -> None:
    seen = run_twice(tester, table_codec, first)
    assert seen == [read]
    assert type(seen[0]) is type(read)


def test_a_mutable_value_changed_after_set_value_is_not_what_is_read_later(tester: Tester) -> None:
    assert run_twice(tester, codec.Json(), {"n": 1}, mutate=True) == [{"n": 1}]


def test_state_is_derived_from_catching_up_standby_and_closing() -> None:
    t = table()
    states = [t.state]
    t.caught_up()
    states.append(t.state)
    t.standby = True
    states.append(t.state)
    t.recover()
    states.append(t.state)
    t.close()
    states.append(t.state)
    assert [s.value for s in states] == ["recovering", "running", "standby", "recovering", "closed"]
