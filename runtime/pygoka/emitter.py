"""The emitter sends key-value messages to one topic, placed by key as Go Goka places them."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError

from pygoka.codec import Codec
from pygoka.context import Headers, _headers, _key_bytes
from pygoka.errors import DeliveryError, EmitterClosedError, MissingTopicError
from pygoka.kafka.config import admin_config
from pygoka.kafka.config import producer_config as _producer_config
from pygoka.kafka.transport import KAFKA, Transport
from pygoka.topic_manager import ensure_topics
from pygoka.topic_plan import stream_topic

if TYPE_CHECKING:
    from pygoka.tester import Tester


@dataclass(frozen=True)
class Delivery:
    """Delivery is where Kafka stored an emitted message."""

    topic: str
    partition: int
    offset: int


class Emitter:
    """Emitter encodes values with codec and produces them to topic; use it as a context manager.

    With partitions set, the topic is created (delete policy) with that many partitions if missing; without,
    it must exist (MissingTopicError).
    """

    def __init__(self, brokers: str | None, topic: str, codec: Codec, *,
                 producer_config: dict[str, Any] | None = None, partitions: int | None = None,
                 transport: Transport = KAFKA, tester: Tester | None = None) -> None:
        if not topic:
            raise ValueError("emitter topic must not be empty")
        if tester is not None:
            transport = tester.transport
            tester.register_emitter(topic, codec)
        elif brokers is None:
            raise ValueError("brokers may only be None for an emitter built with tester=")
        brokers = brokers or ""
        self.topic = topic
        self.codec = codec
        manager = transport.topic_manager(admin_config(brokers, producer_config))
        try:
            if partitions is not None:
                ensure_topics(manager, [stream_topic(topic)], partitions=partitions)
            elif tester is None and topic not in manager.describe([topic]):
                # Producing would wait for the topic in vain (or, with auto-creation, make it with one partition);
                # the tester's broker creates topics on first use, as Goka's tester does.
                raise MissingTopicError(f"emitter topic '{topic}' does not exist (partitions= creates it)",
                                        topic=topic)
        finally:
            manager.close()
        self._producer = transport.producer(_producer_config(brokers, producer_config))
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._poller = threading.Thread(target=self._poll, name=f"pygoka-emitter-{topic}", daemon=True)
        self._poller.start()

    def emit(self, key: str | bytes, value: Any, headers: Headers | None = None) -> Future[Delivery]:
        """emit sends value with key and returns a future of its Delivery; encode errors raise at once."""
        if self._closed.is_set():
            raise EmitterClosedError(f"emitter of topic '{self.topic}' is finished")
        raw = None if value is None else self.codec.encode(value)
        future: Future[Delivery] = Future()

        def delivered(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                future.set_exception(DeliveryError(f"emit failed: {error.str()}", topic=self.topic,
                                                   partition=message.partition(), kafka_error=error))
            else:
                future.set_result(Delivery(message.topic(), message.partition(), message.offset()))

        key_bytes, header_list = _key_bytes(key), _headers(headers)
        while True:
            try:
                self._producer.produce(self.topic, value=raw, key=key_bytes, headers=header_list,
                                       on_delivery=delivered)
                return future
            except BufferError:
                self._producer.poll(0.05)

    def emit_sync(self, key: str | bytes, value: Any, headers: Headers | None = None,
                  timeout: float | None = None) -> Delivery:
        """emit_sync emits and waits for the delivery, raising its error."""
        return self.emit(key, value, headers).result(timeout)

    def flush(self, timeout: float | None = None) -> int:
        """flush waits for pending emits; it returns how many are still pending after timeout."""
        remaining: int = self._producer.flush(-1 if timeout is None else timeout)
        return remaining

    def finish(self) -> None:
        """finish waits for every pending emit; emit raises afterwards (B28)."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self._poller.join()
        self._producer.flush()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)
