"""A Kafka broker of a test's own (scripts/kafka.sh on free ports), for outage tests (B27, reconnects)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT, Kafka, free_port


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Kafka]]:
    """own_broker is a broker only this test uses, with a function to run scripts/kafka.sh commands on it.

    kafka("start", keep_data=True) restarts it on the data it had, as after an outage.
    """
    port, controller = free_port(), free_port()
    env = {**os.environ, "PYTHON": sys.executable, "PYGOKA_RUN": str(tmp_path / "run"),
           "PYGOKA_KAFKA_PORT": str(port), "PYGOKA_KAFKA_CONTROLLER_PORT": str(controller)}

    def kafka(command: str, keep_data: bool = False) -> None:
        extra = {"PYGOKA_KAFKA_KEEP_DATA": "1"} if keep_data else {}
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), command], env={**env, **extra}, check=True, timeout=180)

    kafka("start")
    try:
        yield f"127.0.0.1:{port}", kafka
    finally:
        kafka("stop")
