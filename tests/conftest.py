"""Shared fixtures: the local Kafka broker (started by scripts/test.sh), unique names, helpers."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")

# operator_cluster: the `installed` and `operator` fixtures of the operator and end-to-end tests.
pytest_plugins = ["operator_cluster"]


@pytest.fixture(scope="session")
def brokers() -> str:
    """brokers is the bootstrap address of the local broker; a test needing it fails if it is down."""
    host, port = BROKERS.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"Kafka is not reachable at {BROKERS} ({exc}); run the tests with scripts/test.sh, "
                    "which starts it")
    return BROKERS


@pytest.fixture
def names() -> Callable[[str], str]:
    """names turns a base name into one unique to this test, so tests never share topics or groups."""
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """state_dir is a fresh directory for a processor's or view's RocksDB state."""
    path = tmp_path / "state"
    path.mkdir()
    return path


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


@pytest.fixture
def start() -> Iterator[Callable[[Any], Running]]:
    """start runs a processor or view in a thread and stops every one still running at teardown."""
    started: list[Running] = []

    def run(target: Any) -> Running:
        running = Running(target)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.thread.is_alive():
            running.target.stop()
            running.thread.join(60)
