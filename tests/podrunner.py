"""A test-only stand-in for a node: binds pods to a fake Node and runs their containers as local processes.

The real kube-controller-manager creates the pods of the operator's StatefulSets; with no kube-scheduler and
no kubelet they would stay Pending forever. PodRunner polls one namespace and, for each pod:

- binds it to its Node (``pods/binding``, what kube-scheduler does);
- runs its first container's ``command + args`` as a local process with the container's env (``value`` and
  ``fieldRef`` of metadata.name/namespace, status.podIP), ``pygoka`` replaced by the project's venv python
  (``python -m pygoka.cli``) instead of the image;
- maps each volume to a local directory: a persistentVolumeClaim to ``<root>/pvc/<claim>`` (survives the pod,
  like the volume), an emptyDir to a per-pod directory, a Secret to files; env values under a mount path point
  into that directory;
- gives each pod its own local ports: one for PYGOKA_HTTP_PORT (container port ``http``) and, when the container
  declares a ``query`` port or sets PYGOKA_QUERY_PORT, one for the query API (PYGOKA_QUERY_PORT); reports status:
  Running, podIP 127.0.0.1, Ready from the readiness probe's HTTP GET on its (named) port, restarts
  (restartPolicy Always) with a count;
- on deletion sends SIGTERM, waits for the process (SIGKILL after the grace period), then removes the pod.

What a real kubelet does and this does not: pull or run images, containers or any isolation (processes share
this host's network, filesystem and user), resource limits and cgroups, probes other than HTTP readiness
(liveness, startup, exec/TCP), init and sidecar containers (only the first container runs), volume types
beyond PVC/emptyDir/Secret and any real provisioning (PVCs stay Pending; no volume binding or attach), mount
read-only-ness, ``secretKeyRef``/``configMapKeyRef`` env, pod networking and Services (clients reach a pod
through ``port_of``), node status heartbeats and leases, eviction, image/back-off policies, and logs through the
API (each process writes ``<root>/logs/<pod>.log``).
"""

from __future__ import annotations

import base64
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import config, dynamic
from kubernetes.dynamic.exceptions import NotFoundError

NODE = "pygoka-test-node"
#: PORT_ENV is the env var that sets where `pygoka run` listens for each named container port.
PORT_ENV = {"http": "PYGOKA_HTTP_PORT", "query": "PYGOKA_QUERY_PORT"}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPod:
    """LocalPod is the process running one pod (by uid) and what its status reports."""

    name: str
    uid: str
    #: ports maps the container port names the process listens on (http, query) to their local ports.
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    readiness_path: str | None
    readiness_port: str
    grace: float
    restarts: int = 0
    started: str = field(default_factory=now)
    terminating_since: float | None = None
    reported: tuple[Any, ...] = ()


class PodRunner:
    """PodRunner runs the pods of one namespace (see the module docstring) until stop()."""

    def __init__(self, kubeconfig: Path, namespace: str, root: Path, workdir: Path,
                 python: str = sys.executable) -> None:
        self.namespace, self.root, self.workdir, self.python = namespace, root, workdir, python
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
        self.pods_api = self.dyn.resources.get(api_version="v1", kind="Pod")
        self.pods: dict[str, LocalPod] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="podrunner", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> PodRunner:
        nodes = self.dyn.resources.get(api_version="v1", kind="Node")
        try:
            nodes.get(name=NODE)
        except NotFoundError:
            nodes.create(body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
        self._thread.start()
        return self

    def stop(self) -> None:
        """stop ends the loop and every process (SIGTERM, then SIGKILL); the pods stay in the API."""
        self._stop.set()
        self._thread.join(30)
        with self._lock:
            for pod in self.pods.values():
                self._terminate(pod, wait=True)

    def port_of(self, pod_name: str, port_name: str = "http") -> int:
        """port_of is the local port of a running pod's named container port (http: PYGOKA_HTTP_PORT)."""
        with self._lock:
            for pod in self.pods.values():
                if pod.name == pod_name and pod.process.poll() is None:
                    if port_name not in pod.ports:
                        raise LookupError(f"pod {pod_name} has no port {port_name} (has {sorted(pod.ports)})")
                    return pod.ports[port_name]
        raise LookupError(f"pod {pod_name} is not running")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - kept for the test to assert on; the loop goes on
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(0.5)

    def _step(self) -> None:
        listed = self.pods_api.get(namespace=self.namespace).to_dict()["items"]
        seen: set[str] = set()
        for pod in listed:
            meta, spec = pod["metadata"], pod["spec"]
            uid = meta["uid"]
            seen.add(uid)
            if meta.get("deletionTimestamp"):
                self._delete(pod)
                continue
            if not spec.get("nodeName"):
                self._bind(meta["name"])
                continue
            if spec["nodeName"] != NODE:
                continue
            with self._lock:
                local = self.pods.get(uid)
                if local is None:
                    local = self.pods[uid] = self._run(pod)
                elif local.process.poll() is not None:
                    self._restart(local)
            self._report(local)
        with self._lock:
            for uid in [uid for uid in self.pods if uid not in seen]:
                self._terminate(self.pods.pop(uid), wait=True)

    def _bind(self, name: str) -> None:
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}}
        self.pods_api.subresources["binding"].create(body=binding, name=name, namespace=self.namespace)

    def _volumes(self, pod: dict[str, Any], run_dir: Path) -> dict[str, Path]:
        """_volumes maps each volume name to its local directory, creating it (and a Secret's files)."""
        paths: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            name = volume["name"]
            if volume.get("persistentVolumeClaim"):
                path = self.root / "pvc" / volume["persistentVolumeClaim"]["claimName"]
            else:
                path = run_dir / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            if volume.get("secret"):
                secret = self.dyn.resources.get(api_version="v1", kind="Secret").get(
                    name=volume["secret"]["secretName"], namespace=self.namespace).to_dict()
                for key, value in (secret.get("data") or {}).items():
                    (path / key).write_bytes(base64.b64decode(value))
            paths[name] = path
        return paths

    def _run(self, pod: dict[str, Any]) -> LocalPod:
        meta, container = pod["metadata"], pod["spec"]["containers"][0]
        run_dir = self.root / "pods" / meta["uid"]
        volumes = self._volumes(pod, run_dir)
        mounts = sorted(((m["mountPath"], volumes[m["name"]]) for m in container.get("volumeMounts") or []
                         if m["name"] in volumes), key=lambda item: -len(item[0]))
        fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "status.podIP": "127.0.0.1"}
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(self.workdir)}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif (item.get("valueFrom") or {}).get("fieldRef"):
                env[item["name"]] = fields.get(item["valueFrom"]["fieldRef"]["fieldPath"], "")
        for key, value in list(env.items()):
            for mount_path, directory in mounts:
                if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                    env[key] = str(directory) + value[len(mount_path.rstrip("/")):]
                    break
        # Every pod shares this host's network: each named port the runtime listens on gets a free local port.
        declared = {item.get("containerPort"): item.get("name") for item in container.get("ports") or []}
        ports = {name: free_port() for name, var in PORT_ENV.items()
                 if name == "http" or name in declared.values() or var in env}
        env.update({PORT_ENV[name]: str(port) for name, port in ports.items()})
        env.update(PYGOKA_HTTP_HOST="127.0.0.1")
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if argv and argv[0] == "pygoka":
            argv = [self.python, "-m", "pygoka.cli", *argv[1:]]
        http_get = (container.get("readinessProbe") or {}).get("httpGet") or {}
        probe, probe_port = http_get.get("path"), http_get.get("port", "http")
        # A numeric probe port is named by the container port it declares; anything else is probed on http.
        probe_port = declared.get(probe_port, probe_port)
        probe_port = probe_port if probe_port in ports else "http"
        log = self.root / "logs" / f"{meta['name']}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        grace = float(pod["spec"].get("terminationGracePeriodSeconds") or 30)
        local = LocalPod(meta["name"], meta["uid"], ports, self._spawn(argv, env, self.workdir, log), argv, env,
                         self.workdir, log, probe, probe_port, grace)
        return local

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def _restart(self, local: LocalPod) -> None:
        local.restarts += 1
        local.started = now()
        local.process = self._spawn(local.argv, local.env, local.cwd, local.log)

    def _ready(self, local: LocalPod) -> bool:
        if local.process.poll() is not None:
            return False
        if local.readiness_path is None:
            return True
        try:
            url = f"http://127.0.0.1:{local.ports[local.readiness_port]}{local.readiness_path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                return 200 <= int(response.status) < 400
        except OSError:
            return False

    def _report(self, local: LocalPod) -> None:
        ready = self._ready(local)
        key = (ready, local.restarts, local.process.poll() is None)
        if key == local.reported:
            return
        state = "True" if ready else "False"
        status = {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                  "podIPs": [{"ip": "127.0.0.1"}], "startTime": local.started,
                  "conditions": [{"type": t, "status": s, "lastTransitionTime": now()} for t, s in (
                      ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", state),
                      ("Ready", state))],
                  "containerStatuses": [{"name": "pygoka", "ready": ready, "restartCount": local.restarts,
                                         "image": "local", "imageID": "local", "started": key[2],
                                         "state": {"running": {"startedAt": local.started}}}]}
        self.dyn.patch(self.pods_api.subresources["status"], body={"status": status},  # type: ignore[no-untyped-call]
                       name=local.name, namespace=self.namespace, content_type="application/merge-patch+json")
        local.reported = key

    def _delete(self, pod: dict[str, Any]) -> None:
        """_delete stops a terminating pod's process gracefully, then removes the pod as the kubelet would."""
        uid = pod["metadata"]["uid"]
        with self._lock:
            local = self.pods.get(uid)
            if local is not None:
                if local.terminating_since is None:
                    local.terminating_since = time.monotonic()
                    local.process.send_signal(signal.SIGTERM)
                if local.process.poll() is None:
                    if time.monotonic() - local.terminating_since < local.grace:
                        return
                    local.process.kill()
                    local.process.wait()
                del self.pods[uid]
                shutil.rmtree(self.root / "pods" / uid, ignore_errors=True)
        try:
            self.pods_api.delete(name=pod["metadata"]["name"], namespace=self.namespace,
                                 body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})
        except NotFoundError:
            pass

    @staticmethod
    def _terminate(local: LocalPod, wait: bool) -> None:
        if local.process.poll() is None:
            local.process.send_signal(signal.SIGTERM)
            if wait:
                try:
                    local.process.wait(local.grace)
                except subprocess.TimeoutExpired:
                    local.process.kill()
                    local.process.wait()


def main(argv: list[str] | None = None) -> None:
    """main runs the pods of one namespace until Ctrl-C, printing each pod's local ports as it starts."""
    import argparse

    parser = argparse.ArgumentParser(description="Run a namespace's pods as local processes (test only).")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--root", type=Path, default=Path(".run/podrunner"), help="volumes and pod logs")
    parser.add_argument("--workdir", type=Path, default=Path.cwd(), help="cwd and PYTHONPATH of the pods")
    args = parser.parse_args(argv)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # `kill` of a background job sends SIGTERM (and background jobs ignore SIGINT): stop the pods either way.
    signal.signal(signal.SIGTERM, interrupt)
    runner = PodRunner(args.kubeconfig, args.namespace, args.root.resolve(), args.workdir.resolve()).start()
    shown: set[tuple[str, str]] = set()
    try:
        while True:
            for pod in list(runner.pods.values()):
                urls = ", ".join(f"{name} http://127.0.0.1:{port}" for name, port in sorted(pod.ports.items()))
                if (pod.name, urls) not in shown:
                    shown.add((pod.name, urls))
                    print(f"{pod.name}: {urls} (log {pod.log})", flush=True)
            while runner.errors:
                print(f"pod runner error: {runner.errors.pop(0)}", file=sys.stderr, flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()


if __name__ == "__main__":
    main()


__all__ = ["NODE", "LocalPod", "PodRunner", "main"]
