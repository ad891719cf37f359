"""The operator on a TLS + SASL/SCRAM-SHA-512 broker, its settings from the group's Kafka Secret (spec.kafka.secretRef).

With the right Secret it creates the topics (TopicsReady=True) and measures the lag (status.lag); a wrong password
and an untrusted certificate give TopicsReady=Unknown/KafkaAuthenticationFailed naming the cause. No password or
key shows in its log (DEBUG), events, statuses or /metrics.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Names, free_port
from kafka_broker import started_broker
from operator_cluster import OPERATOR_NS, RELEASE, Cluster, condition, processor_group, run_operator, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """secure is a SASL_SSL broker's address and its scripts/kafka.sh files (sasl-ssl/)."""
    run, port = tmp_path_factory.mktemp("op-sasl-ssl") / "run", free_port()
    with started_broker(run, {"PYGOKA_KAFKA_SASL_SSL_PORT": str(port)}):
        yield f"127.0.0.1:{port}", run / "kafka" / "sasl-ssl"


def reason(resource: dict[str, Any]) -> str | None:
    return (condition(resource, "TopicsReady") or {}).get("reason")


@pytest.fixture
def namespace(installed: Cluster) -> Iterator[str]:
    name = f"tls-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    yield name
    installed.kubectl("delete", "namespace", name, "--wait=false")


def test_the_operator_connects_with_the_secret_and_names_a_refused_handshake(
        installed: Cluster, brokers: str, secure: tuple[str, Path], namespace: str, tmp_path: Path,
        names: Names) -> None:
    address, files = secure
    password = (files / "client" / "sasl.password").read_text()
    wrong = f"wrong-{uuid.uuid4().hex[:10]}"
    ca, other_ca = (files / "ca.pem").read_text(), (files / "other-ca.pem").read_text()
    base = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "pygoka"}
    secrets = {"kafka-tls": {**base, "sasl.password": password, "ssl.ca.pem": ca},
               "kafka-tls-wrong": {**base, "sasl.password": wrong, "ssl.ca.pem": ca},
               "kafka-tls-untrusted": {**base, "sasl.password": password, "ssl.ca.pem": other_ca}}
    for name, settings in secrets.items():
        installed.kubectl("create", "secret", "generic", name, "-n", namespace,
                          *[f"--from-literal={key}={value}" for key, value in settings.items()])
    groups = {secret: names(secret) for secret in secrets}
    metrics_port = free_port()
    with run_operator(installed, brokers, tmp_path, RELEASE, OPERATOR_NS, watch=namespace,
                      extra_env={"PYGOKA_LOG_LEVEL": "DEBUG", "PYGOKA_OPERATOR_METRICS_PORT": str(metrics_port),
                                 "PYGOKA_OPERATOR_KAFKA_TIMEOUT": "5"}) as running:
        for secret, group in groups.items():
            kafka = {"bootstrapServers": address, "secretRef": {"name": secret}}
            installed.apply(namespace, processor_group(group, inputs=[names("in")], kafka=kafka))
        ready = wait_for(lambda: installed.get("pg", groups["kafka-tls"], "-n", namespace),
                         lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True"
                         and "lag" in r["status"], "TopicsReady and status.lag over SASL_SSL", timeout=120)
        assert ready["status"]["lag"] == 0
        assert {t["name"]: t["partitions"] for t in ready["status"]["topics"]}[f"{groups['kafka-tls']}-table"] == 4
        for secret, cause in (("kafka-tls-wrong", "SASL authentication error"),
                              ("kafka-tls-untrusted", "certificate verify failed")):
            refused = wait_for(lambda s=secret: installed.get("pg", groups[s], "-n", namespace),
                               lambda r: reason(r) == "KafkaAuthenticationFailed",
                               f"KafkaAuthenticationFailed for {secret}", timeout=120)
            message = (condition(refused, "TopicsReady") or {})["message"]
            assert cause in message and f"Kafka error at {address}" in message, message
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        log = running.log_text()
    assert "[DEBUG" in log, "the operator did not log at DEBUG"
    everything = {
        "operator log": log,
        "metrics": metrics,
        "events": installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout,
        "statuses": installed.kubectl("get", "pg", "-n", namespace, "-o", "json").stdout,
    }
    assert "KafkaAuthenticationFailed" in everything["statuses"]
    assert "pygoka_operator_" in metrics
    # The CA is no secret (it is in every status of a TLS broker's clients); passwords are, and the broker's key.
    key = (files / "broker.key").read_text().splitlines()[1]
    assert {where: [s for s in (password, wrong, key) if s in text] for where, text in everything.items()} == {
        where: [] for where in everything}
