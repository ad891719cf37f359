"""The operator (issue 4) as a real process against a real kube-apiserver and the dev Kafka.

The chart is installed with a real `helm install`; the operator runs as `python -m pygoka_operator` with the
chart's ServiceAccount token (the API server authorizes with RBAC), so every object it creates proves the
chart's permissions suffice. There is no kubelet: pods are created but never run, so Ready stays False.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic
from conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
K8S_SH = ROOT / "scripts" / "k8s.sh"
RELEASE = "pygoka-operator"
OPERATOR_NS = "pygoka-system"
INTERVAL = 3

# Starting the control plane takes ~10 s with cached binaries (a cold build is much longer).
pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(1800)]


@dataclass
class Cluster:
    """Cluster is a running control plane started by scripts/k8s.sh."""

    run_dir: Path
    bin_dir: Path
    env: dict[str, str]

    def call(self, binary: str, *args: str, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / binary), *args]
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
        return result

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.call("kubectl", *args, stdin=stdin, check=check)

    def get(self, *args: str) -> Any:
        """get is `kubectl get ... -o json` parsed, or None when the object does not exist."""
        result = self.kubectl("get", *args, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(f"kubectl get {' '.join(args)} failed: {result.stderr}")
        return json.loads(result.stdout)

    def apply(self, namespace: str, manifest: dict[str, Any] | str, check: bool = True) -> \
            subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.kubectl("apply", "-n", namespace, "-f", "-", stdin=text, check=check)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """cluster is a control plane of our own on free ports, stopped at the end of the module."""
    run_dir = tmp_path_factory.mktemp("operator-k8s")
    env = dict(os.environ)
    env.update(PYGOKA_RUN=str(run_dir), PYGOKA_K8S_API_PORT=str(free_port()), PYGOKA_ETCD_PORT=str(free_port()),
               PYGOKA_ETCD_PEER_PORT=str(free_port()))
    started = subprocess.run([str(K8S_SH), "start"], env=env, capture_output=True, text=True)
    try:
        assert started.returncode == 0, f"k8s.sh start failed:\n{started.stderr}"
        exports = subprocess.run([str(K8S_SH), "env"], env=env, capture_output=True, text=True, check=True).stdout
        path_line = next(line for line in exports.splitlines() if line.startswith("export PATH="))
        bin_dir = Path(path_line.removeprefix("export PATH=").split(":", 1)[0])
        helm_home = run_dir / "helm"
        env.update(KUBECONFIG=str(run_dir / "k8s" / "kubeconfig"), HELM_CACHE_HOME=str(helm_home / "cache"),
                   HELM_CONFIG_HOME=str(helm_home / "config"), HELM_DATA_HOME=str(helm_home / "data"))
        yield Cluster(run_dir=run_dir, bin_dir=bin_dir, env=env)
    finally:
        stopped = subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True)
        assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="module")
def installed(cluster: Cluster, brokers: str) -> Cluster:
    """installed is the cluster with the chart installed by helm (CRDs, RBAC, ServiceAccount, Deployment)."""
    cluster.call("helm", "install", RELEASE, str(ROOT / "charts" / "pygoka-operator"), "-n", OPERATOR_NS,
                 "--create-namespace", "--set", f"kafka.bootstrapServers={brokers}",
                 "--set", f"reconcileIntervalSeconds={INTERVAL}")
    for crd in ("processorgroups.pygoka.io", "views.pygoka.io"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    return cluster


@dataclass
class Operator:
    """Operator is the running operator process and its log."""

    process: subprocess.Popen[bytes]
    log: Path
    health_port: int

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])


def service_account_kubeconfig(cluster: Cluster, path: Path, service_account: str, namespace: str) -> None:
    """service_account_kubeconfig writes a kubeconfig authenticating with a ServiceAccount's token."""
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=2h").stdout.strip()
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": admin["clusters"],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": "operator"}}],
    }))


@contextlib.contextmanager
def run_operator(cluster: Cluster, brokers: str, directory: Path, service_account: str, namespace: str,
                 watch: str = "") -> Iterator[Operator]:
    """run_operator runs `python -m pygoka_operator` authenticated as a chart's ServiceAccount."""
    kubeconfig = directory / "kubeconfig"
    service_account_kubeconfig(cluster, kubeconfig, service_account, namespace)
    log = directory / "operator.log"
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYGOKA_OPERATOR_BROKERS": brokers,
           "PYGOKA_OPERATOR_INTERVAL": str(INTERVAL), "PYGOKA_OPERATOR_HEALTH_PORT": str(port),
           "PYGOKA_OPERATOR_RUNTIME_IMAGE": "pygoka-runtime:test", "PYGOKA_OPERATOR_NAMESPACES": watch}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "pygoka_operator"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    running = Operator(process, log, port)
    try:
        wait_until(lambda: healthz(port) == 200 or process.poll() is not None, 60, interval=0.5,
                   message="operator /healthz")
        assert process.poll() is None, f"operator exited:\n{running.log_tail()}"
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"--- operator log tail ---\n{running.log_tail()}")


@pytest.fixture(scope="module")
def operator(installed: Cluster, brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """operator is the cluster-wide operator of the chart's default install, running until the module ends."""
    with run_operator(installed, brokers, tmp_path_factory.mktemp("operator"), RELEASE, OPERATOR_NS) as running:
        yield running


def healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except OSError:
        return None


@pytest.fixture
def namespace(installed: Cluster) -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="module")
def admin(brokers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": brokers})


def kafka_topic(admin: AdminClient, name: str) -> tuple[int, str] | None:
    """kafka_topic is (partitions, cleanup.policy) of a topic, or None when it does not exist."""
    metadata = admin.list_topics(timeout=10)
    if name not in metadata.topics or metadata.topics[name].error is not None:
        return None
    (future,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()
    return len(metadata.topics[name].partitions), future.result(timeout=10)["cleanup.policy"].value


def processor_group(name: str, **spec: Any) -> dict[str, Any]:
    body = {"image": "registry.example/clicks:1", "graph": "click_count:graph", "partitions": 4, **spec}
    return {"apiVersion": "pygoka.io/v1alpha1", "kind": "ProcessorGroup", "metadata": {"name": name}, "spec": body}


def condition(resource: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for item in ((resource or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == type_:
            return dict(item)
    return None


def wait_for(get: Callable[[], Any], check: Callable[[Any], bool], message: str, timeout: float = 60) -> Any:
    """wait_for polls get() until check(value) holds and returns that value."""
    found: list[Any] = []

    def done() -> bool:
        value = get()
        if value is not None and check(value):
            found.append(value)
            return True
        return False

    wait_until(done, timeout, interval=0.5, message=message)
    return found[0]


def test_namespaced_install_reconciles_only_its_namespace(installed: Cluster, brokers: str, tmp_path: Path,
                                                          names: Callable[[str], str]) -> None:
    """rbac.clusterWide=false: Roles only in watchNamespaces; the operator run with that ServiceAccount reconciles
    a ProcessorGroup there and may not touch StatefulSets elsewhere.

    It runs before the cluster-wide operator starts (first test using neither it nor `operator`), so the
    StatefulSet below can only come from the namespaced operator; its log names the handled object as well.
    """
    watched, other = names("watched"), names("other")
    for ns in (watched, other):
        installed.kubectl("create", "namespace", ns)
    release = names("scoped")
    installed.call("helm", "install", release, str(ROOT / "charts" / "pygoka-operator"), "-n", watched,
                   "--skip-crds", "--set", "rbac.clusterWide=false", "--set", f"watchNamespaces={{{watched}}}",
                   "--set", f"kafka.bootstrapServers={brokers}")
    account = f"{release}-pygoka-operator"
    sa = f"system:serviceaccount:{watched}:{account}"
    def can(*args: str) -> str:
        return installed.kubectl("auth", "can-i", *args, "--as", sa, check=False).stdout.strip()
    assert can("create", "statefulsets.apps", "-n", watched) == "yes"
    assert can("create", "statefulsets.apps", "-n", other) == "no"
    assert can("list", "processorgroups.pygoka.io", "-A") == "no"
    name = names("pg")
    with run_operator(installed, brokers, tmp_path, account, watched, watch=watched) as scoped:
        installed.apply(watched, processor_group(name, inputs=[names("in")]))
        sts = wait_for(lambda: installed.get("statefulset", name, "-n", watched), lambda s: True, "StatefulSet")
        assert sts["spec"]["replicas"] == 1
        wait_until(lambda: f"[{watched}/{name}]" in scoped.log.read_text(), 30, interval=0.5,
                   message="namespaced operator handled the group")
        assert "403" not in scoped.log.read_text()
    installed.kubectl("delete", "pg", name, "-n", watched, "--wait=false")


def test_operator_health_and_chart_rbac(installed: Cluster, operator: Operator) -> None:
    """The operator answers /healthz; the chart's ServiceAccount may create children but not delete them."""
    assert healthz(operator.health_port) == 200
    sa = f"system:serviceaccount:{OPERATOR_NS}:{RELEASE}"
    can = {verb_resource: installed.kubectl("auth", "can-i", *verb_resource.split(), "--as", sa, "-A",
                                            check=False).stdout.strip()
           for verb_resource in ("create statefulsets.apps", "patch processorgroups.pygoka.io/status",
                                 "get secrets", "delete statefulsets.apps", "list secrets", "delete pods")}
    assert can == {"create statefulsets.apps": "yes", "patch processorgroups.pygoka.io/status": "yes",
                   "get secrets": "yes", "delete statefulsets.apps": "no", "list secrets": "no",
                   "delete pods": "no"}
    deployment = installed.get("deployment", RELEASE, "-n", OPERATOR_NS)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == RELEASE


def test_processor_group_children_topics_and_status(installed: Cluster, operator: Operator, namespace: str,
                                                    admin: AdminClient, names: Callable[[str], str]) -> None:
    """A ProcessorGroup gets its topics (input + compacted table), headless Service, StatefulSet, PDB, status."""
    name, clicks = names("clicks"), names("user-clicks")
    installed.kubectl("create", "secret", "generic", "kafka", "-n", namespace, "--from-literal=client.id=pygoka-op")
    installed.apply(namespace, processor_group(name, inputs=[clicks], replicas=2,
                                               kafka={"secretRef": {"name": "kafka"}},
                                               storage={"size": "2Gi"}))
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace),
                  lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True"
                  and r["status"].get("observedGeneration") == 1, "TopicsReady=True")

    assert kafka_topic(admin, clicks) == (4, "delete")
    assert kafka_topic(admin, f"{name}-table") == (4, "compact")
    status = pg["status"]
    assert sorted(status["topics"], key=lambda t: t["name"]) == sorted([
        {"name": clicks, "partitions": 4, "cleanupPolicy": "delete"},
        {"name": f"{name}-table", "partitions": 4, "cleanupPolicy": "compact"}], key=lambda t: t["name"])
    assert status["partitions"] == 4
    assert status["selector"] == (f"app.kubernetes.io/component=processor,app.kubernetes.io/instance={name},"
                                  "app.kubernetes.io/name=pygoka")
    assert "pygoka.io/finalizer" in pg["metadata"]["finalizers"]

    sts = installed.get("statefulset", name, "-n", namespace)
    assert sts["metadata"]["ownerReferences"][0]["uid"] == pg["metadata"]["uid"]
    assert sts["metadata"]["labels"]["pygoka.io/group"] == name
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    pod_spec = sts["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["command"] == ["pygoka", "run", "click_count:graph"]
    assert pod_spec["volumes"][-1]["secret"]["secretName"] == "kafka"
    service = installed.get("service", name, "-n", namespace)
    assert service["spec"]["clusterIP"] == "None"
    pdb = installed.get("pdb", name, "-n", namespace)
    assert pdb["spec"]["maxUnavailable"] == 1

    # The StatefulSet controller (real kube-controller-manager) creates the pods and their claims.
    wait_for(lambda: installed.get("pvc", f"state-{name}-1", "-n", namespace), lambda c: True, "PVC of pod 1")
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace), lambda r: r["status"].get("replicas") == 2,
                  "status.replicas from the StatefulSet")
    assert (condition(pg, "Ready") or {}).get("status") == "False"  # no kubelet: pods never become ready
    assert (condition(pg, "Progressing") or {}).get("reason") == "RollingOut"
    assert (condition(pg, "Degraded") or {}).get("status") == "False"


def test_scale_subresource_and_statefulset_follows_the_group(installed: Cluster, operator: Operator,
                                                             namespace: str, names: Callable[[str], str]) -> None:
    """`kubectl scale pg` changes the StatefulSet; scaling the StatefulSet directly is reverted."""
    name = names("scaled")
    installed.apply(namespace, processor_group(name, inputs=[names("in")]))
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 1,
             "StatefulSet")
    installed.kubectl("scale", "-n", namespace, f"pg/{name}", "--replicas=3")
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 3,
             "StatefulSet scaled to 3")
    scale = json.loads(installed.kubectl("get", "--raw",
                                         f"/apis/pygoka.io/v1alpha1/namespaces/{namespace}/processorgroups/{name}/scale"
                                         ).stdout)
    assert scale["spec"]["replicas"] == 3
    installed.kubectl("scale", "-n", namespace, f"statefulset/{name}", "--replicas=1")
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: s["spec"]["replicas"] == 3,
             "direct StatefulSet scale reverted", timeout=INTERVAL * 10)
    rejected = installed.kubectl("scale", "-n", namespace, f"pg/{name}", "--replicas=5", check=False)
    assert rejected.returncode != 0 and "replicas must be <= partitions" in rejected.stderr


def test_cel_rules_reject_invalid_changes(installed: Cluster, namespace: str, names: Callable[[str], str]) -> None:
    """The schema rejects replicas > partitions, fewer partitions, a new group and a View with table and group."""
    name = names("cel")
    too_many = installed.apply(namespace, processor_group(name, replicas=5), check=False)
    assert too_many.returncode != 0 and "replicas must be <= partitions" in too_many.stderr
    installed.apply(namespace, processor_group(name, partitions=4))
    fewer = installed.apply(namespace, processor_group(name, partitions=2), check=False)
    assert fewer.returncode != 0 and "partitions cannot decrease" in fewer.stderr
    regroup = installed.apply(namespace, processor_group(name, group="other"), check=False)
    assert regroup.returncode != 0 and "group is immutable" in regroup.stderr
    assert installed.get("pg", name, "-n", namespace)["spec"]["group"] == ""
    both = {"apiVersion": "pygoka.io/v1alpha1", "kind": "View", "metadata": {"name": name},
            "spec": {"table": "t", "group": "g"}}
    rejected = installed.apply(namespace, both, check=False)
    assert rejected.returncode != 0 and "exactly one of table or group" in rejected.stderr


def test_copartitioning_break_blocks_the_statefulset(installed: Cluster, operator: Operator, namespace: str,
                                                     admin: AdminClient, names: Callable[[str], str]) -> None:
    """An existing input with 2 partitions for a 4-partition group: TopicsReady=False naming it; no pods."""
    name, narrow = names("broken"), names("narrow")
    admin.create_topics([NewTopic(narrow, num_partitions=2, replication_factor=1)])[narrow].result(timeout=30)
    installed.apply(namespace, processor_group(name, inputs=[narrow]))
    pg = wait_for(lambda: installed.get("pg", name, "-n", namespace),
                  lambda r: (condition(r, "TopicsReady") or {}).get("status") == "False", "TopicsReady=False")
    topics_ready = condition(pg, "TopicsReady") or {}
    assert topics_ready["reason"] == "PartitionCountMismatch"
    assert f"topic '{narrow}' has 2 partitions, expected 4" in topics_ready["message"]
    assert (condition(pg, "Degraded") or {}).get("status") == "True"
    assert installed.get("statefulset", name, "-n", namespace) is None
    events = installed.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "ReconcileBlocked" in events


def test_spec_change_rolls_the_statefulset(installed: Cluster, operator: Operator, namespace: str,
                                           names: Callable[[str], str]) -> None:
    """A new image, env and podTemplate reach the StatefulSet's pod template."""
    name = names("roll")
    installed.apply(namespace, processor_group(name))
    wait_for(lambda: installed.get("statefulset", name, "-n", namespace), lambda s: True, "StatefulSet")
    installed.apply(namespace, processor_group(name, image="registry.example/clicks:2",
                                               env=[{"name": "EXTRA", "value": "1"}],
                                               podTemplate={"spec": {"nodeSelector": {"disk": "ssd"}}}))
    sts = wait_for(lambda: installed.get("statefulset", name, "-n", namespace),
                   lambda s: s["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/clicks:2",
                   "rolled StatefulSet")
    pod_spec = sts["spec"]["template"]["spec"]
    assert {"name": "EXTRA", "value": "1"} in pod_spec["containers"][0]["env"]
    assert pod_spec["nodeSelector"] == {"disk": "ssd"}


def test_view_children(installed: Cluster, operator: Operator, namespace: str, names: Callable[[str], str]) -> None:
    """A View gets a StatefulSet running the built-in query server and its query Service."""
    name = names("counts")
    view = textwrap.dedent(f"""
        apiVersion: pygoka.io/v1alpha1
        kind: View
        metadata: {{name: {name}}}
        spec: {{group: click-count, codec: int64, servicePort: 9000}}
    """)
    installed.apply(namespace, view)
    sts = wait_for(lambda: installed.get("statefulset", f"{name}-view", "-n", namespace), lambda s: True,
                   "view StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["pygoka", "run", "--view", "click-count-table", "--codec", "int64"]
    assert container["image"] == "pygoka-runtime:test"
    service = installed.get("service", f"{name}-view", "-n", namespace)
    assert service["spec"]["ports"][0]["port"] == 9000
    assert installed.get("service", f"{name}-view-headless", "-n", namespace)["spec"]["clusterIP"] == "None"
    view_status = wait_for(lambda: installed.get("view", name, "-n", namespace),
                           lambda r: (r.get("status") or {}).get("table") == "click-count-table", "view status")
    assert condition(view_status, "Ready") is not None


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_deletion_honours_topic_deletion_policy(installed: Cluster, operator: Operator, namespace: str,
                                                admin: AdminClient, names: Callable[[str], str], policy: str) -> None:
    """Deleting a ProcessorGroup removes its table and loop topics only under Delete; inputs always stay."""
    name, source = names("gone"), names("source")
    installed.apply(namespace, processor_group(name, inputs=[source], loop=True, topicDeletionPolicy=policy))
    wait_for(lambda: installed.get("pg", name, "-n", namespace),
             lambda r: (condition(r, "TopicsReady") or {}).get("status") == "True", "TopicsReady")
    assert kafka_topic(admin, f"{name}-loop") == (4, "delete")
    installed.kubectl("delete", "pg", name, "-n", namespace, "--wait=true", "--timeout=60s")
    assert installed.get("pg", name, "-n", namespace) is None
    if policy == "Delete":
        wait_until(lambda: kafka_topic(admin, f"{name}-table") is None and kafka_topic(admin, f"{name}-loop") is None,
                   30, interval=0.5, message="owned topics deleted")
    else:
        assert kafka_topic(admin, f"{name}-table") == (4, "compact")
        assert kafka_topic(admin, f"{name}-loop") == (4, "delete")
    assert kafka_topic(admin, source) == (4, "delete")
    # The garbage collector removes the children through their owner references.
    wait_until(lambda: installed.get("statefulset", name, "-n", namespace) is None, 60, interval=0.5,
               message="StatefulSet garbage-collected")
