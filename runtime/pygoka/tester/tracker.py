"""Queue trackers: the records produced to a topic after the tracker was created, in production order."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pygoka.codec import Codec
from pygoka.tester.broker import Broker, MemoryMessage


@dataclass(frozen=True)
class Record:
    """Record is one produced record with its value decoded by the topic's codec."""

    key: str
    value: Any
    headers: dict[str, bytes]
    partition: int
    offset: int
    timestamp: datetime.datetime


class QueueTracker:
    """QueueTracker reads a topic's new records: next() returns one or None, iteration drains them.

    The records of all partitions come in the order they were produced; partition and offset tell
    where Kafka would have stored each one.
    """

    def __init__(self, broker: Broker, topic: str, codec: Codec | None) -> None:
        self.topic = topic
        self.codec = codec
        self._broker = broker
        with broker.lock:
            self._position = len(self._ordered())

    def next(self) -> Record | None:
        """next is the oldest record not yet returned, or None when there is none."""
        with self._broker.lock:
            ordered = self._ordered()
            if self._position >= len(ordered):
                return None
            message = ordered[self._position]
            self._position += 1
        return self._record(message)

    def __iter__(self) -> Iterator[Record]:
        while (record := self.next()) is not None:
            yield record

    def __len__(self) -> int:
        """len is the number of records not yet returned."""
        with self._broker.lock:
            return len(self._ordered()) - self._position

    def seek_to_end(self) -> None:
        """seek_to_end skips every record produced so far."""
        with self._broker.lock:
            self._position = len(self._ordered())

    def _ordered(self) -> list[MemoryMessage]:
        # A topic nobody produced to yet is empty; tracking it must not create it.
        topic = self._broker.topics.get(self.topic)
        return [] if topic is None else topic.ordered

    def _record(self, message: MemoryMessage) -> Record:
        raw = message.value()
        value = raw if raw is None or self.codec is None else self.codec.decode(raw)
        key = (message.key() or b"").decode("utf-8", "replace")
        headers = {name: data or b"" for name, data in message.headers() or []}
        _, millis = message.timestamp()
        stamp = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC)
        return Record(key, value, headers, message.partition(), message.offset(), stamp)
