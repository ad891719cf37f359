"""The real one-node cluster of the end-to-end tests: scripts/k8s.sh with its node, a Kafka broker the pods reach,
the project's images in the node's containerd, and the chart's operator running there as pods.

The first test to ask starts all of it (about 20 s warm) and the session's end stops it. The broker listens on the
node's gateway address (PYGOKA_K8S_HOST_IP), so this machine and the pods use the same bootstrap address; in each
test namespace a selector-less Service `kafka:9092` points at it, the name the examples use.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, free_port, wait_until
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from operator_cluster import CHART, CRDS, Cluster
from urllib3.exceptions import HTTPError

K8S_SH = ROOT / "scripts" / "k8s.sh"
IMAGES_SH = ROOT / "scripts" / "images.sh"
KAFKA_SH = ROOT / "scripts" / "kafka.sh"
RELEASE = "pygoka-operator"
OPERATOR_NS = "pygoka-system"
#: RELEASE_VALUES are the shared release's: two replicas electing a leader, quick reconciles and peering.
RELEASE_VALUES = {"kafka.bootstrapServers": "kafka:9092", "reconcileIntervalSeconds": "3", "replicaCount": "2",
                  "peering.name": "pygoka-e2e", "peering.lifetimeSeconds": "10", "logFormat": "text"}
#: CLICK_COUNT_IMAGES are the click-count example under two tags: the rolling-update test moves from one to the other.
CLICK_COUNT_IMAGES = ("localhost/click-count:1", "localhost/click-count:2")


@dataclass
class NodeCluster(Cluster):
    """NodeCluster is the running cluster with a node, and the broker its pods use."""

    host_ip: str = ""
    brokers: str = ""
    kafka_port: int = 0
    namespaces: list[str] = field(default_factory=list)

    def namespace(self, base: str, labels: dict[str, str] | None = None, kafka: tuple[int, int] | None = None) -> str:
        """namespace creates a fresh namespace with the `kafka` Service and waits for its default ServiceAccount;
        the Service is `kafka:9092` to the shared broker, or kafka=(port, host port) to another one."""
        name = f"{base}-{uuid.uuid4().hex[:6]}"
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}))
        self.namespaces.append(name)
        port, host_port = kafka or (9092, self.kafka_port)
        subprocess.run([str(K8S_SH), "host-service", name, "kafka", str(port), str(host_port)], env=self.env,
                       check=True, capture_output=True, text=True)
        wait_until(lambda: self.get("serviceaccount", "default", "-n", name), 60, message=f"{name}/default")
        return name

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """pods are the pods matching a label selector, by name."""
        items = json.loads(self.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
        return sorted(items, key=lambda pod: str(pod["metadata"]["name"]))

    def logs(self, namespace: str, pod: str, previous: bool = False) -> str:
        """logs is `kubectl logs` of the pod's first container (of its previous run with previous)."""
        args = ["logs", "-n", namespace, pod, *(["--previous"] if previous else [])]
        result = self.kubectl(*args, check=False)
        return result.stdout if result.returncode == 0 else ""

    @cached_property
    def core(self) -> client.CoreV1Api:
        """core is a CoreV1Api client of the cluster's kubeconfig, built once and kept for every call."""
        api = config.new_client_from_config(config_file=self.env["KUBECONFIG"])
        # Slashes and the port's colon go into the URL as they are, as in the one `kubectl get --raw` sent.
        api.configuration.safe_chars_for_path_param = "/:"
        return client.CoreV1Api(api)

    def proxy_get(self, namespace: str, service: str, port: str, path: str) -> Any:
        """proxy_get is a GET through the API server's service proxy, parsed as JSON (None when it fails)."""
        try:
            response = self.core.connect_get_namespaced_service_proxy_with_path(
                f"{service}:{port}", namespace, path.removeprefix("/"), _preload_content=False, _request_timeout=180)
        except (ApiException, HTTPError):
            return None
        return json.loads(response.data)

    def container_pid(self, namespace: str, pod: str) -> int:
        """container_pid is the host pid of the pod's pygoka container's main process (from containerd)."""
        status = self.get("pod", pod, "-n", namespace)
        container_id = status["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
        inspected = json.loads(self.call("crictl", "inspect", container_id).stdout)
        return int(inspected["info"]["pid"])

    def kill_container(self, namespace: str, pod: str) -> None:
        """kill_container SIGKILLs the container's main process, as the kernel's OOM killer would."""
        os.kill(self.container_pid(namespace, pod), signal.SIGKILL)

    def delete_namespaces(self) -> None:
        for name in self.namespaces:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)
        self.namespaces.clear()


_STARTED: list[NodeCluster] = []


def exports_of(env: dict[str, str]) -> dict[str, str]:
    """exports_of parses `k8s.sh env` (export NAME=VALUE lines) into a mapping."""
    script = f"eval \"$({K8S_SH} env)\"; env -0"
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def start_node_cluster(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> NodeCluster:
    """start_node_cluster starts the cluster, loads the images and starts the broker; stopped at the session's end."""
    if _STARTED:
        return _STARTED[0]
    run_dir = tmp_path_factory.mktemp("node")
    env = {**os.environ, "PYGOKA_RUN": str(run_dir), "PYGOKA_K8S_NODE": "1",
           "PYGOKA_K8S_API_PORT": str(free_port()), "PYGOKA_ETCD_PORT": str(free_port()),
           "PYGOKA_ETCD_PEER_PORT": str(free_port())}

    def stop() -> None:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, capture_output=True, text=True, check=False)
        subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True, check=True)

    config.add_cleanup(stop)
    started = subprocess.run([str(K8S_SH), "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, f"k8s.sh start failed:\n{started.stderr}"
    env = exports_of(env)
    for tag in ("1", "2"):
        loaded = subprocess.run([str(IMAGES_SH), "load", *(("runtime", "operator") if tag == "1" else ()),
                                 "click-count"], env={**env, "CLICK_COUNT_TAG": tag}, capture_output=True, text=True)
        assert loaded.returncode == 0, f"images.sh load failed:\n{loaded.stderr}"
    kafka_port = free_port()
    env.update(PYTHON=sys.executable, PYGOKA_KAFKA_HOST=env["PYGOKA_K8S_HOST_IP"], PYGOKA_KAFKA_PORT=str(kafka_port),
               PYGOKA_KAFKA_CONTROLLER_PORT=str(free_port()))
    kafka = subprocess.run([str(KAFKA_SH), "start"], env=env, capture_output=True, text=True, timeout=300)
    assert kafka.returncode == 0, f"kafka.sh start failed:\n{kafka.stderr}"
    helm_home = run_dir / "helm"
    env.update(HELM_CACHE_HOME=str(helm_home / "cache"),
               HELM_CONFIG_HOME=str(helm_home / "config"), HELM_DATA_HOME=str(helm_home / "data"))
    bin_dir = Path(env["PATH"].split(":", 1)[0])
    host_ip = env["PYGOKA_K8S_HOST_IP"]
    cluster = NodeCluster(run_dir=run_dir, bin_dir=bin_dir, env=env, host_ip=host_ip,
                          brokers=f"{host_ip}:{kafka_port}", kafka_port=kafka_port)
    _STARTED.append(cluster)
    return cluster


def helm_install(cluster: NodeCluster, **values: str) -> None:
    """helm_install installs the chart's release as a user would, its operator pods running the operator image."""
    settings = [arg for key, value in {**RELEASE_VALUES, **values}.items() for arg in ("--set", f"{key}={value}")]
    # No `kafka` Service in the operator's namespace: it reaches a group's `kafka:9092` in the group's.
    cluster.call("helm", "install", RELEASE, str(CHART), "-n", OPERATOR_NS, "--create-namespace", *settings,
                 "--wait", "--timeout", "180s")
    for crd in CRDS:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    cluster.installed = True


@pytest.fixture(scope="session")
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> NodeCluster:
    """node is the session's cluster with a real node (no operator installed by it)."""
    return start_node_cluster(request.config, tmp_path_factory)


@pytest.fixture
def in_cluster(node: NodeCluster, request: pytest.FixtureRequest) -> Iterator[NodeCluster]:
    """in_cluster is the node with the chart's operator installed (helm install, once); test namespaces are
    deleted afterwards, their pods' logs printed when the test failed."""
    if not node.installed or node.get("deployment", RELEASE, "-n", OPERATOR_NS) is None:
        helm_install(node)
    yield node
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for namespace in node.namespaces:
            for pod in node.pods(namespace, "app.kubernetes.io/name=pygoka"):
                name = pod["metadata"]["name"]
                print(f"--- {namespace}/{name} ---\n{node.logs(namespace, name)[-4000:]}")
        for pod in node.pods(OPERATOR_NS, "app.kubernetes.io/name=pygoka-operator"):
            print(f"--- operator {pod['metadata']['name']} ---\n"
                  f"{node.logs(OPERATOR_NS, pod['metadata']['name'])[-4000:]}")
    node.delete_namespaces()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
