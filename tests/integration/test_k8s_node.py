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


def machine_state(run_dir: Path) -> dict[str, object]:
    """machine_state is what a cluster could leave behind: processes, mounts, interfaces, namespaces, rules."""
    processes = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(run_dir) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    processes.append(proc.name)
            except OSError:
                continue
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if "/pygoka-nodes/" in line.split()[4] or str(run_dir) in line.split()[4]]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {"processes": processes, "mounts": mounts,
            "links": sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()),
            "netns": sorted(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()),
            "routes": subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout,
            "iptables": subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
            .count("\n-A "),
            "shims": sorted(proc.name for proc in Path("/proc").iterdir() if proc.name.isdigit()
                            and "containerd-shim" in (proc_exe(proc) or ""))}


def proc_exe(proc: Path) -> str | None:
    try:
        return os.readlink(proc / "exe")
    except OSError:
        return None


def test_a_second_cluster_runs_beside_and_stop_leaves_nothing_behind(node: NodeCluster, tmp_path: Path) -> None:
    run_dir = tmp_path / "second"
    env = {**os.environ, "PYGOKA_RUN": str(run_dir), "PYGOKA_K8S_API_PORT": str(free_port()),
           "PYGOKA_ETCD_PORT": str(free_port()), "PYGOKA_ETCD_PEER_PORT": str(free_port())}
    before = machine_state(run_dir)
    started = time.monotonic()
    result = subprocess.run([str(K8S_SH), "start"], env=env, capture_output=True, text=True)
    try:
        assert result.returncode == 0, result.stderr
        print(f"second cluster to a Ready node: {time.monotonic() - started:.1f} s")
        second = exports_of(env)
        assert second["PYGOKA_K8S_HOST_IP"] != node.host_ip
        kubectl = [str(node.bin_dir / "kubectl")]
        pause = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle", "namespace": "default"},
                 "spec": {"containers": [{"name": "idle", "image": "localhost/pygoka-python:3.11-bookworm",
                                          "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}
        subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pause), env=second, check=True,
                       capture_output=True, text=True)
        subprocess.run([*kubectl, "wait", "--for=condition=Ready", "pod/idle", "--timeout=120s"], env=second,
                       check=True, capture_output=True, text=True)
        assert machine_state(run_dir)["processes"]
    finally:
        stopped = time.monotonic()
        result = subprocess.run([str(K8S_SH), "stop"], env=env, capture_output=True, text=True)
        print(f"stop: {time.monotonic() - stopped:.1f} s")
    assert result.returncode == 0, result.stderr
    assert machine_state(run_dir) == before
    # The shared cluster was never touched.
    conditions = node.get("node", "pygoka-node")["status"]["conditions"]
    assert [c["status"] for c in conditions if c["type"] == "Ready"] == ["True"]
