"""A Kafka broker of a test's own (scripts/kafka.sh on free ports): outages (B27, reconnects), odd settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pytest
from helpers import ROOT, Kafka, free_port


@contextmanager
def started_broker(run_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[tuple[str, Kafka]]:
    """started_broker runs a broker of its own in run_dir (scripts/kafka.sh with env's PYGOKA_KAFKA_* added) and
    yields its address with a function running scripts/kafka.sh commands on it; it is stopped on leaving."""
    port, controller = free_port(), free_port()
    base = {**os.environ, "PYTHON": sys.executable, "PYGOKA_RUN": str(run_dir), "PYGOKA_KAFKA_PORT": str(port),
            "PYGOKA_KAFKA_CONTROLLER_PORT": str(controller), **(env or {})}

    def kafka(command: str, keep_data: bool = False) -> None:
        extra = {"PYGOKA_KAFKA_KEEP_DATA": "1"} if keep_data else {}
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), command], env={**base, **extra}, check=True, timeout=180)

    kafka("start")
    try:
        yield f"127.0.0.1:{port}", kafka
    finally:
        kafka("stop")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Kafka]]:
    """own_broker is a broker only this test uses, with a function to run scripts/kafka.sh commands on it.

    kafka("start", keep_data=True) restarts it on the data it had, as after an outage.
    """
    with started_broker(tmp_path / "run") as broker:
        yield broker


#: Outage is how a test's broker becomes unreachable: restarted, or cut off while it runs.
Outage = Literal["restart", "network"]


@contextmanager
def unreachable(outage: Outage, brokers: str, kafka: Kafka) -> Iterator[None]:
    """unreachable makes a test's own broker unreachable for the block: stopped and then started on its data
    ("restart"), or running on while every packet to its port is dropped ("network", as a cut link; the broker's
    own requests to itself, such as transaction markers, wait too)."""
    if outage == "restart":
        kafka("stop")
        try:
            yield
        finally:
            kafka("start", keep_data=True)
        return
    rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", brokers.rsplit(":", 1)[1], "-j", "DROP"]
    subprocess.run(["iptables", "-I", *rule], check=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-D", *rule], check=True)
