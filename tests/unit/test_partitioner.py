"""Key partitioning: FNV-1a 32 and Sarama's hash partitioner rule (compatibility section)."""

from __future__ import annotations

import ctypes
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pygoka.partitioner import LIBRDKAFKA_PARTITIONER, fnv1a_32, partition_for


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Reference vectors of the FNV-1a 32-bit hash (Fowler/Noll/Vo test suite).
        (b"", 0x811C9DC5),
        (b"a", 0xE40C292C),
        (b"b", 0xE70C2DE5),
        (b"c", 0xE60C2C52),
        (b"foo", 0xA9F37ED7),
        (b"foob", 0x3F5076EF),
        (b"fooba", 0x39AAA18A),
        (b"foobar", 0xBF9CF968),
        (b"\x00", 0x050C5D1F),
    ],
)
def test_fnv1a_32_vectors(data: bytes, expected: int) -> None:
    assert fnv1a_32(data) == expected


def sarama_partition(key: bytes, partitions: int) -> int:
    """sarama_partition re-implements Sarama's hashPartitioner: int32(hash) % n, negated if negative."""
    signed = ctypes.c_int32(fnv1a_32(key)).value
    # math.fmod keeps the dividend's sign, like Go's % on integers.
    partition = int(math.fmod(signed, partitions))
    if partition < 0:
        partition = -partition
    return partition


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_for_matches_sarama(key: bytes, partitions: int) -> None:
    assert partition_for(key, partitions) == sarama_partition(key, partitions)


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_for_is_in_range(key: bytes, partitions: int) -> None:
    assert 0 <= partition_for(key, partitions) < partitions


@given(st.binary(max_size=64))
def test_fnv1a_32_is_an_unsigned_32_bit_value(key: bytes) -> None:
    assert 0 <= fnv1a_32(key) <= 0xFFFFFFFF


def test_negative_hash_is_negated_not_wrapped() -> None:
    # fnv1a("a") = 0xe40c292c is negative as int32 (-468965076); Sarama takes |-468965076 % 10| = 6,
    # whereas Python's floor modulo of the signed value would give 4 and of the unsigned value 2.
    assert ctypes.c_int32(fnv1a_32(b"a")).value == -468965076
    assert partition_for(b"a", 10) == 6


def test_positive_hash() -> None:
    # 0x3f5076ef = 1062237935 is positive as int32.
    assert partition_for(b"foob", 10) == 5
    assert partition_for(b"foob", 7) == 3


def test_one_partition_takes_every_key() -> None:
    assert {partition_for(key, 1) for key in (b"", b"a", b"foobar", b"\xff" * 9)} == {0}


@pytest.mark.parametrize("partitions", [0, -1, -10])
def test_invalid_partition_counts(partitions: int) -> None:
    with pytest.raises(ValueError, match="partition count must be positive"):
        partition_for(b"key", partitions)


def test_librdkafka_partitioner_is_fnv1a() -> None:
    assert LIBRDKAFKA_PARTITIONER == "fnv1a"
