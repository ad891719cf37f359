"""kopf's peering CRDs (leader election between operator replicas), written from kopf's documented schema.

kopf keeps each operator's keep-alive (priority, lifetime, last seen) under the peering object's `status`,
patching the main resource (no status subresource), so `status` must keep unknown fields.
"""

from __future__ import annotations

from typing import Any

PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"


def peering_crd(kind: str, scope: str) -> dict[str, Any]:
    """peering_crd is the CRD of kopf's ClusterKopfPeering (scope Cluster) or KopfPeering (Namespaced)."""
    plural = f"{kind.lower()}s"
    status = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "description": "Keep-alives of the running operators, keyed by their identity."}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{PEERING_GROUP}"},
        "spec": {
            "group": PEERING_GROUP,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": scope,
            "versions": [{
                "name": PEERING_VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"}, "status": status,
                }}},
            }],
        },
    }


def cluster_peering_crd() -> dict[str, Any]:
    """cluster_peering_crd serves operators watching all namespaces (`--all-namespaces`)."""
    return peering_crd("ClusterKopfPeering", "Cluster")


def namespaced_peering_crd() -> dict[str, Any]:
    """namespaced_peering_crd serves operators restricted with `--namespace` (one object per namespace)."""
    return peering_crd("KopfPeering", "Namespaced")
