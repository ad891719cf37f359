"""The local Kubernetes control plane of scripts/k8s.sh works for the operator's tests.

It starts etcd, kube-apiserver and kube-controller-manager (no kubelet) on free ports, then checks
what the operator relies on: StatefulSets with volume claim templates get pod-0 and its PVC from the
controller manager, CRDs enforce CEL validation rules and serve the scale subresource, and helm
installs a chart into the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
K8S_SH = ROOT / "scripts" / "k8s.sh"

# A cold install builds the binaries from source (tens of minutes on 2 cores); later runs reuse the
# cache and start in seconds. The session fixture's time counts against the first test.
pytestmark = pytest.mark.timeout(3600)

SERVICE_AND_STATEFULSET = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: OrderedReady
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.invalid/web:1
          volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Mi}}
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.pygoka.io
spec:
  group: test.pygoka.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
        scale:
          specReplicasPath: .spec.replicas
          statusReplicasPath: .status.replicas
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                replicas: {type: integer}
                maxReplicas: {type: integer}
              x-kubernetes-validations:
                - rule: "self.replicas <= self.maxReplicas"
                  message: "replicas must not exceed maxReplicas"
            status:
              type: object
              properties:
                replicas: {type: integer}
"""


@dataclass
class Cluster:
    """Cluster is a running control plane: its kubeconfig and the directory of its binaries."""

    kubeconfig: Path
    bin_dir: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """run calls kubectl with args against the cluster."""
        return self.call("kubectl", *args, stdin=stdin, check=check)

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        """helm calls the helm built with the control plane against the cluster."""
        return self.call("helm", *args)

    def call(self, binary: str, *args: str, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """call runs one of the cached binaries, failing the test on a non-zero exit if check."""
        argv = [str(self.bin_dir / binary), *args]
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
        return result

    def get(self, *args: str) -> Any:
        """get returns `kubectl get ... -o json` parsed, or None if the object does not exist."""
        result = self.run("get", *args, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(f"kubectl get {' '.join(args)} failed: {result.stderr}")
        return json.loads(result.stdout)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """cluster starts the control plane via scripts/k8s.sh on free ports and stops it afterwards."""
    run_dir = tmp_path_factory.mktemp("k8s-run")
    env = dict(os.environ)
    env.update(
        PYGOKA_RUN=str(run_dir),
        PYGOKA_K8S_NODE="0",
        PYGOKA_K8S_API_PORT=str(free_port()),
        PYGOKA_ETCD_PORT=str(free_port()),
        PYGOKA_ETCD_PEER_PORT=str(free_port()),
    )
    started = subprocess.run([str(K8S_SH), "start"], env=env, capture_output=True, text=True)
    try:
        assert started.returncode == 0, f"k8s.sh start failed:\n{started.stderr}"
        exports = subprocess.run([str(K8S_SH), "env"], env=env, capture_output=True, text=True, check=True)
        kubeconfig = run_dir / "k8s" / "kubeconfig"
        assert f"export KUBECONFIG={kubeconfig}" in exports.stdout
        bin_dir = Path(next(line for line in exports.stdout.splitlines() if line.startswith("export PATH="))
                       .removeprefix("export PATH=").split(":", 1)[0])
        helm_home = run_dir / "helm"
        env.update(KUBECONFIG=str(kubeconfig), HELM_CACHE_HOME=str(helm_home / "cache"),
                   HELM_CONFIG_HOME=str(helm_home / "config"), HELM_DATA_HOME=str(helm_home / "data"))
        yield Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=env)
    finally:
        stopped = subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True)
        assert stopped.returncode == 0, stopped.stderr


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    """namespace is a fresh namespace whose default service account exists (pods need it)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.run("create", "namespace", name)
    wait_until(lambda: cluster.get("serviceaccount", "default", "-n", name), 60,
               message=f"service account default in {name}")
    return name


def test_api_server_reports_built_version(cluster: Cluster) -> None:
    """The API server is ready and reports the version its binary was built for (not v0.0.0)."""
    assert cluster.run("get", "--raw", "/readyz").stdout.strip() == "ok"
    version = json.loads(cluster.run("version", "-o", "json").stdout)
    server, client = version["serverVersion"]["gitVersion"], version["clientVersion"]["gitVersion"]
    assert server == client
    assert server.startswith("v1.") and not server.startswith("v1.0.")


def test_statefulset_gets_pod0_and_its_claim(cluster: Cluster, namespace: str) -> None:
    """The StatefulSet controller creates pod web-0 and PVC data-web-0; without a kubelet web-0 never
    becomes ready, so OrderedReady stops there."""
    cluster.run("apply", "-n", namespace, "-f", "-", stdin=SERVICE_AND_STATEFULSET)

    service = cluster.get("service", "web", "-n", namespace)
    assert service["spec"]["clusterIP"] == "None"
    pod = wait_until(lambda: cluster.get("pod", "web-0", "-n", namespace), 60, message="pod web-0")
    claim = wait_until(lambda: cluster.get("pvc", "data-web-0", "-n", namespace), 60, message="PVC data-web-0")

    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert pod["spec"]["serviceAccountName"] == "default"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "data-web-0"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Mi"
    statefulset = wait_until(
        lambda: (s := cluster.get("statefulset", "web", "-n", namespace)) and s.get("status", {}).get("replicas")
        and s, 60, message="statefulset status")
    assert statefulset["status"]["replicas"] == 1
    assert cluster.get("pod", "web-1", "-n", namespace) is None


def test_crd_enforces_cel_rule_and_serves_scale(cluster: Cluster, namespace: str) -> None:
    """A CRD's x-kubernetes-validations rule rejects a violating object; its scale subresource works."""
    cluster.run("apply", "-f", "-", stdin=CRD)
    cluster.run("wait", "--for=condition=Established", "crd/widgets.test.pygoka.io", "--timeout=60s")

    def widget(name: str, replicas: int) -> str:
        return textwrap.dedent(f"""
            apiVersion: test.pygoka.io/v1
            kind: Widget
            metadata: {{name: {name}}}
            spec: {{replicas: {replicas}, maxReplicas: 3}}
        """)

    cluster.run("apply", "-n", namespace, "-f", "-", stdin=widget("ok", 2))
    rejected = cluster.run("apply", "-n", namespace, "-f", "-", stdin=widget("too-big", 4), check=False)
    assert rejected.returncode != 0
    assert "replicas must not exceed maxReplicas" in rejected.stderr
    assert cluster.get("widget", "too-big", "-n", namespace) is None

    cluster.run("scale", "-n", namespace, "widget/ok", "--replicas=3")
    assert cluster.get("widget", "ok", "-n", namespace)["spec"]["replicas"] == 3
    # The rule applies through the scale subresource too.
    too_many = cluster.run("scale", "-n", namespace, "widget/ok", "--replicas=5", check=False)
    assert too_many.returncode != 0
    assert cluster.get("widget", "ok", "-n", namespace)["spec"]["replicas"] == 3


def test_helm_installs_a_chart(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """helm (built alongside the control plane) installs a chart whose objects land in the cluster."""
    chart = tmp_path / "hello"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hi\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n")

    cluster.helm("install", "rel", str(chart), "-n", namespace, "--set", "greeting=hello", "--wait")

    config_map = cluster.get("configmap", "rel-cm", "-n", namespace)
    assert config_map["data"] == {"greeting": "hello"}
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("rel", "deployed")]
