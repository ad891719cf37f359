"""Services: the headless Service of a StatefulSet and a View's query Service."""

from __future__ import annotations

from typing import Any

from pygoka_operator.model import Owner


def headless_service(owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str],
                     port: int) -> dict[str, Any]:
    """headless_service gives each pod a stable DNS name (<pod>.<service>), also while not ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(labels),
                     "ownerReferences": [owner.reference()]},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": dict(selector),
                 "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]},
    }


def query_service(owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str],
                  port: int) -> dict[str, Any]:
    """query_service load-balances the query API over a View's ready pods: only their query port, never http."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(labels),
                     "ownerReferences": [owner.reference()]},
        "spec": {"type": "ClusterIP", "selector": dict(selector),
                 "ports": [{"name": "query", "port": port, "targetPort": "query", "protocol": "TCP"}]},
    }
