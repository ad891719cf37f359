"""The PodDisruptionBudget: voluntary evictions take one pod at a time, so partitions move gradually."""

from __future__ import annotations

from typing import Any

from pygoka_operator.model import Owner


def pod_disruption_budget(owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str]) -> dict[str, Any]:
    """pod_disruption_budget allows at most one unavailable pod of the resource."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(labels),
                     "ownerReferences": [owner.reference()]},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}},
    }
