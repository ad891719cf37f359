"""Visits: Processor.visit_all runs a Visitor callback over every key of the active partitions.

A visit runs on the runner's thread in chunks between consumer polls, so the consumer stays in its
group and the visitor's updates are ordered with the messages of the same partition (B20).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pygoka.context import Context
from pygoka.errors import ProcessingError, PygokaError

if TYPE_CHECKING:
    from pygoka.runner import GroupRunner

#: VISIT_CHUNK is the most keys visited between two polls of the consumer.
VISIT_CHUNK = 5000


@dataclass
class VisitMessage:
    """VisitMessage stands in for the message of a visitor's context."""

    partition_number: int

    def topic(self) -> str:
        return ""

    def partition(self) -> int:
        return self.partition_number

    def offset(self) -> int:
        return -1

    def timestamp(self) -> tuple[int, int]:
        return (0, int(time.time() * 1000))

    def headers(self) -> None:
        return None


@dataclass
class VisitJob:
    """VisitJob is one pending visit_all: the visitor's name, its meta value and the keys left."""

    name: str
    meta: Any
    future: Future[int] = field(default_factory=Future)
    keys: Iterator[tuple[int, bytes]] | None = None
    visited: int = 0


class Visits:
    """Visits queues visit_all requests from any thread and runs them on the runner's thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[VisitJob] = queue.Queue()
        self._current: VisitJob | None = None

    def submit(self, name: str, meta: Any) -> Future[int]:
        """submit queues a visit; the future resolves to the number of keys visited."""
        job = VisitJob(name, meta)
        self._queue.put(job)
        return job.future

    def pending(self) -> bool:
        """pending tells whether a visit is running or queued."""
        return self._current is not None or not self._queue.empty()

    def abort(self, reason: str) -> None:
        """abort fails the running visit (a rebalance or stop took its partitions away)."""
        job, self._current = self._current, None
        if job is not None:
            job.future.set_exception(PygokaError(f"visit '{job.name}' {reason}"))

    def step(self, runner: GroupRunner) -> int:
        """step visits up to VISIT_CHUNK keys and returns how many it visited."""
        if self._current is None:
            job = self._queue.get_nowait()
            # Visit what is stored: the pending updates of earlier messages go to storage first.
            runner.checkpoint()
            job.keys = _keys(runner, sorted(runner.runs))
            self._current = job
        job = self._current
        assert job.keys is not None
        visitor = runner.graph.visitor(job.name)
        visited = 0
        for number, key in job.keys:
            context = Context(runner, runner.runs[number], VisitMessage(number), key.decode("utf-8", "replace"), key)
            try:
                visitor.callback(context, job.meta)
                context.finish()
            except Exception as exc:
                error = ProcessingError(f"visitor '{job.name}' failed on key {key[:40]!r}: {type(exc).__name__}: {exc}",
                                        group=runner.group, partition=number)
                self._current = None
                job.future.set_exception(error)
                raise error from exc
            job.visited += 1
            visited += 1
            if visited >= VISIT_CHUNK:
                return visited
        self._current = None
        job.future.set_result(job.visited)
        return visited


def _keys(runner: GroupRunner, numbers: list[int]) -> Iterator[tuple[int, bytes]]:
    for number in numbers:
        table = runner.runs[number].table
        assert table is not None
        for key, _ in table.iterate():
            yield number, key
