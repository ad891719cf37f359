"""Local storage of table partitions, in memory and in RocksDB (B30, damaged and shared stores)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygoka import StorageError
from pygoka.storage import MemoryStorageBuilder, RocksDBStorageBuilder, Storage, StorageBuilder


@pytest.fixture(params=["memory", "rocksdb"])
def builder(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBuilder:
    """builder opens partitions of either storage kind; reopening with it returns the same content."""
    if request.param == "memory":
        return MemoryStorageBuilder()
    return RocksDBStorageBuilder(tmp_path / "state")


@pytest.fixture
def store(builder: StorageBuilder) -> Iterator[Storage]:
    """store is partition 0 of topic 't', closed after the test."""
    storage = builder("t", 0)
    yield storage
    storage.close()


def test_empty_store(store: Storage) -> None:
    assert store.get(b"k") is None
    assert not store.has(b"k")
    assert store.offset() is None
    assert list(store.iterate()) == []


def test_write_get_has_delete(store: Storage) -> None:
    store.write([(b"a", b"1"), (b"b", b"2")], None)
    assert store.get(b"a") == b"1"
    assert store.has(b"b")
    store.write([(b"a", None), (b"b", b"3")], None)
    assert store.get(b"a") is None
    assert not store.has(b"a")
    assert store.get(b"b") == b"3"
    # Deleting an absent key is not an error.
    store.write([(b"never", None)], None)
    assert not store.has(b"never")


def test_later_update_of_a_key_in_one_batch_wins(store: Storage) -> None:
    store.write([(b"k", b"1"), (b"k", b"2"), (b"d", b"x"), (b"d", None)], 3)
    assert store.get(b"k") == b"2"
    assert store.get(b"d") is None


def test_empty_value_is_a_value(store: Storage) -> None:
    store.write([(b"k", b"")], None)
    assert store.get(b"k") == b""
    assert store.has(b"k")


def test_offset_is_written_with_the_data(store: Storage) -> None:
    store.write([(b"a", b"1")], 7)
    assert (store.get(b"a"), store.offset()) == (b"1", 7)
    # No offset leaves the stored one as it is.
    store.write([(b"b", b"2")], None)
    assert store.offset() == 7
    # An offset alone may be written, e.g. after reading only tombstones of absent keys.
    store.write([], 9)
    assert store.offset() == 9
    store.write([(b"a", None)], 0)
    assert store.offset() == 0
    assert store.get(b"b") == b"2"


def test_offset_key_is_not_a_user_key(store: Storage) -> None:
    """B30: the offset lives apart from the data, so a user key with its name collides with nothing."""
    store.write([(b"table-offset", b"user")], 42)
    assert store.get(b"table-offset") == b"user"
    assert store.offset() == 42
    assert list(store.iterate()) == [(b"table-offset", b"user")]
    store.write([(b"table-offset", None)], None)
    assert store.offset() == 42
    assert list(store.iterate()) == []


def test_offset_and_data_survive_reopen(builder: StorageBuilder) -> None:
    """B30: the stored offset survives closing and reopening the partition; iteration never shows it."""
    first = builder("t", 3)
    first.write([(b"k1", b"v1"), (b"k2", b"v2")], 1234567890123)
    first.close()
    second = builder("t", 3)
    try:
        assert second.offset() == 1234567890123
        assert second.get(b"k1") == b"v1"
        assert list(second.iterate()) == [(b"k1", b"v1"), (b"k2", b"v2")]
    finally:
        second.close()


def test_partitions_and_topics_are_separate(builder: StorageBuilder) -> None:
    stores = [builder("t", 0), builder("t", 1), builder("u", 0)]
    try:
        stores[0].write([(b"k", b"t0")], 1)
        stores[1].write([(b"k", b"t1")], 2)
        assert stores[0].get(b"k") == b"t0"
        assert stores[1].get(b"k") == b"t1"
        assert stores[2].get(b"k") is None
        assert [s.offset() for s in stores] == [1, 2, None]
    finally:
        for storage in stores:
            storage.close()


def test_iteration_is_ordered_bytewise(store: Storage) -> None:
    keys = [b"b", b"\xff", b"a", b"ab", b"", b"\x00", b"B", b"aa"]
    store.write([(key, b"v" + key) for key in keys], 5)
    assert [key for key, _ in store.iterate()] == sorted(keys)
    assert all(value == b"v" + key for key, value in store.iterate())


def test_iteration_range(store: Storage) -> None:
    store.write([(k, k.upper()) for k in (b"a", b"b", b"c", b"d")], 1)
    assert [k for k, _ in store.iterate(start=b"b")] == [b"b", b"c", b"d"]
    assert [k for k, _ in store.iterate(end=b"c")] == [b"a", b"b"]
    assert [k for k, _ in store.iterate(start=b"b", end=b"d")] == [b"b", b"c"]
    assert [k for k, _ in store.iterate(start=b"bb", end=b"cc")] == [b"c"]
    assert list(store.iterate(start=b"e")) == []
    assert list(store.iterate(start=b"c", end=b"c")) == []


def test_clear_removes_data_and_offset_and_keeps_the_store_usable(builder: StorageBuilder) -> None:
    storage = builder("t", 0)
    storage.write([(b"a", b"1"), (b"b", b"2")], 10)
    storage.clear()
    assert storage.get(b"a") is None
    assert storage.offset() is None
    assert list(storage.iterate()) == []
    storage.write([(b"c", b"3")], 2)
    assert list(storage.iterate()) == [(b"c", b"3")]
    storage.close()
    reopened = builder("t", 0)
    try:
        assert list(reopened.iterate()) == [(b"c", b"3")]
        assert reopened.offset() == 2
    finally:
        reopened.close()


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
@settings(max_examples=25, deadline=None)
@given(
    data=st.dictionaries(st.binary(max_size=6), st.binary(max_size=6), max_size=20),
    start=st.none() | st.binary(max_size=3),
    end=st.none() | st.binary(max_size=3),
)
def test_iteration_matches_a_sorted_dict(kind: str, data: dict[bytes, bytes], start: bytes | None,
                                         end: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        builder: StorageBuilder = MemoryStorageBuilder() if kind == "memory" else RocksDBStorageBuilder(directory)
        storage = builder("t", 0)
        try:
            storage.write(data.items(), 1)
            expected = [(k, data[k]) for k in sorted(data)
                        if (start is None or k >= start) and (end is None or k < end)]
            assert list(storage.iterate(start, end)) == expected
        finally:
            storage.close()


# -- RocksDB only ---------------------------------------------------------------------------------


def test_rocksdb_second_open_of_a_partition_is_refused(tmp_path: Path) -> None:
    builder = RocksDBStorageBuilder(tmp_path)
    first = builder("t", 0)
    try:
        first.write([(b"k", b"v")], 1)
        with pytest.raises(StorageError, match="in use"):
            builder("t", 0)
        # Another builder on the same directory (as another processor would) is refused too.
        with pytest.raises(StorageError, match="in use"):
            RocksDBStorageBuilder(tmp_path)("t", 0)
        # The refused opens did not harm the open store.
        assert first.get(b"k") == b"v"
    finally:
        first.close()
    again = builder("t", 0)
    try:
        assert again.get(b"k") == b"v"
    finally:
        again.close()


def test_rocksdb_damaged_store_is_rebuilt_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    builder = RocksDBStorageBuilder(tmp_path)
    storage = builder("t", 1)
    storage.write([(b"k", b"v")], 99)
    storage.close()
    current = builder.path("t", 1) / "CURRENT"
    assert current.exists()
    current.write_bytes(b"garbage-manifest-name\n")
    with caplog.at_level(logging.WARNING, logger="pygoka.storage"):
        rebuilt = builder("t", 1)
    try:
        assert rebuilt.get(b"k") is None
        assert rebuilt.offset() is None
        assert list(rebuilt.iterate()) == []
        rebuilt.write([(b"new", b"1")], 0)
        assert rebuilt.get(b"new") == b"1"
    finally:
        rebuilt.close()
    assert "rebuilding it from the table topic" in caplog.text


def test_rocksdb_write_after_close_is_a_storage_error(tmp_path: Path) -> None:
    storage = RocksDBStorageBuilder(tmp_path)("t", 0)
    storage.close()
    with pytest.raises(StorageError, match="closed"):
        storage.write([(b"k", b"v")], 1)
    # Closing twice is harmless.
    storage.close()


def test_rocksdb_layout_is_state_dir_topic_partition(tmp_path: Path) -> None:
    builder = RocksDBStorageBuilder(tmp_path)
    assert builder.path("clicks-table", 7) == tmp_path / "clicks-table" / "7"
    storage = builder("clicks-table", 7)
    storage.close()
    assert (tmp_path / "clicks-table" / "7" / "CURRENT").exists()


# -- property-based: offsets and keys (issue 7, bad input) ---------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
@settings(max_examples=40, deadline=None)
@given(offsets=st.lists(INT64, min_size=1, max_size=4))
def test_every_int64_offset_round_trips_through_reopen(kind: str, offsets: list[int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        builder: StorageBuilder = MemoryStorageBuilder() if kind == "memory" else RocksDBStorageBuilder(directory)
        storage = builder("t", 0)
        for offset in offsets:
            storage.write([], offset)
            assert storage.offset() == offset
        storage.close()
        reopened = builder("t", 0)
        try:
            assert reopened.offset() == offsets[-1]
        finally:
            reopened.close()


@settings(max_examples=30, deadline=None)
@given(offset=st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1))
def test_rocksdb_offset_outside_int64_is_rejected_and_nothing_is_written(offset: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        storage = RocksDBStorageBuilder(directory)("t", 0)
        try:
            storage.write([(b"k", b"old")], 7)
            with pytest.raises(Exception, match=r"format requires|out of range|too large"):
                storage.write([(b"k", b"new")], offset)
            # The failed write is atomic: neither its data nor its offset landed.
            assert (storage.get(b"k"), storage.offset()) == (b"old", 7)
        finally:
            storage.close()


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
@settings(max_examples=30, deadline=None)
@given(
    data=st.dictionaries(st.binary(max_size=40) | st.just(b"table-offset"), st.binary(max_size=40), max_size=10),
    offset=INT64,
)
def test_any_binary_key_and_value_round_trip_apart_from_the_offset(kind: str, data: dict[bytes, bytes],
                                                                  offset: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        builder: StorageBuilder = MemoryStorageBuilder() if kind == "memory" else RocksDBStorageBuilder(directory)
        storage = builder("t", 0)
        try:
            storage.write(data.items(), offset)
            assert {key: storage.get(key) for key in data} == data
            assert dict(storage.iterate(None, None)) == data
            assert storage.offset() == offset
        finally:
            storage.close()
