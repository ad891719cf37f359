"""Whether a processor pod stops for good: its StatefulSet was scaled in below the pod's ordinal, or deleted.

A pod told to stop cannot tell a scale-in from a restart (a rolling update, an eviction), and only when it goes
for good should a static group member leave the group at once. Its StatefulSet knows: the pod's service account
may get it (the operator grants that and nothing more, one Role per ProcessorGroup).
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("pygoka.cli")

#: SERVICE_ACCOUNT is where Kubernetes mounts a pod's service account token, CA and namespace.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: TIMEOUT bounds the API request, made while the pod is stopping.
TIMEOUT = 3.0
_POD_NAME = re.compile(r"(?P<statefulset>.+)-(?P<ordinal>\d+)")


@dataclass(frozen=True)
class StatefulSetPod:
    """StatefulSetPod is a pod of a StatefulSet: `<statefulset>-<ordinal>` in namespace."""

    namespace: str
    statefulset: str
    ordinal: int

    @property
    def path(self) -> str:
        """path is the API path of the pod's StatefulSet."""
        return f"/apis/apps/v1/namespaces/{self.namespace}/statefulsets/{self.statefulset}"


def statefulset_pod(pod_name: str, namespace: str) -> StatefulSetPod | None:
    """statefulset_pod is the StatefulSet and ordinal a pod name gives, None for another kind of name."""
    match = _POD_NAME.fullmatch(pod_name)
    if match is None:
        return None
    return StatefulSetPod(namespace, match["statefulset"], int(match["ordinal"]))


def scaled_in(pod: StatefulSetPod, statefulset: Mapping[str, Any] | None) -> bool:
    """scaled_in tells whether statefulset (None: not found) no longer wants pod: deleted, or fewer replicas."""
    if statefulset is None or statefulset.get("metadata", {}).get("deletionTimestamp"):
        return True
    replicas = statefulset.get("spec", {}).get("replicas", 1)
    return pod.ordinal >= int(replicas)


class InClusterScaleIn:
    """InClusterScaleIn asks the API server, with the pod's service account, whether the pod was scaled in."""

    def __init__(self, pod: StatefulSetPod, server: str, account: Path = SERVICE_ACCOUNT) -> None:
        self.pod = pod
        self.server = server
        self.account = account

    def __call__(self) -> bool:
        try:
            statefulset = self._get()
        except (OSError, ValueError) as exc:
            # Only the hand-over is slower: a static member's partitions wait for session.timeout.ms.
            log.warning("cannot tell whether StatefulSet %s/%s scaled this pod in (%s): staying a group member",
                        self.pod.namespace, self.pod.statefulset, exc)
            return False
        leaving = scaled_in(self.pod, statefulset)
        log.info("StatefulSet %s/%s %s pod ordinal %d", self.pod.namespace, self.pod.statefulset,
                 "no longer wants" if leaving else "keeps", self.pod.ordinal)
        return leaving

    def _get(self) -> dict[str, Any] | None:
        # The token is read at every call: Kubernetes rotates projected service account tokens.
        token = (self.account / "token").read_text().strip()
        context = ssl.create_default_context(cafile=str(self.account / "ca.crt"))
        request = urllib.request.Request(self.server + self.pod.path,
                                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
                body: dict[str, Any] = json.load(response)
                return body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise OSError(f"GET {self.pod.path}: HTTP {exc.code} {exc.reason}") from exc


def in_cluster_scale_in(instance_id: str | None, environ: Mapping[str, str] = os.environ,
                        account: Path = SERVICE_ACCOUNT) -> Callable[[], bool] | None:
    """in_cluster_scale_in is the `leaving` option of a StatefulSet pod with a service account, else None."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not instance_id or not host or not (account / "token").is_file():
        return None
    pod = statefulset_pod(instance_id, (account / "namespace").read_text().strip())
    if pod is None:
        return None
    return InClusterScaleIn(pod, f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}", account)
