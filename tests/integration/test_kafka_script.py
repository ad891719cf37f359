"""scripts/kafka.sh formats and starts a broker whatever its cluster id looks like, and refuses a bad port.

A cluster id is 22 characters of URL-safe base64, so one in 64 random ids starts with '-'; the storage
tool once read such an id as an option and the broker did not start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from helpers import ROOT
from kafka_broker import free_port

pytestmark = pytest.mark.kafka


def test_a_cluster_id_starting_with_a_dash_formats_and_starts(tmp_path: Path) -> None:
    cluster_id = "-" + "A" * 20 + "w"
    port = free_port()
    env = {**os.environ, "PYTHON": sys.executable, "PYGOKA_RUN": str(tmp_path / "run"),
           "PYGOKA_KAFKA_PORT": str(port), "PYGOKA_KAFKA_CONTROLLER_PORT": str(free_port()),
           "PYGOKA_KAFKA_CLUSTER_ID": cluster_id}
    script = str(ROOT / "scripts" / "kafka.sh")
    try:
        subprocess.run([script, "start"], env=env, check=True, timeout=180)
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=30)
        assert metadata.cluster_id == cluster_id
    finally:
        subprocess.run([script, "stop"], env=env, check=True, timeout=60)


@pytest.mark.parametrize("port", ["abc", "0", "09092", "65535", "9092x"])
def test_a_listener_port_that_is_no_port_number_is_refused_by_name(port: str) -> None:
    # The controller port's default is the listener port + 1: shell arithmetic on "abc" would have made it 1.
    env = {**os.environ, "PYGOKA_KAFKA_PORT": port}
    env.pop("PYGOKA_KAFKA_CONTROLLER_PORT", None)
    result = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "bootstrap"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"PYGOKA_KAFKA_PORT must be a port number from 1 to 65534, got {port}" in result.stderr
