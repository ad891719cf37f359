"""take: the first message is waited for, the rest of a batch only taken if ready."""

from __future__ import annotations

from typing import Any

from pygoka.kafka.take import take


class Queue:
    """Queue is a consumer over a list of ready messages that records each consume call."""

    def __init__(self, ready: list[str]) -> None:
        self.ready = ready
        self.calls: list[tuple[int, float]] = []

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.calls.append((num_messages, timeout))
        taken, self.ready = self.ready[:num_messages], self.ready[num_messages:]
        return taken


def test_take_waits_only_for_the_first_message_and_takes_the_rest_of_the_batch_without_waiting() -> None:
    consumer = Queue([f"m{i}" for i in range(5)])
    assert take(consumer, 3, 0.1) == ["m0", "m1", "m2"]
    assert consumer.calls == [(1, 0.1), (2, 0)]


def test_take_of_an_empty_consumer_waits_once_and_returns_nothing() -> None:
    consumer = Queue([])
    assert take(consumer, 2000, 0.1) == []
    assert consumer.calls == [(1, 0.1)]


def test_take_with_a_batch_of_one_makes_one_call() -> None:
    consumer = Queue(["m0", "m1"])
    assert take(consumer, 1, 0.1) == ["m0"]
    assert consumer.calls == [(1, 0.1)]
