"""The ServiceAccount of a ProcessorGroup's pods and the Role letting them read their own StatefulSet.

On SIGTERM a pod reads spec.replicas of its StatefulSet to tell a scale-in (leave the consumer group now) from a
restart (stay a static member); it needs exactly that `get`, on that one StatefulSet, and nothing else.
"""

from __future__ import annotations

from typing import Any

from pygoka_operator.model import Owner


def _metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": owner.namespace, "labels": dict(labels),
            "ownerReferences": [owner.reference()]}


def service_account(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """service_account is the identity of the group's pods (their token is mounted: the pods call the API)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(owner, name, labels)}


def statefulset_reader_role(owner: Owner, name: str, labels: dict[str, str], statefulset: str) -> dict[str, Any]:
    """statefulset_reader_role allows only `get` on the StatefulSet named statefulset."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner, name, labels),
        "rules": [{"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": [statefulset],
                   "verbs": ["get"]}],
    }


def role_binding(owner: Owner, name: str, labels: dict[str, str], role: str, account: str) -> dict[str, Any]:
    """role_binding grants Role role to ServiceAccount account of the owner's namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner, name, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": owner.namespace}],
    }
