"""The real node of scripts/k8s.sh: pods run in containers with cluster DNS, dynamically provisioned volumes and
kubectl logs/exec/port-forward; pod traffic stays on this machine; stop leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import free_port, wait_until
from node_cluster import K8S_SH, NodeCluster, exports_of

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900)]

PROBE = textwrap.dedent("""
    import http.server, os, socket
    with open("/data/hello", "w") as f:
        f.write("written by uid %d" % os.getuid())
    print("kafka resolves to", socket.gethostbyname("kafka"), flush=True)
    socket.create_connection(("kafka", 9092), timeout=10).close()
    print("kafka:9092 connected", flush=True)
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=3).close()
        print("outside reachable", flush=True)
    except OSError as exc:
        print("outside unreachable:", exc, flush=True)
    http.server.HTTPServer(("", 8000), http.server.SimpleHTTPRequestHandler).serve_forever()
""")


def probe_pod(namespace: str, image: str) -> list[dict[str, object]]:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": namespace},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace},
           "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "probe", "image": image, "command": ["python", "-c", PROBE],
                                    "workingDir": "/data",
                                    "securityContext": {"readOnlyRootFilesystem": True,
                                                        "allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}},
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}
    return [claim, pod]


def test_a_pod_runs_with_dns_a_volume_and_kubectl_access(node: NodeCluster) -> None:
    namespace = node.namespace("probe")
    image = "ghcr.io/pygoka/pygoka-runtime:0.1.0"
    node.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(probe_pod(namespace, image)))
    node.kubectl("wait", "--for=condition=Ready", "pod/probe", "-n", namespace, "--timeout=180s")
    wait_until(lambda: "outside" in node.logs(namespace, "probe"), 60, interval=1, message="probe output")
    logs = node.logs(namespace, "probe")
    assert "kafka:9092 connected" in logs
    assert "outside unreachable" in logs, logs
    claim = node.get("pvc", "data", "-n", namespace)
    assert claim["status"]["phase"] == "Bound"
    assert node.get("pv", claim["spec"]["volumeName"])["spec"]["storageClassName"] == "local-path"
    assert node.kubectl("exec", "-n", namespace, "probe", "--", "cat", "/data/hello").stdout == "written by uid 10001"
    port = free_port()
    with subprocess.Popen([str(node.bin_dir / "kubectl"), "port-forward", "-n", namespace, "pod/probe",
                           f"{port}:8000"], env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as forward:
        try:
            def fetched() -> bytes | None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=3) as response:
                        return bytes(response.read())
                except OSError:
                    return None

            wait_until(fetched, 30, interval=0.5, message="port-forwarded GET")
            assert fetched() == b"written by uid 10001"
        finally:
            forward.terminate()


@dataclass(frozen=True)
class Traces:
    """Traces are what one cluster (its run dir, its node index) has on this machine; empty once it is gone."""

    processes: list[str]
    shims: list[str]
    mounts: list[str]
    links: list[str]
    netns: list[str]
    routes: list[str]

    @classmethod
    def of(cls, run_dir: Path, index: str) -> Traces:
        """of reads the traces of the cluster in run_dir with node index (its shims name the node's socket)."""
        processes, shims = [], []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if str(run_dir) in cmdline:
                    processes.append(proc.name)
                elif f"/pygoka-nodes/{index}.d/containerd.sock" in cmdline and "shim" in (proc_exe(proc) or ""):
                    shims.append(proc.name)
        mounts = [target for target in mount_points()
                  if f"/pygoka-nodes/{index}.d/" in target or target.startswith(f"{run_dir}/")]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
        networks = (f"10.89.{index}.", f"10.{200 + int(index)}.")
        return cls(processes, shims, mounts,
                   [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()
                    if line.split(":")[1].strip().startswith(f"pygoka-h{index}@")],
                   [name for name in netns_names() if name == f"pygoka-node-{index}"],
                   [line for line in routes.splitlines() if any(network in line for network in networks)])

    @property
    def empty(self) -> bool:
        return not (self.processes or self.shims or self.mounts or self.links or self.netns or self.routes)


def mount_points() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def netns_names() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def pod_netns(exports: dict[str, str], crictl: Path) -> set[str]:
    """pod_netns are the names of the network namespaces of the pods of a cluster's node (crictl inspectp)."""
    ids = subprocess.run([str(crictl), "pods", "-q"], env=exports, capture_output=True, text=True, check=True)
    names = set()
    for pod in ids.stdout.split():
        info = json.loads(subprocess.run([str(crictl), "inspectp", pod], env=exports, capture_output=True, text=True,
                                         check=True).stdout)
        for namespace in info["info"]["runtimeSpec"]["linux"]["namespaces"]:
            if namespace["type"] == "network" and namespace.get("path"):
                names.add(Path(namespace["path"]).name)
    return names


def host_rules() -> set[str]:
    """host_rules are this machine's iptables rules outside every node's namespace (no cluster should add one)."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return {line for line in rules.splitlines() if line.startswith("-A ")}


def proc_exe(proc: Path) -> str | None:
    try:
        return os.readlink(proc / "exe")
    except OSError:
        return None


def node_index(run_dir: Path) -> str:
    return (run_dir / "k8s" / "node-index").read_text().strip()


def cluster_env(run_dir: Path) -> dict[str, str]:
    """cluster_env is the environment of k8s.sh for a cluster of its own in run_dir, on free ports."""
    return {**os.environ, "PYGOKA_RUN": str(run_dir), "PYGOKA_K8S_API_PORT": str(free_port()),
            "PYGOKA_ETCD_PORT": str(free_port()), "PYGOKA_ETCD_PEER_PORT": str(free_port())}


def start_with_idle_pod(env: dict[str, str], kubectl: str) -> dict[str, str]:
    """start_with_idle_pod starts the cluster of env and runs a pod on it; it returns the cluster's exports."""
    result = subprocess.run([str(K8S_SH), "start"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    exports = exports_of(env)
    idle = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle", "namespace": "default"},
            "spec": {"containers": [{"name": "idle", "image": "localhost/pygoka-python:3.11-bookworm",
                                     "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}
    subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(idle), env=exports, check=True,
                   capture_output=True, text=True)
    subprocess.run([kubectl, "wait", "--for=condition=Ready", "pod/idle", "--timeout=120s"], env=exports,
                   check=True, capture_output=True, text=True)
    return exports


def test_a_second_cluster_runs_beside_and_stop_leaves_nothing_behind(node: NodeCluster, tmp_path: Path) -> None:
    run_dir = tmp_path / "second"
    env = cluster_env(run_dir)
    rules = host_rules()
    started = time.monotonic()
    try:
        second = start_with_idle_pod(env, str(node.bin_dir / "kubectl"))
        print(f"second cluster to a Ready node with a pod: {time.monotonic() - started:.1f} s")
        assert second["PYGOKA_K8S_HOST_IP"] != node.host_ip
        index = node_index(run_dir)
        running, pods_netns = Traces.of(run_dir, index), pod_netns(second, node.bin_dir / "crictl")
        assert all([running.processes, running.shims, running.mounts, running.links, running.netns, running.routes,
                    pods_netns]), running
    finally:
        stopped = time.monotonic()
        result = subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True)
        print(f"stop: {time.monotonic() - stopped:.1f} s")
    assert result.returncode == 0, result.stderr
    assert Traces.of(run_dir, index).empty, Traces.of(run_dir, index)
    assert pods_netns & set(netns_names()) == set()
    assert host_rules() == rules
    # The shared cluster was never touched.
    conditions = node.get("node", "pygoka-node")["status"]["conditions"]
    assert [c["status"] for c in conditions if c["type"] == "Ready"] == ["True"]


def test_a_cluster_abandoned_without_stop_is_reclaimed_by_the_next_start(node: NodeCluster, tmp_path: Path) -> None:
    abandoned, successor = tmp_path / "abandoned", tmp_path / "successor"
    kubectl, crictl = str(node.bin_dir / "kubectl"), node.bin_dir / "crictl"
    abandoned_env, successor_env = cluster_env(abandoned), cluster_env(successor)
    index = ""
    try:
        exports = start_with_idle_pod(abandoned_env, kubectl)
        index = node_index(abandoned)
        running, pods_netns = Traces.of(abandoned, index), pod_netns(exports, crictl)
        # Its pods' volumes, root filesystems and shm mounts, named by pod uid or container id (the successor's,
        # on the same index, cannot have the same).
        pod_mounts = {mount for mount in running.mounts if "/pods/" in mount or "/io.containerd." in mount}
        assert running.processes and running.shims and pod_mounts and pods_netns, running
        # What a deleted run dir (pytest rotates its temp dirs) or a killed test leaves: no record of the claim,
        # the processes, pods and mounts still there.
        (abandoned / "k8s" / "node-index").unlink()
        start_with_idle_pod(successor_env, kubectl)
        assert node_index(successor) == index
        assert Traces.of(abandoned, index).processes == []
        assert set(running.shims) & set(Traces.of(successor, index).shims) == set()
        assert pod_mounts & set(mount_points()) == set()
        assert pods_netns & set(netns_names()) == set()
    finally:
        for env in (successor_env, abandoned_env):
            subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True, check=True)
    assert Traces.of(abandoned, index).empty and Traces.of(successor, index).empty
