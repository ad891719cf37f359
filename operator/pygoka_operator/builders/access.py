"""The ServiceAccount of a ProcessorGroup's pods and the Role letting them read their own StatefulSet.

On SIGTERM a pod reads spec.replicas of its StatefulSet to tell a scale-in (leave the consumer group now) from a
restart (stay a static member); it needs exactly that `get`, on that one StatefulSet, and nothing else. Pods that a
podTemplate gives a ServiceAccount of the user's get it too: without it every scale-in would wait out the session.
"""

from __future__ import annotations

from typing import Any

from pygoka_operator.model import Owner


def pods_service_account(spec: dict[str, Any], name: str) -> str:
    """pods_service_account is the ServiceAccount a group's pods run as: their podTemplate's, else name (ours).

    A podTemplate of the wrong shape counts as none here; building the StatefulSet refuses it, naming the field.
    """
    template = spec.get("podTemplate")
    pod = template.get("spec") if isinstance(template, dict) else None
    account = pod.get("serviceAccountName") if isinstance(pod, dict) else None
    return account if isinstance(account, str) and account else name


def processor_access(owner: Owner, name: str, labels: dict[str, str], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """processor_access are the ServiceAccount name, the Role reading StatefulSet name, and its binding to the
    ServiceAccount the pods of spec run as."""
    return [_service_account(owner, name, labels), _statefulset_reader_role(owner, name, labels, name),
            _role_binding(owner, name, labels, name, pods_service_account(spec, name))]


def _metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": owner.namespace, "labels": dict(labels),
            "ownerReferences": [owner.reference()]}


def _service_account(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """_service_account is the identity of the group's pods (their token is mounted: the pods call the API)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(owner, name, labels)}


def _statefulset_reader_role(owner: Owner, name: str, labels: dict[str, str], statefulset: str) -> dict[str, Any]:
    """_statefulset_reader_role allows only `get` on the StatefulSet named statefulset."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner, name, labels),
        "rules": [{"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": [statefulset],
                   "verbs": ["get"]}],
    }


def _role_binding(owner: Owner, name: str, labels: dict[str, str], role: str, account: str) -> dict[str, Any]:
    """_role_binding grants Role role to ServiceAccount account of the owner's namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner, name, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": owner.namespace}],
    }
