"""One local Kubernetes control plane (scripts/k8s.sh) with the chart installed, shared by the operator tests.

Several test modules use the operator; starting a control plane costs seconds to minutes, so the first module
to ask starts it and the session's end stops it (pytest's config cleanup), whichever modules ran. The
helpers run the operator as a real process (`python -m pygoka_operator`) with a ServiceAccount's token.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
K8S_SH = ROOT / "scripts" / "k8s.sh"
CHART = ROOT / "charts" / "pygoka-operator"
RELEASE = "pygoka-operator"
OPERATOR_NS = "pygoka-system"
INTERVAL = 3
CRDS = ("processorgroups.pygoka.io", "views.pygoka.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")


@dataclass
class Cluster:
    """Cluster is a running control plane started by scripts/k8s.sh."""

    run_dir: Path
    bin_dir: Path
    env: dict[str, str]
    installed: bool = False

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


_STARTED: list[Cluster] = []


def shared_cluster(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """shared_cluster is the session's control plane on free ports, started on first use, stopped at exit."""
    if _STARTED:
        return _STARTED[0]
    run_dir = tmp_path_factory.mktemp("operator-k8s")
    env = dict(os.environ)
    env.update(PYGOKA_RUN=str(run_dir), PYGOKA_K8S_NODE="0", PYGOKA_K8S_API_PORT=str(free_port()),
               PYGOKA_ETCD_PORT=str(free_port()), PYGOKA_ETCD_PEER_PORT=str(free_port()))

    def stop() -> None:
        subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True, check=True)

    # Registered before starting: a half-started control plane is stopped too.
    config.add_cleanup(stop)
    started = subprocess.run([str(K8S_SH), "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, f"k8s.sh start failed:\n{started.stderr}"
    exports = subprocess.run([str(K8S_SH), "env"], env=env, capture_output=True, text=True, check=True).stdout
    path_line = next(line for line in exports.splitlines() if line.startswith("export PATH="))
    bin_dir = Path(path_line.removeprefix("export PATH=").split(":", 1)[0])
    helm_home = run_dir / "helm"
    env.update(KUBECONFIG=str(run_dir / "k8s" / "kubeconfig"), HELM_CACHE_HOME=str(helm_home / "cache"),
               HELM_CONFIG_HOME=str(helm_home / "config"), HELM_DATA_HOME=str(helm_home / "data"))
    _STARTED.append(Cluster(run_dir=run_dir, bin_dir=bin_dir, env=env))
    return _STARTED[0]


def install_chart(cluster: Cluster, brokers: str) -> Cluster:
    """install_chart helm-installs the chart's default release once (CRDs, RBAC, ServiceAccount, Deployment)."""
    if not cluster.installed:
        cluster.call("helm", "install", RELEASE, str(CHART), "-n", OPERATOR_NS, "--create-namespace",
                     "--set", f"kafka.bootstrapServers={brokers}", "--set", f"reconcileIntervalSeconds={INTERVAL}")
        for crd in CRDS:
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        cluster.installed = True
    return cluster


@dataclass
class Operator:
    """Operator is the running operator process and its log."""

    process: subprocess.Popen[bytes]
    log: Path
    health_port: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-60:])


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


def healthz(port: int) -> int | None:
    """healthz is the HTTP status of the operator's /healthz, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except OSError:
        return None


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, brokers: str) -> Cluster:
    """installed is the session's shared control plane with the chart (and kopf's peering CRDs) installed."""
    return install_chart(shared_cluster(request.config, tmp_path_factory), brokers)


@pytest.fixture(scope="module")
def operator(installed: Cluster, brokers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """operator is the cluster-wide operator of the chart's default install, run with the chart's
    ServiceAccount until the module ends."""
    with run_operator(installed, brokers, tmp_path_factory.mktemp("operator"), RELEASE, OPERATOR_NS) as running:
        yield running


@contextlib.contextmanager
def run_operator(cluster: Cluster, brokers: str, directory: Path, service_account: str, namespace: str,
                 watch: str = "", extra_env: dict[str, str] | None = None) -> Iterator[Operator]:
    """run_operator runs `python -m pygoka_operator` authenticated as a chart's ServiceAccount."""
    directory.mkdir(parents=True, exist_ok=True)
    kubeconfig = directory / "kubeconfig"
    service_account_kubeconfig(cluster, kubeconfig, service_account, namespace)
    log = directory / "operator.log"
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYGOKA_OPERATOR_BROKERS": brokers,
           "PYGOKA_OPERATOR_INTERVAL": str(INTERVAL), "PYGOKA_OPERATOR_HEALTH_PORT": str(port),
           "PYGOKA_OPERATOR_RUNTIME_IMAGE": "pygoka-runtime:test", "PYGOKA_OPERATOR_NAMESPACES": watch,
           **(extra_env or {})}
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
        stop_process(process)
        print(f"--- operator log tail ({directory.name}) ---\n{running.log_tail()}")


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
