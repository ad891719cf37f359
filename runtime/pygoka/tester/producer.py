"""The in-memory producer: confluent_kafka.Producer's interface, as far as pygoka uses it.

A produced record is stored at once (so consumers see it immediately); its delivery report waits for
poll() or flush() in the producing thread, as librdkafka serves delivery callbacks. A producer with a
transactional.id keeps the records of a transaction until commit_transaction stores them together with
the consumer offsets sent to it; abort_transaction drops them, so consumers never see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pygoka.errors import TopicError
from pygoka.kafka.config import Config
from pygoka.tester.broker import Broker, Group, RecordHeaders

#: DeliveryCallback is librdkafka's delivery report callback: (error or None, message).
DeliveryCallback = Callable[[KafkaError | None, Any], None]


class _FailedMessage:
    """_FailedMessage is the message of a failed delivery report: it names where it was headed."""

    def __init__(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        self._topic, self._partition, self._key, self._value = topic, partition, key, value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return -1

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


class MemoryProducer:
    """MemoryProducer appends records to the in-memory broker, placing keys with FNV-1a like Kafka."""

    def __init__(self, broker: Broker, config: Config) -> None:
        self._broker = broker
        self._default_callback: DeliveryCallback | None = config.get("on_delivery") or config.get("delivery.report.cb")
        self._only_errors = str(config.get("delivery.report.only.error", False)).lower() in ("true", "1")
        self._pending: list[tuple[DeliveryCallback | None, KafkaError | None, Any]] = []
        self._transactional = bool(config.get("transactional.id"))
        self._initialized = False
        # The open transaction's records (report, topic, key, value, partition, headers, timestamp) and offsets.
        self._transaction: list[tuple[DeliveryCallback | None, str, bytes | None, bytes | None, int,
                                      RecordHeaders | None, int]] | None = None
        self._offsets: dict[str, list[TopicPartition]] = {}
        #: delivering counts reports taken by poll/flush whose callbacks have not returned yet.
        self.delivering = 0
        with broker.lock:
            broker.producers.append(self)

    def produce(self, topic: str, value: bytes | str | None = None, key: bytes | str | None = None,
                partition: int = -1, on_delivery: DeliveryCallback | None = None,
                callback: DeliveryCallback | None = None, timestamp: int = 0,
                headers: Mapping[str, Any] | list[tuple[str, Any]] | None = None) -> None:
        """produce stores the record now and queues its delivery report for poll() or flush()."""
        report = on_delivery or callback or self._default_callback
        key_bytes, value_bytes = _bytes(key), _bytes(value)
        if self._transactional:
            if self._transaction is None:
                raise KafkaException(KafkaError(KafkaError._STATE, "produce outside of a transaction"))
            with self._broker.lock:
                known = self._broker.topics.get(topic)
                if known is not None and partition >= len(known.partitions):
                    # Refused before it joins the transaction, as librdkafka refuses an unknown partition.
                    count = len(known.partitions)
                    refused = KafkaError(KafkaError._UNKNOWN_PARTITION,
                                         f"topic '{topic}' has no partition {partition} (it has {count})")
                    self._pending.append((report, refused, _FailedMessage(topic, partition, key_bytes, value_bytes)))
                else:
                    self._transaction.append((report, topic, key_bytes, value_bytes, partition, _headers(headers),
                                              timestamp))
                self._broker.notify()
            return
        with self._broker.lock:
            try:
                message: Any = self._broker.append(topic, key_bytes, value_bytes, partition=partition,
                                                   headers=_headers(headers), timestamp_ms=timestamp)
                error = None
            except TopicError as exc:
                message = _FailedMessage(topic, partition, key_bytes, value_bytes)
                error = KafkaError(KafkaError._UNKNOWN_PARTITION, str(exc))
            self._pending.append((report, error, message))
            self._broker.notify()

    def poll(self, timeout: float | None = None) -> int:
        """poll serves the delivery reports queued so far, waiting up to timeout for one; it returns their count."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        with self._broker.lock:
            while not self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return 0
                self._broker.changed.wait(remaining)
            reports, self._pending = self._pending, []
            self.delivering += 1
        try:
            for report, error, message in reports:
                if report is not None and (error is not None or not self._only_errors):
                    report(error, message)
        finally:
            with self._broker.lock:
                self.delivering -= 1
                self._broker.notify()
        return len(reports)

    def flush(self, timeout: float | None = None) -> int:
        """flush serves every queued delivery report; nothing stays in flight, so it returns 0."""
        with self._broker.lock:
            if not self._pending:
                return 0
        self.poll(0)
        return 0

    def undelivered(self) -> int:
        """undelivered counts records not committed yet and delivery reports not served (lock held)."""
        return len(self._pending) + self.delivering + len(self._transaction or ())

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """purge drops the open transaction's records (stored records cannot be taken back)."""
        with self._broker.lock:
            if self._transaction is not None:
                self._transaction = []

    def close(self) -> bool:
        """close ends the producer: an open transaction is dropped, as Kafka aborts it."""
        with self._broker.lock:
            self._transaction, self._offsets = None, {}
            self._broker.notify()
        return True

    # -- transactions ----------------------------------------------------------------------------

    def init_transactions(self, timeout: float | None = None) -> None:
        """init_transactions readies a producer configured with a transactional.id."""
        if not self._transactional:
            raise KafkaException(KafkaError(KafkaError._NOT_CONFIGURED, "transactional.id is not set"))
        self._initialized = True

    def begin_transaction(self) -> None:
        """begin_transaction opens a transaction; records produced until its commit or abort belong to it."""
        if not self._initialized:
            raise KafkaException(KafkaError(KafkaError._STATE, "init_transactions was not called"))
        if self._transaction is not None:
            raise KafkaException(KafkaError(KafkaError._STATE, "a transaction is already open"))
        self._transaction, self._offsets = [], {}

    def send_offsets_to_transaction(self, positions: list[TopicPartition], group_metadata: Any,
                                    timeout: float | None = None) -> None:
        """send_offsets_to_transaction commits positions for the consumer group with the transaction."""
        self._require_transaction()
        self._offsets.setdefault(str(group_metadata), []).extend(positions)

    def commit_transaction(self, timeout: float | None = None) -> None:
        """commit_transaction stores the transaction's records and offsets at once and serves their reports."""
        records = self._require_transaction()
        with self._broker.lock:
            for report, topic, key, value, partition, headers, timestamp in records:
                message = self._broker.append(topic, key, value, partition=partition, headers=headers,
                                              timestamp_ms=timestamp)
                self._pending.append((report, None, message))
            for group_id, positions in self._offsets.items():
                group = self._broker.groups.setdefault(group_id, Group(group_id))
                for tp in positions:
                    group.committed[(tp.topic, tp.partition)] = tp.offset
            self._transaction, self._offsets = None, {}
            self._broker.notify()
        self.poll(0)

    def abort_transaction(self, timeout: float | None = None) -> None:
        """abort_transaction drops the transaction's records and offsets."""
        self._require_transaction()
        with self._broker.lock:
            self._transaction, self._offsets = None, {}
            self._broker.notify()

    def _require_transaction(self) -> list[tuple[DeliveryCallback | None, str, bytes | None, bytes | None, int,
                                                 RecordHeaders | None, int]]:
        if self._transaction is None:
            raise KafkaException(KafkaError(KafkaError._STATE, "no transaction is open"))
        return self._transaction

    def __len__(self) -> int:
        with self._broker.lock:
            return len(self._pending)


def _bytes(data: bytes | str | None) -> bytes | None:
    if data is None:
        return None
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _headers(headers: Mapping[str, Any] | list[tuple[str, Any]] | None) -> RecordHeaders | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), _bytes(value)) for name, value in items]
