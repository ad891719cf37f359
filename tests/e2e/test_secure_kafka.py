"""End to end over TLS + SASL/SCRAM-SHA-512: click count on real pods through the operator installed by Helm.

The test runs a broker of its own whose only listener the pods are given is SASL_SSL on the node's host address, its
certificate naming what each side dials: `kafka` (the pods' Service), `kafka.<namespace>.svc` (the operator's
qualified name for it) and the advertised IP (every client after bootstrap). The ProcessorGroup and the View name
`kafka:9093` and a Secret of librdkafka settings (spec.kafka.secretRef, the CA inline as ssl.ca.pem); hostname
verification stays librdkafka's default (on). The operator creates the topics over TLS, the pods count clicks emitted
from this machine over SASL_SSL, and the View answers every count exactly; a group whose Secret has a wrong password
reports KafkaAuthenticationFailed and gets no pod. Neither password shows in a pod's log, an event, a status or a
StatefulSet.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from clicks import ClickCount
from helpers import free_port
from kafka_broker import started_broker
from node_cluster import OPERATOR_NS, NodeCluster
from operator_cluster import condition
from pygoka import Emitter
from pygoka.codec import String

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]

#: SERVICE_PORT is the port of the test namespace's `kafka` Service, which leads to the broker's SASL_SSL listener.
SERVICE_PORT = 9093
BASE = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "pygoka"}


@dataclass
class SecureBroker:
    """SecureBroker is the test's SASL_SSL broker: its address for this machine, its files and its secrets."""

    address: str
    files: Path

    @property
    def password(self) -> str:
        return (self.files / "client" / "sasl.password").read_text()

    def settings(self, password: str) -> dict[str, str]:
        """settings are the librdkafka settings of a Kafka Secret for user pygoka with password."""
        return {**BASE, "sasl.password": password, "ssl.ca.pem": (self.files / "ca.pem").read_text()}


@dataclass
class SecureClickCount(ClickCount):
    """SecureClickCount is the example on the SASL_SSL broker: group and View name the Secret, clicks go over TLS."""

    broker: SecureBroker | None = None
    secret: str = "kafka-tls"

    @property
    def kafka(self) -> dict[str, Any]:
        """kafka is spec.kafka: the namespace's `kafka` Service on the SASL_SSL port, settings from the Secret."""
        return {"bootstrapServers": f"kafka:{SERVICE_PORT}", "secretRef": {"name": self.secret}}

    def manifests(self, **spec: Any) -> list[dict[str, Any]]:
        """manifests are the example's with spec.kafka of both the group and the View on the Secret."""
        group_doc, view_doc = super().manifests(kafka=self.kafka, **spec)
        view_doc["spec"]["kafka"] = self.kafka
        return [group_doc, view_doc]

    def emit(self, clicks: int, users: int = 1_000, seed: int = 1) -> None:
        """emit sends clicks over users (each at least once) over SASL_SSL and adds them to the truth."""
        assert self.broker is not None
        rng = random.Random(seed)
        keys = [f"user-{rng.randrange(users)}" for _ in range(clicks - users)] + [f"user-{u}" for u in range(users)]
        settings = self.broker.settings(self.broker.password)
        with Emitter(self.broker.address, self.topic, String(), producer_config=settings,
                     partitions=self.partitions) as emitter:
            for key in keys:
                emitter.emit(key, "click")
            assert emitter.flush(60) == 0
        self.truth.update(keys)


@pytest.fixture
def secure(in_cluster: NodeCluster, tmp_path: Path) -> Iterator[tuple[str, SecureBroker]]:
    """secure is a fresh namespace whose `kafka:9093` Service leads to a SASL_SSL broker of this test's own."""
    port = free_port()
    namespace = in_cluster.namespace("tls", kafka=(SERVICE_PORT, port))
    sans = f"DNS:kafka,DNS:kafka.{namespace}.svc"
    env = {"PYTHON": sys.executable, "PYGOKA_KAFKA_HOST": in_cluster.host_ip, "PYGOKA_KAFKA_SASL_SSL_PORT": str(port),
           "PYGOKA_KAFKA_SSL_SANS": sans}
    run = tmp_path / "run"
    with started_broker(run, env):
        yield namespace, SecureBroker(f"{in_cluster.host_ip}:{port}", run / "kafka" / "sasl-ssl")


def create_secret(cluster: NodeCluster, namespace: str, name: str, settings: dict[str, str]) -> None:
    """create_secret creates a Secret from stdin (kubectl create: no last-applied annotation repeating it)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": settings}
    cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(secret))


def texts(cluster: NodeCluster, namespace: str) -> dict[str, str]:
    """texts are every place a password must not be: pod logs (the namespace's and the operator's), events, the
    groups' and Views' statuses, the StatefulSets."""
    found = {}
    for ns in (namespace, OPERATOR_NS):
        for pod in cluster.get("pods", "-n", ns)["items"]:
            name = pod["metadata"]["name"]
            found[f"log {ns}/{name}"] = cluster.kubectl("logs", "-n", ns, name, "--all-containers", check=False).stdout
    found["events"] = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    for kind in ("pg", "views"):
        found[f"{kind} statuses"] = str([item.get("status") for item in cluster.get(kind, "-n", namespace)["items"]])
    found["statefulsets"] = cluster.kubectl("get", "statefulsets", "-n", namespace, "-o", "json").stdout
    return found


def test_click_count_over_sasl_ssl_through_the_operator(in_cluster: NodeCluster,
                                                        secure: tuple[str, SecureBroker]) -> None:
    """Topics made over TLS, 20,000 clicks over SASL_SSL counted exactly by pods; a wrong password gets no pod."""
    namespace, broker = secure
    wrong = f"wrong-{uuid.uuid4().hex[:12]}"
    create_secret(in_cluster, namespace, "kafka-tls", broker.settings(broker.password))
    create_secret(in_cluster, namespace, "kafka-tls-wrong", broker.settings(wrong))
    clicks = SecureClickCount(in_cluster, namespace, "tls-clicks", partitions=4, broker=broker)
    refused = SecureClickCount(in_cluster, namespace, "tls-refused", partitions=4, broker=broker,
                               secret="kafka-tls-wrong")
    applied = time.monotonic()
    clicks.apply(replicas=2)
    refused.apply(with_view=False, replicas=1)

    ready = clicks.wait(lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True",
                        "TopicsReady=True over SASL_SSL")
    topics = {t["name"]: t["partitions"] for t in ready["status"]["topics"]}
    assert topics[clicks.topic] == 4 and topics[clicks.table] == 4, topics
    clicks.wait_ready(2)
    clicks.wait_ready(1, kind="view")
    print(f"applied -> topics made over TLS, every pod Ready: {time.monotonic() - applied:.1f} s")
    for statefulset in (clicks.group, f"{clicks.group}-view"):
        pod_spec = in_cluster.get("statefulset", statefulset, "-n", namespace)["spec"]["template"]["spec"]
        env = {item["name"]: item.get("value") for item in pod_spec["containers"][0]["env"]}
        assert env["PYGOKA_BROKERS"] == f"kafka:{SERVICE_PORT}", env
        assert {"secretName": "kafka-tls", "defaultMode": 0o440} in [v.get("secret") for v in pod_spec["volumes"]]

    emitted = time.monotonic()
    clicks.emit(20_000, users=500, seed=3)
    answered = clicks.wait_counts()
    print(f"20,000 clicks over SASL_SSL -> every count exact in the View: {time.monotonic() - emitted:.1f} s")
    assert sum(answered.values()) == 20_000

    blocked = refused.wait(lambda r: (condition(r, "TopicsReady") or {}).get("reason") == "KafkaAuthenticationFailed",
                           "KafkaAuthenticationFailed with the wrong password")
    message = (condition(blocked, "TopicsReady") or {})["message"]
    assert "SASL authentication error" in message, message
    assert in_cluster.get("statefulset", refused.group, "-n", namespace) is None
    # The learning Job's pod ran (the topology comes first); no processor pod did.
    assert in_cluster.pods(namespace, f"app.kubernetes.io/instance={refused.group},"
                                      "app.kubernetes.io/component=processor") == []

    leaks = {where: [s for s in (broker.password, wrong) if s in text]
             for where, text in texts(in_cluster, namespace).items()}
    assert {where: found for where, found in leaks.items() if found} == {}
    assert any(where.startswith(f"log {namespace}/{clicks.group}-") for where in leaks), sorted(leaks)
