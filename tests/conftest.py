"""Shared fixtures: the local Kafka broker (started by scripts/test.sh), unique names, state dirs, threads.

The helpers the tests import (wait_until, Running, Names, FAST_REBALANCE...) are in tests/helpers.py.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Names, Running, Start

BROKERS = os.environ.get("PYGOKA_BROKERS", "127.0.0.1:9092")

# operator_cluster: the control plane's `installed` and `operator` fixtures of the operator tests; node_cluster: the
# real node's `node` and `in_cluster` of the end-to-end tests.
pytest_plugins = ["operator_cluster", "node_cluster"]


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
def names() -> Names:
    """names turns a base name into one unique to this test, so tests never share topics or groups."""
    suffix = uuid.uuid4().hex[:8]
    return lambda base: f"{base}-{suffix}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """state_dir is a fresh directory for a processor's or view's RocksDB state."""
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def start() -> Iterator[Start]:
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
