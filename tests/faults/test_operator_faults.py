"""Operator faults on the real control plane: the operator SIGKILLed mid-reconcile, the API server restarted, the
Kafka broker down while a ProcessorGroup is created.

Mid-reconcile is made deterministic with KafkaGate, a TCP proxy in front of the broker that can hold connections
unanswered: the reconcile handler blocks in its first Kafka call (topics come before children), and the operator
is killed while it is provably inside the handler (kopf's DEBUG "is invoked" line, a held connection, and nothing
written yet). Each test is bounded by its pytest timeout and every wait by its own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from helpers import Kafka, Names, wait_until
from operator_cluster import (
    K8S_SH,
    OPERATOR_NS,
    RELEASE,
    Cluster,
    Operator,
    condition,
    healthz,
    kafka_topic,
    processor_group,
    run_operator,
    wait_for,
)

# own_broker: a broker of the test's own (tests/kafka_broker.py), stopped and restarted on its data.
pytest_plugins = ["kafka_broker"]
pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(600)]
#: HOLD is the operator's Kafka timeout while the gate holds its connections: far longer than the kill takes.
HOLD = 120


class KafkaGate:
    """KafkaGate forwards TCP connections to a broker while open; while closed it accepts and holds them unanswered
    (a broker that hangs), counting them. Only bootstrap traffic goes through it: clients then talk to the broker's
    advertised address directly, so a held bootstrap is what blocks a new AdminClient."""

    def __init__(self, target: str) -> None:
        host, port = target.split(",")[0].rsplit(":", 1)
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.is_open = False
        self.held: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                if not self.is_open:
                    self.held.append(conn)
                    continue
            self._forward(conn)

    def _forward(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        for source, sink in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def holding(self) -> int:
        with self._lock:
            return len(self.held)

    def open(self) -> None:
        """open forwards new connections; held ones are closed (their clients retry through the open gate)."""
        with self._lock:
            self.is_open = True
            held, self.held = self.held, []
        for conn in held:
            conn.close()

    def close(self) -> None:
        """close holds new connections again."""
        with self._lock:
            self.is_open = False

    def shutdown(self) -> None:
        self.open()
        self.server.close()


@pytest.fixture
def gate(brokers: str) -> Iterator[KafkaGate]:
    proxy = KafkaGate(brokers)
    yield proxy
    proxy.shutdown()


@pytest.fixture
def namespace(installed: Cluster) -> str:
    name = f"fault-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    return name


def start(cluster: Cluster, brokers: str, directory: Path, namespace: str,
          **env: str) -> contextlib.AbstractContextManager[Operator]:
    """start runs an operator with the chart's ServiceAccount, watching only namespace, logging at DEBUG."""
    return run_operator(cluster, brokers, directory, RELEASE, OPERATOR_NS, watch=namespace,
                        extra_env={"PYGOKA_LOG_LEVEL": "DEBUG", **env})


def kill(running: Operator) -> None:
    running.process.kill()
    running.process.wait(30)


def invoked(running: Operator, namespace: str, name: str, handler: str) -> int:
    """invoked counts kopf's DEBUG lines saying the handler started for the object."""
    return running.log_text().count(f"[{namespace}/{name}] Handler '{handler}' is invoked.")


def converged(cluster: Cluster, namespace: str, name: str, generation: int) -> dict[str, Any]:
    """converged waits until the group's status is written for generation with TopicsReady=True."""
    return dict(wait_for(lambda: cluster.get("pg", name, "-n", namespace),
                         lambda r: (r.get("status") or {}).get("observedGeneration") == generation
                         and (condition(r, "TopicsReady") or {}).get("status") == "True",
                         f"{name} reconciled at generation {generation}", timeout=120))


def assert_single_children(cluster: Cluster, namespace: str, pg: dict[str, Any], replicas: int) -> None:
    """assert_single_children: one StatefulSet, Service and PDB of the group, each owned once; no duplicated
    condition or finalizer."""
    name, uid = pg["metadata"]["name"], pg["metadata"]["uid"]
    for kind in ("statefulsets", "services", "poddisruptionbudgets"):
        items = json.loads(cluster.kubectl("get", kind, "-n", namespace, "-l", f"app.kubernetes.io/instance={name}",
                                           "-o", "json").stdout)["items"]
        assert [item["metadata"]["name"] for item in items] == [name], kind
        assert [ref["uid"] for ref in items[0]["metadata"]["ownerReferences"]] == [uid], kind
    sts = cluster.get("statefulset", name, "-n", namespace)
    assert sts["spec"]["replicas"] == replicas
    types = [c["type"] for c in pg["status"]["conditions"]]
    assert sorted(types) == sorted(set(types)) == ["Degraded", "Progressing", "Ready", "TopicsReady"]
    assert pg["metadata"]["finalizers"].count("pygoka.io/finalizer") == 1


def test_operator_killed_mid_reconcile_converges_after_restart(installed: Cluster, gate: KafkaGate, namespace: str,
                                                               brokers: str, tmp_path: Path,
                                                               names: Names) -> None:
    """SIGKILL inside the create handler (nothing written yet), restart: topics, children and status converge,
    once each. Then SIGKILL inside an update handler (replicas 2 -> 3, a new input), restart: the update lands."""
    admin = AdminClient({"bootstrap.servers": brokers})
    name, first, second = names("killed"), names("in"), names("in2")
    with start(installed, gate.address, tmp_path / "a", namespace, PYGOKA_OPERATOR_KAFKA_TIMEOUT=str(HOLD)) as a:
        installed.apply(namespace, processor_group(name, inputs=[first], replicas=2))
        wait_until(lambda: invoked(a, namespace, name, "reconcile_processorgroup") and gate.holding(), 60,
                   interval=0.2, message="the create handler blocked on Kafka")
        assert installed.get("statefulset", name, "-n", namespace) is None
        assert installed.get("service", name, "-n", namespace) is None
        assert not (installed.get("pg", name, "-n", namespace).get("status") or {}).get("conditions")
        kill(a)
    assert kafka_topic(admin, f"{name}-table") is None
    gate.open()
    with start(installed, gate.address, tmp_path / "b", namespace) as b:
        pg = converged(installed, namespace, name, 1)
        assert_single_children(installed, namespace, pg, replicas=2)
        assert kafka_topic(admin, first) == (4, "delete")
        assert kafka_topic(admin, f"{name}-table") == (4, "compact")

        # The update: held at its Kafka step, killed there.
        gate.close()
        before = invoked(b, namespace, name, "reconcile_processorgroup/spec")
        installed.apply(namespace, processor_group(name, inputs=[first, second], replicas=3))
        wait_until(lambda: invoked(b, namespace, name, "reconcile_processorgroup/spec") > before
                   and gate.holding(), 60, interval=0.2, message="the update handler blocked on Kafka")
        assert installed.get("statefulset", name, "-n", namespace)["spec"]["replicas"] == 2
        kill(b)
    assert kafka_topic(admin, second) is None
    gate.open()
    with start(installed, gate.address, tmp_path / "c", namespace) as c:
        pg = converged(installed, namespace, name, 2)
        assert_single_children(installed, namespace, pg, replicas=3)
        assert kafka_topic(admin, second) == (4, "delete")
        assert sorted(t["name"] for t in pg["status"]["topics"]) == sorted([first, second, f"{name}-table"])
        assert c.process.poll() is None


def test_api_server_restart_then_a_change_is_reconciled_by_the_same_process(
        installed: Cluster, brokers: str, namespace: str, tmp_path: Path, names: Names) -> None:
    """kube-apiserver restarted (down 3 s) under a running operator: a scale and a new group applied afterwards
    are reconciled by the same operator process, which stayed healthy."""
    name, later = names("steady"), names("later")
    with start(installed, brokers, tmp_path, namespace) as running:
        installed.apply(namespace, processor_group(name, inputs=[names("in")]))
        converged(installed, namespace, name, 1)
        pid = running.process.pid
        restarted = subprocess.run([str(K8S_SH), "restart-apiserver", "3"], env=installed.env, capture_output=True,
                                   text=True, timeout=240)
        assert restarted.returncode == 0, restarted.stderr
        assert "kube-apiserver restarted" in restarted.stderr
        installed.kubectl("scale", "-n", namespace, f"pg/{name}", "--replicas=2")
        installed.apply(namespace, processor_group(later, inputs=[names("in")]))
        # kopf re-establishes its watches with backoff after the outage.
        wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 2,
                 "the scale after the restart", timeout=180)
        wait_for(lambda: installed.get("statefulset", later, "-n", namespace), lambda s: True,
                 "the new group's StatefulSet", timeout=180)
        converged(installed, namespace, later, 1)
        assert running.process.poll() is None and running.process.pid == pid
        assert healthz(running.health_port) == 200
        assert invoked(running, namespace, later, "reconcile_processorgroup") >= 1


def test_broker_down_while_a_group_is_created(installed: Cluster, own_broker: tuple[str, Kafka], namespace: str,
                                              tmp_path: Path, names: Names) -> None:
    """Broker stopped, group created: TopicsReady=Unknown/KafkaUnreachable naming the brokers, Degraded, an event,
    no StatefulSet. Broker started again (same data): topics, StatefulSet, TopicsReady=True without any touch."""
    address, kafka = own_broker
    kafka("stop")
    name, clicks = names("outage"), names("in")
    with start(installed, address, tmp_path, namespace, PYGOKA_OPERATOR_KAFKA_TIMEOUT="5") as running:
        installed.apply(namespace, processor_group(name, inputs=[clicks]))
        pg = wait_for(lambda: installed.get("pg", name, "-n", namespace),
                      lambda r: (condition(r, "TopicsReady") or {}).get("reason") == "KafkaUnreachable",
                      "TopicsReady KafkaUnreachable", timeout=90)
        topics_ready = condition(pg, "TopicsReady") or {}
        assert topics_ready["status"] == "Unknown"
        assert topics_ready["message"].startswith(f"Kafka unreachable at {address}: "), topics_ready["message"]
        assert (condition(pg, "Degraded") or {}).get("status") == "True"
        assert installed.get("statefulset", name, "-n", namespace) is None
        events = json.loads(installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        assert any(e["reason"] == "ReconcileBlocked" and "Kafka unreachable" in e["message"] for e in events)

        kafka("start", keep_data=True)
        pg = converged(installed, namespace, name, 1)
        assert (condition(pg, "Degraded") or {}).get("status") == "False"
        assert_single_children(installed, namespace, pg, replicas=1)
        admin = AdminClient({"bootstrap.servers": address})
        assert kafka_topic(admin, clicks) == (4, "delete")
        assert kafka_topic(admin, f"{name}-table") == (4, "compact")
        assert running.process.poll() is None
