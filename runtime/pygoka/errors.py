"""Errors raised by pygoka, each naming what was wrong."""

from __future__ import annotations

from typing import Any


class PygokaError(Exception):
    """PygokaError is the base class of every error pygoka raises."""


class GraphError(PygokaError, ValueError):
    """GraphError reports an invalid group graph (see define_group)."""


class CodecError(PygokaError, ValueError):
    """CodecError reports a value a codec cannot encode or bytes it cannot decode."""


class TopicError(PygokaError):
    """TopicError reports a missing, misconfigured or not co-partitioned topic, or a broker refusing to tell or
    create it; kafka_error is the broker's KafkaError when one caused it (also the __cause__'s)."""

    def __init__(self, message: str, *, topic: str, kafka_error: Any = None) -> None:
        super().__init__(message)
        self.topic = topic
        self.kafka_error = kafka_error


class MissingTopicError(TopicError):
    """MissingTopicError reports a topic that must exist (a joined table, a view's table, an emitter's stream)."""


class NotCopartitionedError(TopicError):
    """NotCopartitionedError reports a topic whose partition count differs from the group's."""

    def __init__(self, topic: str, actual: int, expected: int) -> None:
        super().__init__(f"topics are not copartitioned! topic '{topic}' has {actual} partitions, expected "
                         f"{expected}", topic=topic)
        self.actual = actual
        self.expected = expected


class NotCompactedError(TopicError):
    """NotCompactedError reports a table topic whose cleanup.policy lacks compact."""

    def __init__(self, topic: str, policy: str) -> None:
        super().__init__(f"table topic '{topic}' has cleanup.policy={policy}, expected compact", topic=topic)
        self.policy = policy


class TopicAccessError(TopicError):
    """TopicAccessError reports a topic the broker refused or failed to describe, create or delete."""


class KafkaUnreachableError(TopicAccessError):
    """KafkaUnreachableError reports brokers that cannot be reached or do not answer in time."""


class AuthorizationError(TopicAccessError):
    """AuthorizationError reports a topic request the broker refused for a missing ACL."""


class AuthenticationError(TopicAccessError):
    """AuthenticationError reports a TLS or SASL handshake that failed (certificate, user or password)."""


class StorageError(PygokaError):
    """StorageError reports a local storage that cannot be opened, read or written."""


class EmitterClosedError(PygokaError):
    """EmitterClosedError is raised by emit after the emitter was finished."""


class NotRunningError(PygokaError):
    """NotRunningError is raised when a view or processor is read before it has started."""


class ProcessingError(PygokaError):
    """ProcessingError stops a processor; it names the topic, partition and offset of the message.

    Its subclasses say why; kafka_error is the KafkaError behind it, if one is (also the __cause__'s).
    """

    def __init__(
        self,
        cause: str,
        *,
        group: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        kafka_error: Any = None,
    ) -> None:
        self.cause = cause
        self.kafka_error = kafka_error
        self.group = group
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = []
        if group is not None:
            where.append(f"group '{group}'")
        if topic is not None:
            where.append(f"topic '{topic}'")
        if partition is not None:
            where.append(f"partition {partition}")
        if offset is not None:
            where.append(f"offset {offset}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {cause}" if prefix else cause)


class OutageError(ProcessingError):
    """OutageError reports Kafka failing for longer than max_outage; kafka_error is the last failure's error."""


class ProducerFailedError(ProcessingError):
    """ProducerFailedError reports a producer's fatal error (kafka_error) or a call it cannot recover from."""


class FencedError(ProducerFailedError):
    """FencedError reports a transactional producer fenced by a newer one with its transactional id."""


class TransactionExpiredError(FencedError):
    """TransactionExpiredError is a fencing after an outage: the broker aborted the transaction on its own.

    Kafka aborts a transaction that outlives transaction.timeout.ms and, with its transactions v2 (Kafka 4),
    bumps the producer's epoch, which fences the producer (KAFKA-20785). Processor.run starts over on it.
    """


class DeliveryError(ProcessingError):
    """DeliveryError reports a record Kafka did not accept or acknowledge (kafka_error), naming its partition."""


class ClientFailedError(ProcessingError):
    """ClientFailedError reports a consumer's or table reader's fatal Kafka error (kafka_error)."""


class MessageFailedError(ProcessingError):
    """MessageFailedError reports a message whose processing raised; exception is what was raised."""

    def __init__(self, cause: str, *, exception: BaseException | str, group: str | None = None,
                 topic: str | None = None, partition: int | None = None, offset: int | None = None) -> None:
        super().__init__(cause, group=group, topic=topic, partition=partition, offset=offset)
        self.exception = exception


class DecodeFailedError(MessageFailedError):
    """DecodeFailedError reports a message whose key or value could not be decoded (exception: the CodecError)."""


class CallbackFailedError(MessageFailedError):
    """CallbackFailedError reports a callback that raised or called ctx.fail (exception: what it raised or gave)."""


class CallbackError(PygokaError):
    """CallbackError is raised inside a callback for misuse of the Context (B3, B4, B5, B9, B10)."""
