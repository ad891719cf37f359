"""Exit codes of the pygoka command line, so that a supervisor can tell what happened."""

from __future__ import annotations

from pygoka.errors import GraphError, ProcessingError, StorageError, TopicError

#: OK: stopped cleanly (SIGTERM/SIGINT, or the command finished).
OK = 0
#: PROCESSING: processing failed (a callback raised, a codec failed, Kafka failed fatally).
PROCESSING = 1
#: USAGE: bad command line or configuration (bad MODULE:ATTR, missing brokers, invalid graph).
USAGE = 2
#: TOPIC: a topic is missing, misconfigured or not co-partitioned.
TOPIC = 3
#: STORAGE: the local storage (RocksDB) cannot be opened, read or written.
STORAGE = 4


def code_for(error: BaseException) -> int:
    """code_for maps an error to its exit code, looking through causes (a StorageError may arrive wrapped)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, StorageError) for e in chain):
        return STORAGE
    if any(isinstance(e, TopicError) for e in chain):
        return TOPIC
    if isinstance(error, GraphError):
        return USAGE
    return PROCESSING


def is_processing(error: BaseException) -> bool:
    """is_processing tells whether error is a ProcessingError (printed with its topic/partition/offset)."""
    return isinstance(error, ProcessingError)
