"""The key partitioner shared with Go Goka (Sarama's hash partitioner) and librdkafka's fnv1a."""

from __future__ import annotations

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF

#: LIBRDKAFKA_PARTITIONER is the librdkafka partitioner that places keys as partition_for does.
LIBRDKAFKA_PARTITIONER = "fnv1a"


def fnv1a_32(data: bytes) -> int:
    """fnv1a_32 is the 32-bit FNV-1a hash of data."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """partition_for is the partition of key among partitions, as Sarama's NewHashPartitioner computes it."""
    if partitions <= 0:
        raise ValueError(f"partition count must be positive, got {partitions}")
    h = fnv1a_32(key)
    signed = h - (1 << 32) if h & 0x80000000 else h
    # Go's % truncates towards zero; Sarama then negates a negative result.
    return abs(signed) % partitions
