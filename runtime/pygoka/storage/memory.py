"""In-memory storage with the same interface as RocksDB storage, for tests and small tables."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from pygoka.storage.base import Storage, Update


class MemoryStorage:
    """MemoryStorage keeps a partition in a dict; its content is lost when the process ends."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._offset: int | None = None
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def has(self, key: bytes) -> bool:
        return key in self._data

    def write(self, updates: Iterable[Update], offset: int | None) -> None:
        with self._lock:
            for key, value in updates:
                if value is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = value
            if offset is not None:
                self._offset = offset

    def offset(self) -> int | None:
        return self._offset

    def size_estimate(self) -> int:
        """size_estimate is the number of keys, for monitoring."""
        return len(self._data)

    def iterate(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            keys = sorted(self._data)
        for key in keys:
            if start is not None and key < start:
                continue
            if end is not None and key >= end:
                break
            value = self._data.get(key)
            if value is not None:
                yield key, value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._offset = None

    def close(self) -> None:
        """close keeps the content: a builder handing out the same MemoryStorage reopens it."""


class MemoryStorageBuilder:
    """MemoryStorageBuilder hands out one MemoryStorage per (topic, partition), kept across reopens."""

    def __init__(self) -> None:
        self._stores: dict[tuple[str, int], MemoryStorage] = {}
        self._lock = threading.Lock()

    def __call__(self, topic: str, partition: int) -> Storage:
        with self._lock:
            return self._stores.setdefault((topic, partition), MemoryStorage())
