"""Errors raised by pygoka, each naming what was wrong."""

from __future__ import annotations


class PygokaError(Exception):
    """PygokaError is the base class of every error pygoka raises."""


class GraphError(PygokaError, ValueError):
    """GraphError reports an invalid group graph (see define_group)."""


class CodecError(PygokaError, ValueError):
    """CodecError reports a value a codec cannot encode or bytes it cannot decode."""


class TopicError(PygokaError):
    """TopicError reports a missing, misconfigured or not co-partitioned topic."""


class StorageError(PygokaError):
    """StorageError reports a local storage that cannot be opened, read or written."""


class EmitterClosedError(PygokaError):
    """EmitterClosedError is raised by emit after the emitter was finished."""


class NotRunningError(PygokaError):
    """NotRunningError is raised when a view or processor is read before it has started."""


class ProcessingError(PygokaError):
    """ProcessingError stops a processor; it names the topic, partition and offset of the message."""

    def __init__(
        self,
        cause: str,
        *,
        group: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.cause = cause
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


class CallbackError(PygokaError):
    """CallbackError is raised inside a callback for misuse of the Context (B3, B4, B5, B9, B10)."""
