"""Taking messages from a consumer without waiting for a full batch."""

from __future__ import annotations

from typing import Any


def take(consumer: Any, batch_size: int, timeout: float) -> list[Any]:
    """take returns the messages a consumer has ready, up to batch_size, waiting up to timeout for the first.

    consume(batch_size, timeout) alone returns only once it has batch_size messages or the timeout passed:
    on a quiet stream every message would wait out the timeout (100 ms, most of a table update's latency).
    Under load the first call returns at once and the second takes the rest of a full batch. For a group
    consumer, whose second call may run a rebalance, see Assignment.take.
    """
    messages: list[Any] = consumer.consume(num_messages=1, timeout=timeout)
    if messages and batch_size > 1:
        messages += consumer.consume(num_messages=batch_size - 1, timeout=0)
    return messages
