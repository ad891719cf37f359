"""Helpers shared by the test modules: waiting, threads running processors, names of fixture types.

conftest.py holds the fixtures; tests import these with `from helpers import ...` (tests/ is on sys.path).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pygoka import Context
from pygoka.partitioner import partition_for

#: ROOT is the repository's checkout.
ROOT = Path(__file__).resolve().parent.parent

#: Names is the type of the `names` fixture: a base name to one unique to the test.
Names = Callable[[str], str]
#: Kafka is the type of the function of the `own_broker` fixture running scripts/kafka.sh commands.
Kafka = Callable[..., None]

#: FAST_REBALANCE makes a dead or leaving instance's partitions move within seconds.
FAST_REBALANCE = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """wait_until polls condition until it returns a truthy value, failing the test after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")


def free_port() -> int:
    """free_port is a loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def key_on(partition: int, partitions: int, prefix: str = "key", index: int = 0) -> str:
    """key_on is the index-th key `<prefix><n>` that Goka's partitioner places on partition (of partitions)."""
    found = (f"{prefix}{n}" for n in range(1_000_000)
             if partition_for(f"{prefix}{n}".encode(), partitions) == partition)
    for _ in range(index):
        next(found)
    return next(found)


def count(ctx: Context, _msg: Any) -> None:
    """count counts the messages of each key in the group table."""
    ctx.set_value((ctx.value() or 0) + 1)


class Seen:
    """Seen collects what callbacks observed, thread-safely, so the test can wait for it."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)

    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def count(self, item: Any) -> int:
        return self.items().count(item)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Any]:
        """wait_for waits until count items were seen and returns them."""
        wait_until(lambda: len(self.items()) >= count, timeout, message=f"{count} processed messages")
        return self.items()


class Running:
    """Running is a processor or view whose run() executes in a thread; error holds what it raised."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.target.run()
        except BaseException as exc:  # noqa: BLE001 - kept for the test to assert on
            self.error = exc

    def stop(self, timeout: float = 60.0) -> None:
        """stop stops the target and waits for run() to return, re-raising what it raised."""
        self.target.stop()
        self.join(timeout)
        if self.error is not None:
            raise self.error

    def join(self, timeout: float = 60.0) -> None:
        """join waits for run() to return."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            pytest.fail(f"{self.target!r} did not stop within {timeout}s")


#: Start is the type of the `start` fixture: runs a processor or view in a thread.
Start = Callable[[Any], Running]
