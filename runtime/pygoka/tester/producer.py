"""The in-memory producer: confluent_kafka.Producer's interface, as far as pygoka uses it.

A produced record is stored at once (so consumers see it immediately); its delivery report waits for
poll() or flush() in the producing thread, as librdkafka serves delivery callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError

from pygoka.errors import TopicError
from pygoka.kafka.config import Config
from pygoka.tester.broker import Broker, RecordHeaders

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
        self._pending: list[tuple[DeliveryCallback | None, KafkaError | None, Any]] = []
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
                if report is not None:
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
        """undelivered counts delivery reports not yet served or still being served (lock held)."""
        return len(self._pending) + self.delivering

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
