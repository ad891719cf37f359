"""The storage interface: one key-value store per table partition, holding its table offset too."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

#: Update is one change of a batch: a key and its new encoded value, or None to delete it.
Update = tuple[bytes, bytes | None]


class Storage(Protocol):
    """Storage keeps the encoded values of one table partition and the offset of its last update."""

    def get(self, key: bytes) -> bytes | None:
        """get returns the encoded value of key, or None if it is absent."""
        ...

    def has(self, key: bytes) -> bool:
        """has tells whether key is present."""
        ...

    def write(self, updates: Iterable[Update], offset: int | None) -> None:
        """write applies updates and, if offset is not None, stores it, all in one atomic write."""
        ...

    def offset(self) -> int | None:
        """offset is the table topic offset of the last stored update, or None if none was stored."""
        ...

    def iterate(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """iterate yields (key, value) in key order from start (inclusive) to end (exclusive)."""
        ...

    def clear(self) -> None:
        """clear removes every key and the stored offset."""
        ...

    def close(self) -> None:
        """close releases the store; it may be opened again by the same builder."""
        ...


#: StorageBuilder opens the storage of one partition of a table topic.
StorageBuilder = Callable[[str, int], Storage]
