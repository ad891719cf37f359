"""A partition table: one partition of a table topic held in local storage."""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator

from pygoka.storage.base import Storage, Update

_MISSING = object()
#: NOT_DECODED marks an update whose value a table does not keep decoded (see PartitionTable.decoded).
NOT_DECODED: object = object()


class PartitionState(enum.Enum):
    """PartitionState is what a partition table is doing, as shown by the monitor."""

    RECOVERING = "recovering"
    RUNNING = "running"
    STANDBY = "standby"
    CLOSED = "closed"


class PartitionTable:
    """PartitionTable is one partition of a table: its storage plus the updates not yet stored.

    A processor's own updates are kept in `dirty` until the producer has acknowledged them; only then
    are they written to storage, in one batch together with the table offset of the last of them.
    Updates read from the table topic (recovery, joins, views, hot standby) are written directly.
    """

    def __init__(self, topic: str, partition: int, storage: Storage) -> None:
        self.topic = topic
        self.partition = partition
        self.storage = storage
        #: standby is set by a processor for a partition it follows without processing it (hot standby).
        self.standby = False
        self.high_watermark: int | None = None
        self._caught_up = False
        self._closed = False
        self._dirty: dict[bytes, bytes | None] = {}
        #: decoded holds the values of keys updated since the last flush, as given to set(), when their type
        #: decodes back exactly (codec.exact_type): reading them again needs no decoding. Runner thread only.
        self.decoded: dict[bytes, object] = {}
        self._dirty_offset: int | None = None
        self._offset = storage.offset()
        self._lock = threading.Lock()

    @property
    def state(self) -> PartitionState:
        """state is CLOSED once closed, RECOVERING until caught up with its topic, then STANDBY or RUNNING."""
        if self._closed:
            return PartitionState.CLOSED
        if not self._caught_up:
            return PartitionState.RECOVERING
        return PartitionState.STANDBY if self.standby else PartitionState.RUNNING

    @property
    def recovering(self) -> bool:
        """recovering tells whether the table has not caught up with its topic since it was (re)added to a reader."""
        return not self._caught_up

    def recover(self) -> None:
        """recover marks the table as behind its topic until caught_up() (it is being read to the end again)."""
        self._caught_up = False

    def caught_up(self) -> None:
        """caught_up marks the table as having reached the end its topic had when reading started."""
        self._caught_up = True

    def get(self, key: bytes) -> bytes | None:
        """get returns the newest encoded value of key, stored or not."""
        value = self._dirty.get(key, _MISSING)
        if value is _MISSING:
            return self.storage.get(key)
        return value  # type: ignore[return-value]

    def has(self, key: bytes) -> bool:
        """has tells whether key has a value."""
        return self.get(key) is not None

    def set(self, key: bytes, value: bytes | None, decoded: object = NOT_DECODED) -> None:
        """set records a processor's update of key (None deletes it) until the next flush.

        decoded is the value value encodes, if it is of its codec's exact_type.
        """
        self._dirty[key] = value
        if decoded is NOT_DECODED:
            self.decoded.pop(key, None)
        else:
            self.decoded[key] = decoded

    def acknowledged(self, offset: int) -> None:
        """acknowledged records that Kafka stored an update of this partition at offset."""
        if self._dirty_offset is None or offset > self._dirty_offset:
            self._dirty_offset = offset

    def dirty_count(self) -> int:
        """dirty_count is the number of keys updated since the last flush."""
        return len(self._dirty)

    def flush(self) -> None:
        """flush stores the acknowledged updates and their table offset in one write."""
        with self._lock:
            if not self._dirty and self._dirty_offset is None:
                return
            self.storage.write(self._dirty.items(), self._dirty_offset)
            if self._dirty_offset is not None:
                self._offset = self._dirty_offset
            # Rebinding (not clearing) keeps concurrent readers of the old dict consistent.
            self._dirty = {}
            self.decoded = {}
            self._dirty_offset = None

    def discard(self) -> None:
        """discard drops the updates not yet flushed (their input offsets were not committed)."""
        with self._lock:
            self._dirty = {}
            self.decoded = {}
            self._dirty_offset = None

    def apply(self, updates: Iterable[Update], offset: int) -> None:
        """apply writes updates read from the table topic, up to and including offset."""
        with self._lock:
            self.storage.write(updates, offset)
            self._offset = offset

    def offset(self) -> int | None:
        """offset is the table topic offset of the last stored update."""
        return self._offset

    def next_offset(self) -> int:
        """next_offset is where reading the table topic resumes: the stored offset + 1 (B29)."""
        return 0 if self._offset is None else self._offset + 1

    def iterate(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """iterate yields the stored (key, value) pairs in key order."""
        return self.storage.iterate(start, end)

    def close(self) -> None:
        """close closes the storage; unflushed updates are dropped."""
        with self._lock:
            self._dirty = {}
            self.decoded = {}
            self._closed = True
            self.storage.close()
